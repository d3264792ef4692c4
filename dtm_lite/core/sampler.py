"""The block-Gibbs sampler: the hot loop of every DTM, tuned (read ``gibbs_reference.py`` first: the same
Markov chain in plain JAX, with a list of what this kernel adds and what each addition buys).

Model (spins s in {-1, +1}):  p(s) ∝ exp(β [ Σ_{(i,j) in E} W_ij s_i s_j + Σ_i b_i s_i ]).
A sweep updates all colour-0 spins, then all colour-1 spins, each from ``P(s_i = +1 | rest) = σ(2 β h_i)``,
``h_i = b_i + Σ_j W_ij s_j``. Every edge joins the two colours, so each half-sweep is exact block Gibbs.

Layout. The (padded, even) grid is split into four sub-lattices by row and column parity, ``(p, q)`` with
``i = 2a + p, j = 2b + q``; colour 0 is ``(0,0), (1,1)`` and colour 1 is ``(0,1), (1,0)``. An offset
``(dx, dy)`` from sub-lattice ``(p, q)`` lands on sub-lattice ``((p+dx) % 2, (q+dy) % 2)`` shifted by
``((p+dx)//2, (q+dy)//2)``: a static slice of a wrap-tiled array, so the local field is a *stencil*, a sum of
shifted copies of the other colour times weight planes. Arrays are ``(2, n, n, chains)``, chains last.

Entry point: :func:`run_chains`; :func:`dtm_lite.ising.gibbs_sample` wraps it for any Ising model on a grid.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.core.graph import GridGraph
from dtm_lite.core.validation import check_int

Array = jax.Array

_COLOR_SUBS = (((0, 0), (1, 1)), ((0, 1), (1, 0)))  # sub-lattices (p, q) of colour 0 and colour 1

COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_prefer_vector_width": 512}
"""XLA options for a ``jax.jit`` that runs the sampler: ``jax.jit(f, compiler_options=COMPILER_OPTIONS)``. XLA's CPU
backend asks LLVM for 256-bit vectors; with 512-bit ones the kernel runs 1.3-2x faster on a CPU with AVX-512 and
the same elsewhere. It is an XLA debug option, so other backends ignore it."""

CHAIN_MULTIPLE = 16
"""Default multiple the chain axis is padded to inside :func:`run_chains` (one 512-bit vector of float32)."""


@dataclass(frozen=True, eq=False)
class Lattice:
    """Static description of a graph in sub-lattice layout (hashable by identity, for ``jax.jit``).

    ``plans[c][t][o] = (src, da, db)``: the field on target sub-lattice ``t`` of colour ``c`` gets, for
    offset ``o``, source sub-lattice ``src`` of colour ``1 - c`` shifted by ``(da, db)`` (in [0, n)).
    """

    graph: GridGraph
    side_p: int  # side padded to even
    n: int  # sub-lattice side = side_p // 2
    plans: tuple[tuple[tuple[tuple[int, int, int], ...], ...], ...]


@functools.lru_cache(maxsize=64)
def lattice(graph: GridGraph) -> Lattice:
    """The sub-lattice plan of ``graph`` (cached per graph object)."""
    side_p = graph.side + graph.side % 2
    n = side_p // 2
    plans = []
    for color, sign in ((0, 1), (1, -1)):
        # colour 0 reads colour 1 at u + o; colour 1 reads colour 0 at v - o.
        sources = _COLOR_SUBS[1 - color]
        per_target = []
        for p, q in _COLOR_SUBS[color]:
            row = []
            for dx, dy in graph.offsets * sign:
                src = sources.index(((p + dx) % 2, (q + dy) % 2))
                row.append((src, int((p + dx) // 2) % n, int((q + dy) // 2) % n))
            per_target.append(tuple(row))
        plans.append(tuple(per_target))
    return Lattice(graph, side_p, n, tuple(plans))


# ----------------------------------------------------------------------------- layout conversions


def to_lattice(lat: Lattice, x: Array, fill: float = 0.0) -> tuple[Array, Array]:
    """``(..., n_nodes)`` -> colour-0 and colour-1 arrays ``(2, n, n, ...)`` (node axis moved first)."""
    side, sp = lat.graph.side, lat.side_p
    lead = x.shape[:-1]
    g = x.reshape(*lead, side, side)
    if sp != side:
        pad = [(0, 0)] * len(lead) + [(0, sp - side), (0, sp - side)]
        g = jnp.pad(g, pad, constant_values=fill)
    g = jnp.moveaxis(g, (-2, -1), (0, 1))  # (sp, sp, ...)
    return tuple(jnp.stack([g[p::2, q::2] for p, q in subs]) for subs in _COLOR_SUBS)  # type: ignore[return-value]


def from_lattice(lat: Lattice, x0: Array, x1: Array) -> Array:
    """Inverse of :func:`to_lattice`: ``(2, n, n, ...)`` pair -> ``(..., n_nodes)``."""
    sp, side = lat.side_p, lat.graph.side
    g = jnp.zeros((sp, sp) + x0.shape[3:], x0.dtype)
    for xc, subs in ((x0, _COLOR_SUBS[0]), (x1, _COLOR_SUBS[1])):
        for t, (p, q) in enumerate(subs):
            g = g.at[p::2, q::2].set(xc[t])
    g = jnp.moveaxis(g[:side, :side], (0, 1), (-2, -1))
    return g.reshape(*g.shape[:-2], side * side)


def weight_planes(lat: Lattice, weights: Array) -> tuple[Array, Array]:
    """Edge weights ``(..., n_edges)`` (aligned with ``graph.edges``) -> per-colour planes ``(deg, 2, n, n, ..., 1)``.

    Plane ``W0[o, t]`` holds, at each colour-0 site u, the weight of edge (u, u + o); ``W1[o, t]`` holds,
    at each colour-1 site v, the weight of edge (v - o, v). Missing edges (open grids) are zeros. Leading
    axes of ``weights`` (e.g. one model per diffusion step) become trailing axes before the chain axis.
    """
    g = lat.graph
    sp = lat.side_p
    lead = weights.shape[:-1]
    i0, j0 = np.divmod(g.edges[:, 0], g.side)
    planes = (
        jnp.zeros((g.degree, sp, sp) + lead, weights.dtype).at[g.edge_offset, i0, j0].set(jnp.moveaxis(weights, -1, 0))
    )
    w0 = jnp.stack([jnp.stack([pl[p::2, q::2] for p, q in _COLOR_SUBS[0]]) for pl in planes])
    shifted = [jnp.roll(planes[o], (int(dx), int(dy)), axis=(0, 1)) for o, (dx, dy) in enumerate(g.offsets)]
    w1 = jnp.stack([jnp.stack([pl[p::2, q::2] for p, q in _COLOR_SUBS[1]]) for pl in shifted])
    return w0[..., None], w1[..., None]


def edge_values(lat: Lattice, planes0: Array) -> Array:
    """Inverse of the colour-0 half of :func:`weight_planes`: ``(deg, 2, n, n, ...)`` -> ``(..., n_edges)``."""
    g = lat.graph
    sp = lat.side_p
    full = jnp.zeros((g.degree, sp, sp) + planes0.shape[4:], planes0.dtype)
    for t, (p, q) in enumerate(_COLOR_SUBS[0]):
        full = full.at[:, p::2, q::2].set(planes0[:, t])
    i0, j0 = np.divmod(g.edges[:, 0], g.side)
    return jnp.moveaxis(full[g.edge_offset, i0, j0], 0, -1)


# ----------------------------------------------------------------------------- the kernel


def _tile(x: Array) -> Array:
    """(n, n, ...) -> (2n, 2n, ...) periodic copy, so any shift in [0, n) is a static slice."""
    return jnp.tile(x, (2, 2) + (1,) * (x.ndim - 2))


def _shift(xt: Array, da: int, db: int, n: int) -> Array:
    return jax.lax.slice_in_dim(jax.lax.slice_in_dim(xt, da, da + n, axis=0), db, db + n, axis=1)


def local_field(lat: Lattice, color: int, w: Array, src: Array) -> Array:
    """Field from the other colour on colour ``color``: ``h[t] = Σ_o w[o, t] * shift_o(src)``.

    w: ``(deg, 2, n, n, 1)`` planes of this colour; src: ``(2, n, n, C)`` spins of the other colour.
    Returns ``(2, n, n, C)``.
    """
    n = lat.n
    tiles = [_tile(src[0]), _tile(src[1])]
    out = []
    for t, plan in enumerate(lat.plans[color]):
        terms = [w[o, t] * _shift(tiles[s], da, db, n) for o, (s, da, db) in enumerate(plan)]
        acc = terms[0]
        for term in terms[1:]:
            acc = acc + term
        out.append(acc)
    return jnp.stack(out)


def edge_products(lat: Lattice, x0: Array, x1: Array, dtype: Any = None) -> Array:
    """``s_u * s_{u+o}`` for every edge, in colour-0 plane layout: ``(deg, 2, n, n, C)``.

    ``dtype``: compute in this dtype (default: the spins'). For sums over chains pass an integer type
    (``jnp.int8``; ``jnp.sum`` then accumulates in int32, exactly): XLA's CPU loop vectorises integer
    reductions, but a float32 sum over the chain axis runs one element at a time (no reassociation), and
    those sums took about 40% of a training step (benchmarks/README.md).
    """
    n = lat.n
    if dtype is not None:
        x0, x1 = x0.astype(dtype), x1.astype(dtype)
    tiles = [_tile(x1[0]), _tile(x1[1])]
    return jnp.stack(
        [
            jnp.stack([x0[t] * _shift(tiles[s], da, db, n) for t, (s, da, db) in enumerate(cols)])
            for cols in zip(*lat.plans[0], strict=True)
        ]
    )


def _lowbias32(x: Array) -> Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _uniforms(words: Array, counter: Array) -> Array:
    """Uniforms in [0, 1) from a two-word key and a counter array: hash(hash(c + k0) ^ k1), 24 bits."""
    x = _lowbias32(_lowbias32(counter + words[0]) ^ words[1])
    return (x >> 8).astype(jnp.float32) * jnp.float32(1.0 / (1 << 24))


def uniform(key: Array, shape: tuple[int, ...]) -> Array:
    """Uniforms in [0, 1) ``shape`` float32 from one key: :func:`_uniforms` of two threefry words and each
    element's index, so a split over devices gives the same numbers. Used for every random array of training
    and generation: XLA compiles ``jax.random.uniform`` in about 1.6 s a call site on a CPU, this in milliseconds."""
    counter = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)
    return _uniforms(jax.random.bits(key, (2,), jnp.uint32), counter)


# 2**f on [-1/2, 1/2] (Cephes exp2f), highest power first: relative error below 1.4 * 2**-24.
_EXP2_POLY = (
    1.535336188319500e-4, 1.339887440266574e-3, 9.618437357674640e-3, 5.550332471162809e-2,
    2.402264791363012e-1, 6.931472028550421e-1, 1.0,
)  # fmt: skip
_LOG2E = 1.4426950408889634


def _exp2(y: Array) -> Array:
    """``2 ** y`` in float32 for ``y`` clipped to [-126, 126]: ``2 ** round(y)`` from the exponent bits
    times a degree-6 polynomial in the remainder; within 1.4 ulp (tests/test_sampler_kernel.py). About 14
    vector operations where XLA's ``exp`` takes about 22 (its argument reduction in two steps, more clamps)."""
    y = jnp.clip(y, -126.0, 126.0)
    k = jnp.round(y)
    f = y - k
    p = jnp.float32(_EXP2_POLY[0])
    for c in _EXP2_POLY[1:]:
        p = p * f + jnp.float32(c)
    return p * jax.lax.bitcast_convert_type((k.astype(jnp.int32) + 127) << 23, jnp.float32)


def _spin_up(u: Array, beta: Array, h: Array, poly_exp: bool = False) -> Array:
    """The Gibbs decision ``u < σ(2βh)`` for ``u`` uniform on [0, 1), as ``u * e < 1 - u`` with ``e = exp(-2βh)``:
    no division or clamps (4-8% of the kernel), and one rounding, since ``1 - u`` is exact for 24-bit uniforms.
    NaN fields give False (spin -1). ``poly_exp=True`` takes ``e`` from :func:`_exp2`: 4-6% more, but only under
    :data:`COMPILER_OPTIONS` (under XLA's defaults LLVM vectorises it 8 lanes wide and the step ran 1.2-1.4x slower).
    """
    if poly_exp:
        return u * _exp2((beta * jnp.float32(-2.0 * _LOG2E)) * h) < 1.0 - u
    return u * jnp.exp((-2.0 * beta) * h) < 1.0 - u


class Params(NamedTuple):
    """Sampler parameters in lattice layout. w*: (deg, 2, n, n, 1); b*: (2, n, n, 1 or C); clamp*: bool like b*."""

    w0: Array
    w1: Array
    b0: Array
    b1: Array
    clamp0: Array
    clamp1: Array


def make_params(lat: Lattice, weights: Array, biases: Array, clamped: Array | None) -> Params:
    """Convert node/edge-layout parameters to lattice layout.

    weights ``(n_edges,)``; biases ``(n_nodes,)`` or ``(C, n_nodes)``; clamped like biases. For several models
    at once (one per diffusion step, say) give weights ``(T, n_edges)``, biases ``(T, C, n_nodes)`` and
    clamped ``(1, C, n_nodes)``: the lattice arrays then end in ``(T, C)`` and broadcast per model.
    """
    w0, w1 = weight_planes(lat, jnp.asarray(weights, jnp.float32))
    b = jnp.asarray(biases, jnp.float32)
    b0, b1 = to_lattice(lat, b if b.ndim >= 2 else b[None])
    if clamped is None:
        c = jnp.zeros((1,) * max(1, b.ndim - 1) + (lat.graph.n_nodes,), bool)
    else:
        c = jnp.asarray(clamped, bool)
        c = c if c.ndim >= 2 else c[None]
    # padding sites of odd-sided grids have no edges; clamp them so they stay put.
    c0, c1 = to_lattice(lat, c, fill=True)
    return Params(w0, w1, b0, b1, c0, c1)


def sweep(
    lat: Lattice, params: Params, x0: Array, x1: Array, words: Array, beta: Array, poly_exp: bool = False
) -> tuple[Array, Array]:
    """One block-Gibbs sweep: colour 0 then colour 1. x*: (2, n, n, ..., C) float32 ±1; words: (2,) uint32.
    ``poly_exp``: see :func:`_spin_up`."""
    size = x0.size
    counter = jnp.arange(2 * size, dtype=jnp.uint32).reshape((2,) + x0.shape)
    h0 = local_field(lat, 0, params.w0, x1) + params.b0
    new0 = jnp.where(_spin_up(_uniforms(words, counter[0]), beta, h0, poly_exp), 1.0, -1.0)
    x0 = jnp.where(params.clamp0, x0, new0)
    h1 = local_field(lat, 1, params.w1, x0) + params.b1
    new1 = jnp.where(_spin_up(_uniforms(words, counter[1]), beta, h1, poly_exp), 1.0, -1.0)
    x1 = jnp.where(params.clamp1, x1, new1)
    return x0, x1


def _sweeps(lat: Lattice, params: Params, poly_exp: bool, carry: tuple, b_next: Array) -> tuple:
    """``len(b_next)`` sweeps from ``carry = (key, x0, x1, β)``; each sweep keys its hash with two fresh words."""

    def body(carry, beta_next):
        key, x0, x1, beta = carry
        key, sub = jax.random.split(key)
        x0, x1 = sweep(lat, params, x0, x1, jax.random.bits(sub, (2,), jnp.uint32), beta, poly_exp)
        return (key, x0, x1, beta_next), None

    return jax.lax.scan(body, carry, b_next)[0]


def run_chains(
    lat: Lattice,
    params: Params,
    key: Array,
    x0: Array,
    x1: Array,
    betas: Array,
    *,
    warmup_sweeps: int,
    n_samples: int,
    sweeps_per_sample: int,
    observe: Any,
    acc: Any,
    chain_multiple: int = CHAIN_MULTIPLE,
    poly_exp: bool = False,
) -> tuple[Array, Array, Any, Any]:
    """Run ``warmup_sweeps`` sweeps, then take ``n_samples`` samples ``sweeps_per_sample`` sweeps apart.

    The first sample is the state right after warm-up, so ``warmup_sweeps + (n_samples - 1) * sweeps_per_sample``
    sweeps run in all; ``betas`` has one inverse temperature per sweep. At each sample,
    ``acc, out = observe(acc, x0, x1)``; the outputs are stacked. Returns ``(x0, x1, acc, outs)``.
    Traceable: call it inside ``jax.jit`` (with ``compiler_options=COMPILER_OPTIONS`` for speed).

    The chain axis (last) runs padded to a multiple of ``chain_multiple`` (see :func:`_pad_chains`);
    ``observe`` and the returned states see the real chains only. The random numbers are a function of
    ``key`` and the padded shape, hence of ``key``, the shape and ``chain_multiple``; ``chain_multiple=1``
    turns padding off. ``poly_exp=True``: a polynomial exp in the update, for callers compiled with
    :data:`COMPILER_OPTIONS` only (see :func:`_spin_up`).
    """
    if betas.shape[0] != n_sweeps(warmup_sweeps, n_samples, sweeps_per_sample):
        raise ValueError(f"betas must have one value per sweep, got {betas.shape[0]}")
    n_chains = x0.shape[-1]
    params, x0, x1 = _pad_chains(params, x0, x1, check_int("chain_multiple", chain_multiple, 1))
    if x0.shape[-1] != n_chains:
        observe = functools.partial(_observe_real, observe, n_chains)

    # β rides in the carry, one sweep ahead of the scanned array: a β sliced out of the scanned input
    # fuses into the field computation and makes XLA's CPU loop 4x slower. Likewise the two 32-bit
    # words that key each sweep's hash are drawn inside the loop, not scanned from an array.
    nxt = jnp.concatenate([betas[1:], jnp.ones((1,), jnp.float32)])
    beta0 = betas[0] if betas.shape[0] else jnp.float32(1.0)

    run = functools.partial(_sweeps, lat, params, poly_exp)
    carry = run((key, x0, x1, beta0), nxt[:warmup_sweeps])
    acc, out0 = observe(acc, *carry[1:3])
    if n_samples == 1:
        return carry[1][..., :n_chains], carry[2][..., :n_chains], acc, jax.tree.map(lambda o: o[None], out0)

    def sample_body(state, b_next):
        carry, acc = state
        carry = run(carry, b_next)
        acc, out = observe(acc, *carry[1:3])
        return (carry, acc), out

    (carry, acc), outs = jax.lax.scan(
        sample_body, (carry, acc), nxt[warmup_sweeps:].reshape(n_samples - 1, sweeps_per_sample)
    )
    outs = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), out0, outs)
    return carry[1][..., :n_chains], carry[2][..., :n_chains], acc, outs


def _observe_real(observe: Any, n_chains: int, acc: Any, x0: Array, x1: Array) -> Any:
    """``observe`` of the real chains alone (the first ``n_chains`` of the padded chain axis)."""
    return observe(acc, x0[..., :n_chains], x1[..., :n_chains])


def _pad_chains(params: Params, x0: Array, x1: Array, multiple: int) -> tuple[Params, Array, Array]:
    """Pad the chain axis (last) of the states, and of the per-chain biases and clamps, to a multiple, with copies
    of the last real chain. XLA's CPU loop vectorises the chain axis and runs the remainder one chain at a time:
    50 chains unpadded took 1.19x the time of 50 padded to 64 (1.8x under 256-bit vectors; benchmarks/README.md).
    """
    c = x0.shape[-1]
    cp = -(-c // multiple) * multiple
    if cp == c:
        return params, x0, x1

    def pad(a: Array) -> Array:
        return jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, cp - c)], mode="edge")

    def pad_per_chain(a: Array) -> Array:  # a last axis of 1 broadcasts over the chains: leave it
        return a if a.shape[-1] == 1 else pad(a)

    b0, b1, k0, k1 = (pad_per_chain(a) for a in (params.b0, params.b1, params.clamp0, params.clamp1))
    return params._replace(b0=b0, b1=b1, clamp0=k0, clamp1=k1), pad(x0), pad(x1)


def n_sweeps(warmup_sweeps: int, n_samples: int, sweeps_per_sample: int) -> int:
    """Sweeps run by a schedule: ``warmup_sweeps + (n_samples - 1) * sweeps_per_sample``."""
    return warmup_sweeps + (n_samples - 1) * sweeps_per_sample
