"""One training step of a DTM, as a pure function ``train_step(state, batch) -> (state, metrics)``.

Step k models ``p(x_{t_k} | x_{t_{k+1}})`` on one grid graph (Jelinčič et al., arXiv 2510.23972):

    E_k(s) = - Σ_E W_ij s_i s_j - Σ_i b_i s_i - J_k Σ_{v visible} s_in,v s_v,     p ∝ exp(-β E_k).

The input spins ``s_in`` (the noisier image) are fixed, so they enter as per-chain biases ``J_k s_in`` on the
visible sites. Each step's ``W, b`` follow the Boltzmann-machine gradient, with the correlation penalty λ_cp:

    Δb_i  = β (⟨s_i⟩₊ - ⟨s_i⟩₋)
    ΔW_ij = β (⟨s_i s_j⟩₊ - ⟨s_i s_j⟩₋) - λ_cp Cov₋(i, j),

the positive phase (+) with the visible spins clamped to ``x_start``, the negative phase (-) free, both with
the inputs clamped to ``x_end``: the training pair of step k (:func:`dtm_lite.core.diffusion.training_pair`).
The two phases of a step share one run of the sampler (2 x batch chains); the T steps run one after another.
Conditioners (:mod:`dtm_lite.core.conditioner`) add bits, a field and their own parameters' gradient.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dtm_lite.core import sampler as smp
from dtm_lite.core.diffusion import training_pair
from dtm_lite.core.spec import ChainSplit, ModelSpec
from dtm_lite.core.state import DTMState


def visible_bias(n_nodes: int, visible: jax.Array, j: jax.Array, s_in: jax.Array, extra: jax.Array | None = None):
    """Per-chain bias ``J s_in`` (``j`` a scalar or one value a visible bit) plus ``extra`` (a conditioning field
    ``(C, n_visible)``) on the visible nodes, 0 elsewhere: ``(C, n_nodes)``."""
    field = j * s_in if extra is None else j * s_in + extra
    return jnp.zeros((s_in.shape[0], n_nodes), jnp.float32).at[:, visible].set(field)


def init_spins(key: jax.Array, bias: jax.Array, beta: float) -> jax.Array:
    """Independent spins with each site's marginal ignoring couplings: ``P(+1) = σ(2β b)``."""
    return jnp.where(smp.uniform(key, bias.shape) < jax.nn.sigmoid(2.0 * beta * bias), 1.0, -1.0)


def split_chains(mesh: ChainSplit | None, p: smp.Params, x0: jax.Array, x1: jax.Array):
    """The chain axis (last) of the lattice arrays and per-chain parameters split over ``mesh``'s devices."""
    if mesh is None:
        return p, x0, x1
    p = p._replace(**{f: mesh.constrain(getattr(p, f), -1) for f in ("b0", "b1", "clamp0", "clamp1")})
    return p, mesh.constrain(x0, -1), mesh.constrain(x1, -1)


def phase_moments(lat, visible, W, b, s_start, s_in, j, key, *, beta, warmup_sweeps, n_samples, sweeps_per_sample,
                  extra=None, per_chain=False, sums=False, mesh: ChainSplit | None = None):  # fmt: skip
    """Both phases of T steps on one batch, in one sampler run: the moments of each phase.

    ``W`` ``(T, n_edges)``, ``b`` ``(T, n_nodes)``; ``s_start``, ``s_in`` ±1 ``(T, B, n_visible)``: each step's
    clean-side target and noisier input; ``j`` ``(T,)`` or ``(T, n_visible)`` the input couplings; ``extra``
    ``(T, B, n_visible)`` a conditioning field on both phases. Chains ``[:B]`` are the positive phase (visible
    clamped to ``s_start``), ``[B:]`` the negative phase. Returns ``(⟨s⟩₊, ⟨s⟩₋)`` ``(T, n_nodes)`` and
    ``(⟨s_i s_j⟩₊, ⟨s_i s_j⟩₋)`` ``(T, n_edges)``; with ``sums`` their int32 sums over chains and samples
    instead (divide by ``B * n_samples``); with ``per_chain`` also each chain's visible spins summed over its
    samples ``(T, 2B, n_visible)``. Sums of integers are exact in any order, so the result does not depend on
    how ``mesh`` splits the chains over devices."""
    g = lat.graph
    B = s_start.shape[1]
    vis_mask = jnp.zeros(g.n_nodes, bool).at[visible].set(True)
    clamp = jnp.concatenate([jnp.broadcast_to(vis_mask, (B, g.n_nodes)), jnp.zeros((B, g.n_nodes), bool)])[None]
    k_init, k_run = jax.random.split(key)
    if extra is None:
        vis_bias = jax.vmap(lambda jk, s: visible_bias(g.n_nodes, visible, jk, s))(j, s_in)  # (T, B, n_nodes)
    else:
        vis_bias = jax.vmap(lambda jk, s, e: visible_bias(g.n_nodes, visible, jk, s, e))(j, s_in, extra)
    bias = jnp.concatenate([vis_bias, vis_bias], axis=1) + b[:, None]  # (T, 2B, n_nodes)
    spins = init_spins(k_init, bias, beta).at[:, :B, visible].set(s_start)
    x0, x1 = smp.to_lattice(lat, spins, fill=1.0)  # (2, n, n, T, 2B)
    params, x0, x1 = split_chains(mesh, smp.make_params(lat, W, bias, clamp), x0, x1)

    def observe(acc, x0, x1):
        s0, s1, ss = acc
        prod = smp.edge_products(lat, x0, x1, jnp.int8)  # (deg, 2, n, n, T, 2B); int sums vectorise (exact)
        ss = ss + jnp.stack([prod[..., :B].sum(-1), prod[..., B:].sum(-1)])
        return (s0 + x0, s1 + x1, ss), None

    zeros = (jnp.zeros_like(x0), jnp.zeros_like(x1), jnp.zeros((2,) + params.w0.shape[:-1], jnp.float32))
    betas = jnp.full((smp.n_sweeps(warmup_sweeps, n_samples, sweeps_per_sample),), beta, jnp.float32)
    _, _, (s0, s1, ss), _ = smp.run_chains(
        lat, params, k_run, x0, x1, betas, warmup_sweeps=warmup_sweeps, n_samples=n_samples,
        sweeps_per_sample=sweeps_per_sample, observe=observe, acc=zeros, poly_exp=True,
    )  # fmt: skip
    counts = smp.from_lattice(lat, s0, s1)  # (T, 2B, n_nodes): each chain's spins summed over its samples
    m_pos, m_neg = (counts[:, sl].sum(1) for sl in (slice(None, B), slice(B, None)))
    c_pos, c_neg = (smp.edge_values(lat, ss[k]) for k in (0, 1))  # (T, n_edges)
    if sums:
        out = tuple(jnp.rint(a).astype(jnp.int32) for a in (m_pos, m_neg, c_pos, c_neg))
    else:
        out = tuple(a / (B * n_samples) for a in (m_pos, m_neg, c_pos, c_neg))
    return (*out, counts[:, :, visible]) if per_chain else out


def conditioning(spec: ModelSpec, params, batch) -> tuple[jax.Array, jax.Array | None]:
    """The clean visible bits ``(B, n_visible_all)`` (the image's, then the conditioners' extra bits) and the
    summed conditioners' field ``(T, B, n_visible_all)`` (None when no conditioner has one)."""
    x0 = [batch["bits"]] + [p.clean_bits(batch) for p in spec.conditioners if p.n_bits]
    fields = [f for f in (p.field(params, batch) for p in spec.conditioners) if f is not None]
    if not fields:
        return jnp.concatenate(x0, axis=1), None
    field = functools.reduce(jnp.add, fields)
    return jnp.concatenate(x0, axis=1), jnp.pad(field, ((0, 0), (0, 0), (0, spec.n_extra_bits)))


def ascent(spec: ModelSpec, state: DTMState, batch, sums, n: int) -> dict[str, jax.Array]:
    """Each parameter's ascent direction from ``phase_moments``' sums over ``n = B * n_samples`` samples.

    Differences of integer sums are exact, then one division: the same bits however the chains are split
    over devices (a float difference of two means may be fused differently in each compiled program)."""
    cfg, edges = spec.config, np.asarray(spec.graph.edges)
    s_pos, s_neg, e_pos, e_neg, *chains = sums
    if n * n < 2**31:  # int32 exact: B * n_samples <= 46340
        cov_neg = (e_neg * n - s_neg[:, edges[:, 0]] * s_neg[:, edges[:, 1]]).astype(jnp.float32) / (n * n)
    else:  # larger batches: float, the same on one device (across device counts only up to rounding)
        mean_neg = s_neg.astype(jnp.float32) / n
        cov_neg = e_neg.astype(jnp.float32) / n - mean_neg[:, edges[:, 0]] * mean_neg[:, edges[:, 1]]
    out = {
        "W": cfg.beta * ((e_pos - e_neg).astype(jnp.float32) / n) - state.corr_penalty[:, None] * cov_neg,
        "b": cfg.beta * ((s_pos - s_neg).astype(jnp.float32) / n),
    }
    if not chains:
        return out
    B, n_img = batch["bits"].shape[0], spec.n_image_bits
    dm = chains[0][:, :B, :n_img] - chains[0][:, B:, :n_img]  # (T, B, n_img) integer count differences
    for p in spec.conditioners:
        out.update({k: cfg.beta * (g / cfg.n_samples) for k, g in p.grad(batch, dm).items()})
    return out


def make_train_step(spec: ModelSpec, opt: optax.GradientTransformation, schedule: optax.Schedule,
                    mesh: ChainSplit):  # fmt: skip
    """The jitted, pure ``train_step(state, batch) -> (state, metrics)``: one optimiser update of every step.

    ``batch``: ``{"bits": (B, n_image_bits) uint8, ...}`` with what the conditioners read. On ``mesh`` the state
    is replicated and the batch rows split over the devices. Metrics: ``gap`` (mean |⟨s⟩₊ - ⟨s⟩₋| on the image's
    visible sites), ``grad_norm``, ``lr``, and for each parameter ``name`` a bool ``finite/<name>``: whether the
    updated array is finite everywhere (checked in this one program, so a caller needs no second dispatch)."""
    cfg, lat = spec.config, spec.lattice
    visible, t = jnp.asarray(spec.visible_all), jnp.asarray(spec.times, jnp.float32)
    J = jnp.asarray(spec.J if spec.J_bits is None else spec.J_bits, jnp.float32)
    rate = spec.rates if spec.J_bits is None else jnp.asarray(spec.rates, jnp.float32)
    T, per_chain = cfg.num_diffusion_steps, any(p.init_params(1) for p in spec.conditioners)

    def step_moments(args):
        W, b, s_start, s_in, j, key, *extra = args
        out = phase_moments(
            lat, visible, W[None], b[None], s_start[None], s_in[None], j[None], key, beta=cfg.beta,
            warmup_sweeps=cfg.warmup_sweeps, n_samples=cfg.n_samples, sweeps_per_sample=cfg.sweeps_per_sample,
            extra=extra[0][None] if extra else None, per_chain=per_chain, sums=True, mesh=mesh,
        )  # fmt: skip
        return tuple(o[0] for o in out)

    shardings = {"in_shardings": (mesh.replicated, mesh.rows), "out_shardings": (mesh.replicated, mesh.replicated)}

    @functools.partial(jax.jit, **shardings, compiler_options=smp.COMPILER_OPTIONS)
    def train_step(state: DTMState, batch) -> tuple[DTMState, dict[str, jax.Array]]:
        batch = batch if isinstance(batch, dict) else {"bits": batch}
        params = state.params
        next_key, key = jax.random.split(state.key)
        k_pairs, k_run = jax.random.split(key)
        x0, field = conditioning(spec, params, batch)
        pair = functools.partial(training_pair, rate=rate, offset=cfg.diffusion_offset)
        x_start, x_end = jax.vmap(pair, in_axes=(0, None, 0, 0))(jax.random.split(k_pairs, T), x0, t[:-1], t[1:])
        run_keys = jax.random.split(k_run, T) if T > 1 else k_run[None]  # T = 1 keeps its key: same samples
        per_step = [params["W"], params["b"], 2.0 * x_start - 1.0, 2.0 * x_end - 1.0, J, run_keys]
        sums = jax.lax.map(step_moments, tuple(per_step + ([] if field is None else [field])))
        up = ascent(spec, state, batch, sums, x0.shape[0] * cfg.n_samples)
        updates, opt_state = opt.update(jax.tree.map(jnp.negative, up), state.opt_state, params)
        m_pos, m_neg = (s.astype(jnp.float32) / (x0.shape[0] * cfg.n_samples) for s in sums[:2])
        metrics = {"gap": jnp.abs(m_pos - m_neg)[:, visible[: spec.n_image_bits]].mean(),
                   "grad_norm": optax.tree.norm(up), "lr": schedule(state.step)}  # fmt: skip
        plugin_state = state.plugin_state
        for p in spec.conditioners:
            plugin_state = p.update(plugin_state, batch)
        new = state._replace(params=optax.apply_updates(params, updates), opt_state=opt_state, step=state.step + 1,
                             key=next_key, plugin_state=plugin_state)  # fmt: skip
        metrics.update({f"finite/{k}": jnp.all(jnp.isfinite(v)) for k, v in new.params.items()})
        return new, metrics

    return train_step
