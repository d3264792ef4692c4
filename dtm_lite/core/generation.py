"""Generation: the denoising chain ``x_T -> x_{T-1} -> ... -> x_0`` of a trained DTM, as jitted pure kernels.

Generation starts from pure noise, ``x_T ~ Bernoulli(0.5)`` on every visible bit. Step k (k = T-1 .. 0) runs
free Gibbs chains of its EBM with the input spins clamped to the step before's last sample, with β ramped
over the sweeps; the visible spins of its last sweep are the next step's input (Jelinčič et al., arXiv
2510.23972). Conditioners (:mod:`dtm_lite.core.conditioner`) clamp their extra bits or add their field.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dtm_lite.core import sampler as smp
from dtm_lite.core.diffusion import add_noise
from dtm_lite.core.spec import ChainSplit, ModelSpec
from dtm_lite.core.train_step import init_spins, split_chains, visible_bias


def step_chains(lat, visible, params_k, j_k, s_in, key, betas, every, init_beta, clamp=None, extra=None,
                mesh: ChainSplit | None = None):  # fmt: skip
    """Free chains of one diffusion step from inputs ``s_in`` ``(n, n_visible)`` ±1: the visible spins every
    ``every`` sweeps, ``(len(betas) // every + 1, n, n_visible)`` int8, the first record being the start.

    ``clamp``: optional ``(mask, spins)``, both ``(n, n_visible)``: visible bits held at the given ±1 spins.
    ``extra``: a conditioning field ``(n, n_visible)`` added to the visible biases. The uniforms are keyed by
    global chain index, so the result does not depend on how ``mesh`` splits the chains."""
    k_init, k_run = jax.random.split(key)
    bias = params_k["b"][None] + visible_bias(lat.graph.n_nodes, visible, j_k, s_in, extra)
    spins = init_spins(k_init, bias, init_beta)
    mask = None
    if clamp is not None:
        vis_mask, vis_spins = clamp
        mask = jnp.zeros(bias.shape, bool).at[:, visible].set(vis_mask)
        spins = spins.at[:, visible].set(jnp.where(vis_mask, vis_spins, spins[:, visible]))
    x0, x1 = smp.to_lattice(lat, spins, fill=1.0)
    p, x0, x1 = split_chains(mesh, smp.make_params(lat, params_k["W"], bias, mask), x0, x1)

    def observe(acc, x0, x1):
        return acc, smp.from_lattice(lat, x0, x1)[:, visible].astype(jnp.int8)

    _, _, _, outs = smp.run_chains(
        lat, p, k_run, x0, x1, betas, warmup_sweeps=0, n_samples=betas.shape[0] // every + 1,
        sweeps_per_sample=every, observe=observe, acc=None, poly_exp=True,
    )  # fmt: skip
    return outs


def step_clamp(spec: ModelSpec, cond, k: int, key: jax.Array, n: int):
    """Step k's clamped visible bits ``(mask, spins)`` ``(n, n_visible_all)``, or None: the conditioners' clamped
    bits, and with ``cond["image"]`` (bits ``(n, n_image_bits)``) the image noised to ``t_k`` (classification)."""
    n_img, n_all = spec.n_image_bits, len(spec.visible_all)
    mask, spins, at, held_any = jnp.zeros((n, n_all), bool), jnp.zeros((n, n_all), jnp.float32), n_img, False
    for p in spec.conditioners:
        held = p.clamp(cond) if p.n_bits else None
        if held is not None:
            mask, spins = mask.at[:, at : at + p.n_bits].set(True), spins.at[:, at : at + p.n_bits].set(held)
            held_any = True
        at += p.n_bits
    if "image" in cond:
        noisy = add_noise(key, cond["image"], spec.times[k], spec.config.image_rate)
        return mask.at[:, :n_img].set(True), spins.at[:, :n_img].set(2.0 * noisy - 1.0)
    return (mask, spins) if held_any else None


def step_field(spec: ModelSpec, params, cond, k: int):
    """Step k's summed conditioners' field ``(n, n_visible_all)`` (zero on the extra bits), or None."""
    params_k = {name: a[k : k + 1] for name, a in params.items()}
    fields = [f[0] for f in (p.field(params_k, cond) for p in spec.conditioners) if f is not None]
    if not fields:
        return None
    return jnp.pad(functools.reduce(jnp.add, fields), ((0, 0), (0, spec.n_extra_bits)))


def make_generate(spec: ModelSpec, sweeps: int, every: int, trajectory: bool, mesh: ChainSplit):
    """The jitted ``generate(params, key, betas, n, cond=None) -> (bits (n, n_visible_all) uint8, records)``.

    ``betas`` ``(sweeps,)`` the β ramp of every step; ``cond``: what the conditioners read (labels, a world
    model's inputs), and ``"image"`` to clamp the image bits (step k: noised to ``t_k``). The records are every
    step's visible spins every ``every`` sweeps (its last record alone unless ``trajectory``), noisiest step
    first. On ``mesh`` the chains are split over its devices; the result is the same for any device count."""
    cfg, lat = spec.config, spec.lattice
    visible, n_all = jnp.asarray(spec.visible_all), len(spec.visible_all)
    J = jnp.asarray(spec.J if spec.J_bits is None else spec.J_bits, jnp.float32)

    @functools.partial(jax.jit, static_argnums=3, out_shardings=(mesh.replicated, mesh.replicated),
                       compiler_options=smp.COMPILER_OPTIONS)  # fmt: skip
    def generate(params, key, betas, n, cond=None):
        cond = cond or {}
        k_in, key = jax.random.split(key)
        s_in = jnp.where(smp.uniform(k_in, (n, n_all)) < 0.5, 1.0, -1.0)
        records = []
        for k in reversed(range(cfg.num_diffusion_steps)):
            key, sub, k_noise = jax.random.split(key, 3)
            params_k = {name: a[k] for name, a in params.items()}
            clamp, extra = step_clamp(spec, cond, k, k_noise, n), step_field(spec, params, cond, k)
            outs = step_chains(lat, visible, params_k, J[k], s_in, sub, betas, every, cfg.beta, clamp, extra, mesh)
            records.append(outs if trajectory else outs[-1:])
            s_in = outs[-1].astype(jnp.float32)
        return (s_in > 0).astype(jnp.uint8), jnp.concatenate(records)

    return generate


def make_free_run(spec: ModelSpec, sweeps: int, every: int, mesh: ChainSplit):
    """The jitted ``free_run(params_k, j_k, s_in, key) -> (sweeps // every + 1, n, n_visible_all) uint8``: one
    step's free chains at the training β from inputs ``s_in`` ±1 (what the mixing diagnostic watches)."""
    visible, betas = jnp.asarray(spec.visible_all), jnp.full((sweeps,), spec.config.beta, jnp.float32)

    @functools.partial(jax.jit, out_shardings=mesh.replicated, compiler_options=smp.COMPILER_OPTIONS)
    def free_run(params_k, j_k, s_in, key):
        outs = step_chains(spec.lattice, visible, params_k, j_k, s_in, key, betas, every, spec.config.beta, mesh=mesh)
        return (outs > 0).astype(jnp.uint8)

    return free_run
