"""The jitted kernels of a DTM: both phases' moments (``phase_moments``), the pure training step
(``_make_train_fn``), and the free chains of generation and of the autocorrelation diagnostic.
Everything here is a pure function of arrays; ``dtm_lite.model.DTM`` builds and calls them."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dtm_lite.conditioning import inputs as conditioning
from dtm_lite.conditioning import layout as layouts
from dtm_lite.core import sampler as smp
from dtm_lite.core.diffusion import add_noise, training_pair
from dtm_lite.core.state import DTMState
from dtm_lite.scale.sharding import ChainMesh

if TYPE_CHECKING:
    from dtm_lite.model import DTM


def _visible_bias(
    n_nodes: int, visible: jax.Array, j: jax.Array, s_in: jax.Array, extra: jax.Array | None = None
) -> jax.Array:
    """Per-chain bias from the input coupling: ``J s_in`` (``j`` a scalar or one value a visible bit) plus
    ``extra`` (a conditioning field ``(C, n_visible)``) on the visible nodes, 0 elsewhere. (C, n_nodes)."""
    field = j * s_in if extra is None else j * s_in + extra
    return jnp.zeros((s_in.shape[0], n_nodes), jnp.float32).at[:, visible].set(field)


def _init_spins(key: jax.Array, bias: jax.Array, beta: float) -> jax.Array:
    """Independent spins with each site's marginal ignoring couplings: P(+1) = σ(2β b)."""
    return jnp.where(jax.random.uniform(key, bias.shape) < jax.nn.sigmoid(2.0 * beta * bias), 1.0, -1.0)


def phase_moments(
    lat: smp.Lattice,
    visible: jax.Array,
    W: jax.Array,
    b: jax.Array,
    s_start: jax.Array,
    s_in: jax.Array,
    j: jax.Array,
    key: jax.Array,
    *,
    beta: float,
    warmup_sweeps: int,
    n_samples: int,
    sweeps_per_sample: int,
    extra: jax.Array | None = None,
    per_chain: bool = False,
    sums: bool = False,
    mesh: ChainMesh | None = None,
) -> tuple[jax.Array, ...]:
    """Monte Carlo moments of T diffusion steps on one batch: both phases of every step in one sampler run.

    Args: W ``(T, n_edges)``, b ``(T, n_nodes)``; ``s_start``, ``s_in`` ±1 of shape ``(T, B, n_visible)``: each
    step's clean-side target and noisier input; ``j`` ``(T,)`` the input couplings.
    Returns ``(⟨s⟩₊, ⟨s⟩₋)`` of shape ``(T, n_nodes)`` and ``(⟨s_i s_j⟩₊, ⟨s_i s_j⟩₋)`` of shape ``(T, n_edges)``,
    averaged over samples and batch. Chains ``[:B]`` are the positive phase (visible clamped to
    ``s_start``), chains ``[B:]`` the negative phase; row r of both phases sees the same input.

    ``j`` may also be ``(T, n_visible)`` (one coupling a visible bit: labels have their own rate); ``extra``
    ``(T, B, n_visible)`` is a conditioning field added to both phases' visible biases. With ``per_chain`` a
    fifth output gives each chain's visible spins summed over its samples ``(T, 2B, n_visible)``, integer-valued
    (for conditioning weights: divide by ``n_samples`` after any sum over chains). With ``sums`` the four
    moments are the int32 sums over chains and samples instead (divide by ``B * n_samples``), so that a caller
    can take differences exactly before it divides.

    Reductions over chains sum integer-valued float32 counts (±1 spins and edge products, summed over
    samples) and divide once at the end: exact in any order, so the result does not depend on how the
    chains are split over devices (``mesh``: a :class:`~dtm_lite.scale.sharding.ChainMesh` whose devices the
    chain axis is split over inside ``jax.jit``; None: no constraint).

    Several models share the lattice arrays ``(2, n, n, T, 2B)`` and run in one kernel call (under ``jax.vmap``
    XLA's CPU loop would run several times slower); training calls it one step at a time (``jax.lax.map``),
    which keeps the arrays in cache and the cost linear in T.
    """
    g = lat.graph
    T, B = s_start.shape[:2]
    vis_mask = jnp.zeros(g.n_nodes, bool).at[visible].set(True)
    clamp = jnp.concatenate([jnp.broadcast_to(vis_mask, (B, g.n_nodes)), jnp.zeros((B, g.n_nodes), bool)])[None]
    k_init, k_run = jax.random.split(key)
    if extra is None:
        vis_bias = jax.vmap(lambda jk, s: _visible_bias(g.n_nodes, visible, jk, s))(j, s_in)  # (T, B, n_nodes)
    else:
        vis_bias = jax.vmap(lambda jk, s, e: _visible_bias(g.n_nodes, visible, jk, s, e))(j, s_in, extra)
    bias = jnp.concatenate([vis_bias, vis_bias], axis=1) + b[:, None]  # (T, 2B, n_nodes)
    spins = _init_spins(k_init, bias, beta).at[:, :B, visible].set(s_start)
    params = smp.make_params(lat, W, bias, clamp)
    x0, x1 = smp.to_lattice(lat, spins, fill=1.0)  # (2, n, n, T, 2B)
    if mesh is not None:  # the chain axis (last) of the lattice arrays split over the devices
        x0, x1 = mesh.constrain(x0, -1), mesh.constrain(x1, -1)
        per_chain_fields = ("b0", "b1", "clamp0", "clamp1")
        params = params._replace(**{f: mesh.constrain(getattr(params, f), -1) for f in per_chain_fields})

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
    # sum the integer counts over chains first, divide once: exact, so independent of the chains' split
    m_pos, m_neg = (counts[:, sl].sum(1) for sl in (slice(None, B), slice(B, None)))
    c_pos, c_neg = (smp.edge_values(lat, ss[k]) for k in (0, 1))  # (T, n_edges)
    if sums:
        m_pos, m_neg, c_pos, c_neg = (jnp.rint(a).astype(jnp.int32) for a in (m_pos, m_neg, c_pos, c_neg))
    else:
        m_pos, m_neg, c_pos, c_neg = (a / (B * n_samples) for a in (m_pos, m_neg, c_pos, c_neg))
    if per_chain:
        return m_pos, m_neg, c_pos, c_neg, counts[:, :, visible]
    return m_pos, m_neg, c_pos, c_neg


def _make_train_fn(dtm: DTM):
    cfg, lat, g, mesh = dtm.config, dtm.lattice, dtm.graph, dtm.mesh
    visible = jnp.asarray(dtm.visible_all)  # the image's visible sites, then the label bits'
    n_img, labelled, world = dtm.encoding.n_bits, cfg.n_classes > 0, cfg.n_cond_actions > 0
    t = jnp.asarray(dtm.times, jnp.float32)
    # one input coupling a visible bit when labels have their own rate; else the scalar J_k (as before labels)
    J = jnp.asarray(dtm.J_bits if labelled else dtm.J, jnp.float32)
    rate = (
        jnp.asarray(np.r_[np.full(n_img, cfg.image_rate), np.full(cfg.n_label_bits, cfg.label_rate)], jnp.float32)
        if labelled
        else cfg.image_rate
    )
    edges = np.asarray(g.edges)
    cond_index = jnp.asarray(dtm.cond_index) if world else None
    offset, scale = dtm.cond_scaling  # a layout input's scaling (None for a world model's frames alone)

    def pair(key, x0_bits, t_k, t_k1):
        return training_pair(key, x0_bits, t_k, t_k1, rate, cfg.diffusion_offset)

    T = cfg.num_diffusion_steps

    def step_moments(args):
        """``phase_moments`` of one diffusion step, from its slices ``(W_k, b_k, s_start_k, s_in_k, J_k, key_k[,
        extra_k])``."""
        W, b, s_start, s_in, j, key, *extra = args
        out = phase_moments(
            lat, visible, W[None], b[None], s_start[None], s_in[None], j[None], key,
            beta=cfg.beta, warmup_sweeps=cfg.warmup_sweeps, n_samples=cfg.n_samples,
            sweeps_per_sample=cfg.sweeps_per_sample,
            extra=extra[0][None] if extra else None, per_chain=world, sums=True, mesh=mesh,
        )  # fmt: skip
        return tuple(o[0] for o in out)

    # The T steps run one after another (lax.map), each on its own (2, n, n, 1, 2B) lattice arrays: the cost
    # is linear in T, where one joint (2, n, n, T, 2B) kernel outgrew the cache (benchmarks/train_step.py).
    # On a mesh (dtm_lite.scale.sharding): the state replicated, the batch rows split over the devices.
    @functools.partial(
        jax.jit,
        in_shardings=(mesh.replicated, mesh.rows),
        out_shardings=(mesh.replicated, mesh.replicated),
        compiler_options=smp.COMPILER_OPTIONS,
    )
    def train_step(state: DTMState, batch: dict[str, jax.Array] | jax.Array) -> tuple[DTMState, dict[str, jax.Array]]:
        """One optimiser update of every diffusion step on ``batch`` (a dict, see ``DTM.train_fn``): pure."""
        params, corr_penalty = state.params, state.corr_penalty
        if not isinstance(batch, dict):  # the bits alone
            batch = {"bits": batch}
        next_key, key = jax.random.split(state.key)
        k_pairs, k_run = jax.random.split(key)
        keys = jax.random.split(k_pairs, cfg.num_diffusion_steps)
        x0 = batch["bits"]
        if labelled:
            x0 = jnp.concatenate([x0, conditioning.label_code(batch["labels"], cfg.n_classes, cfg.label_spots)], axis=1)
        x_start, x_end = jax.vmap(pair, in_axes=(0, None, 0, 0))(keys, x0, t[:-1], t[1:])  # (T, B, n_vis)
        run_keys = jax.random.split(k_run, T) if T > 1 else k_run[None]  # T = 1 keeps its key: same samples
        per_step = [params["W"], params["b"], 2.0 * x_start - 1.0, 2.0 * x_end - 1.0, J, run_keys]
        if world:
            assert cond_index is not None
            feats = conditioning.features(batch["prev"], cond_index, offset, scale)  # (B, n_img, n_feat)
            field = conditioning.conditioning_field(params["K"], feats, batch["actions"])  # (T, B, n_img)
            per_step.append(jnp.pad(field, ((0, 0), (0, 0), (0, cfg.n_label_bits))))
        s_pos, s_neg, e_pos, e_neg, *chains = jax.lax.map(step_moments, tuple(per_step))  # int32 sums
        # differences of the integer sums, exact, then one division: the same bits however the chains are split
        # over devices (a float difference of two means may be fused differently in each compiled program)
        n = x0.shape[0] * cfg.n_samples
        if n * n < 2**31:  # int32 exact: B * n_samples <= 46340
            cov_neg = (e_neg * n - s_neg[:, edges[:, 0]] * s_neg[:, edges[:, 1]]).astype(jnp.float32) / (n * n)
        else:  # larger batches: float, the same on one device (across device counts only up to rounding)
            mean_neg = s_neg.astype(jnp.float32) / n
            cov_neg = e_neg.astype(jnp.float32) / n - mean_neg[:, edges[:, 0]] * mean_neg[:, edges[:, 1]]
        m_pos, m_neg = s_pos.astype(jnp.float32) / n, s_neg.astype(jnp.float32) / n
        ascent = {
            "W": cfg.beta * ((e_pos - e_neg).astype(jnp.float32) / n) - corr_penalty[:, None] * cov_neg,
            "b": cfg.beta * ((s_pos - s_neg).astype(jnp.float32) / n),
        }
        if world:
            B = x0.shape[0]
            # integer count differences (exact sums over chains), divided by the samples at the end
            dm = chains[0][:, :B, :n_img] - chains[0][:, B:, :n_img]  # (T, B, n_img)
            grad_k = conditioning.conditioning_grad(dm, feats, batch["actions"], cfg.n_cond_actions) / cfg.n_samples
            ascent["K"] = cfg.beta * grad_k
        grads = jax.tree.map(jnp.negative, ascent)
        updates, opt_state = dtm.optimizer.update(grads, state.opt_state, params)
        metrics = {
            "gap": jnp.abs(m_pos - m_neg)[:, visible[:n_img]].mean(),
            "grad_norm": optax.tree.norm(ascent),
            "lr": dtm.lr_schedule(state.step),
        }
        new = state._replace(params=optax.apply_updates(params, updates), opt_state=opt_state, step=state.step + 1,
                             key=next_key)  # fmt: skip
        if state.layout_counts is not None:  # a layout model's prior: count this batch's layouts
            new = new._replace(layout_counts=layouts.count_layouts(state.layout_counts, batch["layout"]))
        if state.layout_moves is not None:  # a world model's layout dynamics: count this batch's moves
            moves = layouts.count_moves(state.layout_moves, batch["actions"], batch["move_ctx"], batch["move_out"])
            new = new._replace(layout_moves=moves)
        return new, metrics

    return train_step


def _step_chains(lat, visible, params_k, j_k, s_in, key, betas, every, init_beta, clamp=None, extra=None, mesh=None):
    """Free chains of one diffusion step from inputs ``s_in`` (n, n_visible) ±1: the visible spins every
    ``every`` sweeps, (len(betas) // every + 1, n, n_visible) int8, the first record being the start.

    ``clamp``: optional ``(mask, spins)``, both ``(n, n_visible)``: visible bits held at the given ±1 spins
    (labels for conditional samples, the image for classification). ``extra``: a conditioning field
    ``(n, n_visible)`` added to the visible biases (world models). ``mesh``: a
    :class:`~dtm_lite.scale.sharding.ChainMesh` the chains are split over (the uniforms are keyed by global
    chain index, so the result does not depend on it)."""
    g = lat.graph
    k_init, k_run = jax.random.split(key)
    bias = params_k["b"][None] + _visible_bias(g.n_nodes, visible, j_k, s_in, extra)
    spins = _init_spins(k_init, bias, init_beta)
    mask = None
    if clamp is not None:
        vis_mask, vis_spins = clamp
        mask = jnp.zeros(bias.shape, bool).at[:, visible].set(vis_mask)
        spins = spins.at[:, visible].set(jnp.where(vis_mask, vis_spins, spins[:, visible]))
    p = smp.make_params(lat, params_k["W"], bias, mask)
    x0, x1 = smp.to_lattice(lat, spins, fill=1.0)
    if mesh is not None:  # the chain axis (last) split over the devices
        x0, x1 = mesh.constrain(x0, -1), mesh.constrain(x1, -1)
        p = p._replace(**{f: mesh.constrain(getattr(p, f), -1) for f in ("b0", "b1", "clamp0", "clamp1")})

    def observe(acc, x0, x1):
        return acc, smp.from_lattice(lat, x0, x1)[:, visible].astype(jnp.int8)

    _, _, _, outs = smp.run_chains(
        lat, p, k_run, x0, x1, betas, warmup_sweeps=0, n_samples=betas.shape[0] // every + 1,
        sweeps_per_sample=every, observe=observe, acc=None, poly_exp=True,
    )  # fmt: skip
    return outs


def _make_free_run_fn(dtm: DTM, sweeps: int, every: int):
    cfg, lat = dtm.config, dtm.lattice
    visible = jnp.asarray(dtm.visible_all)
    betas = jnp.full((sweeps,), cfg.beta, jnp.float32)
    mesh = dtm.mesh

    @functools.partial(jax.jit, out_shardings=mesh.replicated, compiler_options=smp.COMPILER_OPTIONS)
    def free_run(params_k, j_k, s_in, key):
        outs = _step_chains(lat, visible, params_k, j_k, s_in, key, betas, every, cfg.beta, mesh=mesh)
        return (outs > 0).astype(jnp.uint8)

    return free_run


def _make_generate_fn(dtm: DTM, sweeps: int, every: int, trajectory: bool):
    """The jitted generation kernel ``generate(params, key, betas, n, cond=None) -> (bits (n, n_visible_all)
    uint8, trajectory)``. ``cond`` (a dict, every entry optional): ``"labels"`` ``(n,)`` clamps the label bits
    to those classes; ``"image"`` ``(n, n_visible)`` clamps the image bits (step k: the image noised to
    ``t_k``, for :meth:`DTM.classify`); ``"prev"`` ``(n, n_visible)`` and ``"actions"`` ``(n,)`` are a world
    model's conditioning inputs.

    On a mesh (:attr:`DTM.mesh`) the chains are split over its devices and the outputs come back replicated;
    the frames are the same for any device count."""
    cfg, lat, mesh = dtm.config, dtm.lattice, dtm.mesh
    visible = jnp.asarray(dtm.visible_all)
    n_img, n_lab = dtm.encoding.n_bits, cfg.n_label_bits
    J = jnp.asarray(dtm.J_bits if n_lab else dtm.J, jnp.float32)
    times = jnp.asarray(dtm.times, jnp.float32)
    cond_index = jnp.asarray(dtm.cond_index) if dtm.cond_index is not None else None
    offset, scale = dtm.cond_scaling

    @functools.partial(
        jax.jit,
        static_argnums=3,
        out_shardings=(mesh.replicated, mesh.replicated),
        compiler_options=smp.COMPILER_OPTIONS,
    )
    def generate(params, key, betas, n, cond=None):
        cond = cond or {}
        k_in, key = jax.random.split(key)
        s_in = jnp.where(jax.random.bernoulli(k_in, 0.5, (n, n_img + n_lab)), 1.0, -1.0)
        mask = jnp.zeros((n, n_img + n_lab), bool)
        spins = jnp.zeros((n, n_img + n_lab), jnp.float32)
        if "labels" in cond:
            code = cond_code(cond["labels"])
            mask, spins = mask.at[:, n_img:].set(True), spins.at[:, n_img:].set(code)
        feats = cond_features(cond)
        traj = []
        for k in reversed(range(cfg.num_diffusion_steps)):
            key, sub, k_noise = jax.random.split(key, 3)
            params_k = {name: a[k] for name, a in params.items()}
            clamp = None
            if "image" in cond:
                noisy = add_noise(k_noise, cond["image"], times[k], cfg.image_rate)
                mask_k = mask.at[:, :n_img].set(True)
                clamp = (mask_k, spins.at[:, :n_img].set(2.0 * noisy - 1.0))
            elif "labels" in cond:
                clamp = (mask, spins)
            extra = None
            if feats is not None:
                field = conditioning.conditioning_field(params["K"][k : k + 1], feats, cond["actions"])[0]
                extra = jnp.pad(field, ((0, 0), (0, n_lab)))
            outs = _step_chains(lat, visible, params_k, J[k], s_in, sub, betas, every, cfg.beta, clamp, extra, mesh)
            traj.append(outs if trajectory else outs[-1:])
            s_in = outs[-1].astype(jnp.float32)
        return (s_in > 0).astype(jnp.uint8), jnp.concatenate(traj)

    def cond_code(labels):
        return 2.0 * conditioning.label_code(labels, cfg.n_classes, cfg.label_spots).astype(jnp.float32) - 1.0

    def cond_features(c):
        if "prev" not in c:
            return None
        index = cond_index
        assert index is not None, "prev given to a model without conditioning inputs"
        return conditioning.features(c["prev"], index, offset, scale)

    return generate
