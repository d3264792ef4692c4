"""Generation on the host: conditioning checked, a layout model's layouts drawn first (ancestral sampling),
the chains run in memory-bounded chunks by the jitted kernel of :mod:`dtm_lite.core.generation`, bits decoded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from dtm_lite.conditioning.batches import check_bits, generation_inputs
from dtm_lite.conditioning.build import find
from dtm_lite.conditioning.labels import decode_labels
from dtm_lite.conditioning.layout import LayoutInputs
from dtm_lite.core.validation import check_beta, check_bool, check_float, check_int

if TYPE_CHECKING:
    from dtm_lite.model import DTM

GENERATE_CHUNK_BYTES = 1 << 30
""":meth:`DTM.generate` runs its chains in chunks of at most this much estimated working memory."""

GENERATE_CHUNK_CHAINS = 128
"""On CPU, :meth:`DTM.generate` runs at most this many chains a device in one kernel call (unless
``max_chunk_chains`` says otherwise). The sampler keeps each chain's spins, hash counters and biases in cache: on
80_12 that is about 64 KB a chain, so 128 chains take 8 MB and 512 chains 27-33 MB, the size of a 32 MiB L3
cache. Measured on a 2-core Zen 5 with AVX-512 (``benchmarks/README.md``, ``benchmarks/eval_gen.py --chunk-chains
128``): 500 chains in one call ran at 1.6e9 spin updates/s, in chunks of 128 at 2.9e9, the rate of the sampler
alone; one core's chain-sweep costs the same from 64 to 256 chains and 1.4x more at 512. On a Zen 3 without
AVX-512 the gain was 1.07-1.12x in CPU time (``benchmarks/sample_cost.py --before-after``). On a GPU every chain
of a chunk is in flight at once, so there only :data:`GENERATE_CHUNK_BYTES` bounds a chunk."""

LAYOUT_STREAM = 0x1A7
"""generate's key folded with this draws a layout model's layouts."""


def bytes_per_chain(model: DTM, sweeps: int | None = None, record_every: int | None = None) -> int:
    """Estimated working memory of one chain of generation, in bytes: about 12 float32 values a node (spins,
    biases, uniforms and the field's temporaries; XLA's own count on CPU is 8-10), plus, with a trajectory
    recorded every ``record_every`` sweeps, 3 bytes a visible bit a record (the int8 records, their
    concatenation and the host copy)."""
    nbytes = 12 * 4 * model.graph.n_nodes
    if record_every is not None:
        sweeps = model.config.generation_sweeps if sweeps is None else sweeps
        nbytes += 3 * model.num_steps * (sweeps // record_every + 1) * model.config.n_visible
    return nbytes


def draw_layouts(model: DTM, key: jax.Array, cond: dict[str, Any], n: int) -> dict[str, Any]:
    """Ancestral sampling: a layout model's layouts drawn from its prior, a world model's next layouts from its
    layout dynamics (given ``cond["prev"]``), each with ``key`` folded with :data:`LAYOUT_STREAM`. A labelled
    layout model draws them from ``p(ℓ | class)`` of ``cond["labels"]``, or draws the class too (then in
    ``cond["labels"]``, so that label bits, if the model has them, are held at it)."""
    plug = find(model.spec.conditioners, LayoutInputs)
    if plug is None:
        return cond
    k_layout, state = jax.random.fold_in(key, LAYOUT_STREAM), model.state.plugin_state
    if not model.config.n_actions:
        ids, classes = plug.draw(k_layout, state, n, cond.get("labels"))
        return {**cond, **plug.inputs(ids, labels=classes), **({} if classes is None else {"labels": classes})}
    if "prev" in cond:
        ids = plug.next_ids(k_layout, state, cond["actions"], *plug.previous(cond["prev"]))
        return {**cond, **plug.inputs(ids, cond["prev"], cond["actions"])}
    return cond


def chunk_chains(model: DTM, budget: int, sweeps: int, record_every: int | None,
                 max_chains: int | None = None) -> int:  # fmt: skip
    """The most chains one kernel call of generation runs: ``budget // bytes_per_chain(model, sweeps,
    record_every)`` (at least 1), and at most ``max_chains``; ``max_chains=None`` means
    :data:`GENERATE_CHUNK_CHAINS` a device when every device of the model's mesh is a CPU, no limit elsewhere."""
    per_chunk = max(1, budget // bytes_per_chain(model, sweeps, record_every))
    if max_chains is None and all(d.platform == "cpu" for d in model.mesh.devices):
        max_chains = GENERATE_CHUNK_CHAINS * model.n_devices
    return per_chunk if max_chains is None else min(per_chunk, max_chains)


def run_chunks(model: DTM, n: int, key: jax.Array, sweeps: int, every: int, trajectory: bool, betas: jax.Array,
               per_chunk: int, cond: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:  # fmt: skip
    """The chains in chunks of at most ``per_chunk`` chains (:func:`chunk_chains`): images ``(n, H, W, C)``, the
    trajectory (or None) and the extra bits ``(n, n_extra_bits)``. ``ceil(n / per_chunk)`` chunks of equal size
    but the last, so at most two sizes (two compilations). One chunk runs with ``key``, exactly the single run;
    chunk i of several with ``fold_in(key, i)``."""
    fn = model.kernel((sweeps, every, trajectory))
    n_chunks = -(-n // per_chunk)
    size = -(-n // n_chunks)  # at most two chunk sizes, so at most two compilations
    n_img = model.encoding.n_bits
    finals, trajs, extra = [], [], []
    for i in range(n_chunks):
        m = min(size, n - i * size)
        args = (model.state.params, key if n_chunks == 1 else jax.random.fold_in(key, i), betas, m)
        chunk = {k: jnp.asarray(v[i * size : i * size + m]) for k, v in cond.items()}
        final, traj = fn(*args, chunk) if chunk else fn(*args)
        final = np.asarray(final)
        finals.append(model.decode(final[:, :n_img]))
        extra.append(final[:, n_img:])
        if trajectory:
            trajs.append(model.decode(np.asarray(traj)[..., :n_img].reshape(-1, m, n_img)))
        del final, traj
    images = finals[0] if n_chunks == 1 else np.concatenate(finals)
    records = (trajs[0] if n_chunks == 1 else np.concatenate(trajs, axis=1)) if trajectory else None
    return images, records, np.concatenate(extra)


def generate(model: DTM, n: int, key: jax.Array, *, sweeps: int | None = None, beta: Any = None,
             return_trajectory: bool = False, record_every: int = 10, max_chunk_bytes: int | None = None,
             max_chunk_chains: int | None = None, labels: Any = None, prev: Any = None, actions: Any = None,
             return_labels: bool = False, layout: Any = None, quench_fraction: float | None = None) -> Any:  # fmt: skip
    """:meth:`DTM.generate` with a resolved ``key`` (see there for the arguments; ``max_chunk_chains``:
    :func:`chunk_chains`; ``quench_fraction``: :func:`beta_ramp`, default ``config.quench_fraction``)."""
    n = check_int("n", n, 1)
    cond = generation_inputs(model.spec, n, labels, prev, actions, return_labels, layout)
    cfg = model.config
    sweeps = cfg.generation_sweeps if sweeps is None else check_int("sweeps", sweeps, 1)
    b0, b1 = cfg.generation_beta if beta is None else check_beta("beta", beta)
    return_trajectory = check_bool("return_trajectory", return_trajectory)
    every = check_int("record_every", record_every, 1) if return_trajectory else sweeps
    if sweeps % every:
        raise ValueError(f"record_every must divide sweeps ({sweeps}), got {record_every}")
    budget = GENERATE_CHUNK_BYTES if max_chunk_bytes is None else check_int("max_chunk_bytes", max_chunk_bytes, 1)
    if max_chunk_chains is not None:
        max_chunk_chains = check_int("max_chunk_chains", max_chunk_chains, 1)
    per_chunk = chunk_chains(model, budget, sweeps, every if return_trajectory else None, max_chunk_chains)
    if layout is None:
        cond = draw_layouts(model, key, cond, n)
    f = cfg.quench_fraction if quench_fraction is None else check_float("quench_fraction", quench_fraction, 0, 1,
                                                                         hi_open=True)  # fmt: skip
    betas = beta_ramp(b0, b1, sweeps, f, cfg.quench_beta)
    images, records, extra = run_chunks(model, n, key, sweeps, every, return_trajectory, betas, per_chunk, cond)
    out: list[np.ndarray] = [images] + ([records] if records is not None else [])
    if return_labels:  # the label bits drawn, or the class a labelled layout model drew (or was given)
        out.append(decode_labels(extra, cfg.n_classes, cfg.label_spots) if cfg.n_label_bits else cond["labels"])
    return out[0] if len(out) == 1 else tuple(out)


def beta_ramp(
    start: float, end: float, sweeps: int, quench_fraction: float = 0.0, quench_beta: float = 3.0
) -> jax.Array:
    """Each step's β per sweep ``(sweeps,)``: linear from ``start`` to ``end`` over the first ``sweeps - q``
    sweeps, then ``q = min(round(quench_fraction * sweeps), sweeps - 1)`` sweeps at ``quench_beta``.

    A cold quench at the end settles the spins the model is least sure of, such as single pixels of an object's
    colour scattered over the background (measured on the shipped LunarLander model: README, "Measured")."""
    q = min(round(quench_fraction * sweeps), sweeps - 1)
    ramp = jnp.linspace(start, end, sweeps - q, dtype=jnp.float32)
    return jnp.concatenate([ramp, jnp.full((q,), quench_beta, jnp.float32)])


def free_run(model: DTM, step: int, inputs: Any, sweeps: int, key: jax.Array, record_every: int = 1) -> np.ndarray:
    """:meth:`DTM.free_run` with a resolved ``key``."""
    step = check_int("step", step, 0, model.num_steps - 1)
    bits, n_vis = check_bits(model.spec, inputs, "inputs"), model.spec.n_image_bits
    sweeps = check_int("sweeps", sweeps, 1)
    record_every = check_int("record_every", record_every, 1)
    if sweeps % record_every:
        raise ValueError(f"record_every ({record_every}) must divide sweeps ({sweeps})")
    params = jax.tree.map(lambda a: a[step], model.state.params)
    s_in = 2.0 * bits - 1.0
    if model.spec.n_extra_bits:  # extra bits (labels) run free too: inputs 0, nothing known
        s_in = np.concatenate([s_in, np.zeros((len(bits), model.spec.n_extra_bits))], axis=1)
    out = model.kernel(("free", sweeps, record_every))(
        params, jnp.float32(model.spec.J[step]), jnp.asarray(s_in, jnp.float32), key
    )
    return np.asarray(out)[..., :n_vis]  # the image bits
