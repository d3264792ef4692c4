"""``batch_size="auto"``: the largest batch whose training step fits a device's memory budget.

:class:`~dtm_lite.model.DTMConfig` holds an int ``batch_size``; resolve ``"auto"`` before building it::

    config = lunarlander_settings.model_config()  # dtm_lite.data.lunarlander_settings
    config = config.replace(batch_size=auto_batch_size(config, n_devices=jax.device_count()))
    dtm = DTM(config, devices="all")

(``python -m dtm_lite train --batch-size auto`` does this and prints the choice.) The batch is global: its
rows are split over ``n_devices`` (:mod:`dtm_lite.scale.sharding`), so the result is a multiple of
``n_devices`` and the budget applies to each device.

The estimate (:func:`training_bytes`) counts the arrays of one training step (``DTM.train_fn``), the way
:meth:`DTM.generation_bytes_per_chain <dtm_lite.model.DTM.generation_bytes_per_chain>` does for generation. Each
batch row runs two chains (its positive and negative phase) on lattice arrays ``(2, n, n, 1, 2B)``
(``phase_moments``; the T diffusion steps run one after another). For each row and node: per chain the spins,
biases, clamps, counters and uniforms, the tiled copies the stencil reads, the sample sums and the chain-padded
copies and their temporaries (about 11 float32 a chain), and the edge products ``(deg, 2, n, n, 2B)`` that the
moments sum (``deg`` int8 a chain); for each row and diffusion step 12 float32 a visible bit (noised pairs, their
±1 forms, the world model's per-chain counts); a world model adds its conditioning features. Fixed: the state in
and out (parameters and AdamW's two moments), gradients and updates, and one step's weight planes and edge-moment
accumulators. The chain axis is padded to a multiple of 16 (``sampler.CHAIN_MULTIPLE``) before it is split. On
several devices XLA's partitioner keeps some per-chain arrays whole on each device (those built before the chain
axis is split), so the estimate adds 2 float32 a node for every row of the global batch there.

Checked against XLA's own count on CPU (``train_fn.lower(...).compile().memory_analysis()``: temporaries +
outputs + arguments, tests/test_batch_size.py): the estimate is above it and at most 2x above it, on one
device for the quick config at batches 16 and 50, a labelled world model with T = 2, and per device on 2 virtual
devices. GPUs fuse differently; the default budget leaves room for that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dtm_lite.core.sampler import CHAIN_MULTIPLE
from dtm_lite.core.validation import check_int

if TYPE_CHECKING:
    from dtm_lite.core.config import DTMConfig

AUTO = "auto"
"""The value of ``batch_size`` (and ``--batch-size``) that asks for :func:`auto_batch_size`."""

CPU_BUDGET_BYTES = 2 << 30
"""Default budget a device where JAX does not report the device's memory (CPU): 2 GiB. Virtual CPU devices
(``--xla_force_host_platform_device_count``) share the host's memory: the budget is per device all the same."""

DEVICE_MEMORY_FRACTION = 0.5
"""Default budget a device where JAX reports its memory (GPU: ``device.memory_stats()["bytes_limit"]``, the
pool JAX may use, by default 75% of the GPU): this fraction of it, for the other arrays (evaluation,
generation's chunks of ``dtm_lite.sampling.GENERATE_CHUNK_BYTES``) and for XLA's own choices on that backend."""


def _sizes(config: DTMConfig) -> dict[str, int]:
    """The sizes the estimate needs: lattice nodes, degree, edges, visible bits, parameters."""
    from dtm_lite.conditioning.inputs import conditioning_index, input_actions, input_frames
    from dtm_lite.core.encoding import Encoding
    from dtm_lite.core.graph import GridGraph

    graph = GridGraph.from_preset(config.preset)
    side = graph.side + graph.side % 2  # the lattice pads odd sides to even
    encoding = Encoding.from_config(config)
    n_img = encoding.n_bits
    T = config.num_diffusion_steps
    n_feat = 0
    k_step = 0
    n_actions = input_actions(config)
    if n_actions:  # a world model's previous frames and a layout model's layout, side by side
        index = conditioning_index(
            config.image_shape, encoding.bits_per_pixel, config.cond_radius, input_frames(config)
        )
        n_feat = index.shape[1] + 1
        k_step = n_actions * n_img * n_feat
    step_params = graph.n_edges + graph.n_nodes + k_step
    return {
        "nodes": side * side, "degree": graph.degree, "T": T, "n_img": n_img, "n_feat": n_feat,
        "visible": n_img + config.n_label_bits, "step_params": step_params, "params": T * step_params,
    }  # fmt: skip


def training_bytes_per_row(config: DTMConfig) -> int:
    """Estimated bytes of one batch row (two chains) of the training step, on the device that runs it."""
    s = _sizes(config)
    # per node: the two chains' int8 edge products (deg a chain) and 22 float32 lattice values (spins, biases,
    # clamps, uniforms, the stencil's tiled copies, sample sums, their temporaries)
    per_node = 2 * s["degree"] + 4 * 22
    floats = 12 * s["T"] * s["visible"] + (1 + s["T"]) * s["n_img"] * s["n_feat"]
    return s["nodes"] * per_node + 4 * floats + 3 * s["visible"]  # + the batch (uint8 bits, a previous frame)


def training_fixed_bytes(config: DTMConfig) -> int:
    """Estimated bytes of the training step that do not grow with the batch: 8 x the parameters (the state in
    and out: parameters and AdamW's two moments; gradients and updates) and 8 x one diffusion step's parameters
    (its weight planes, edge-moment accumulators and their edge-layout copies)."""
    s = _sizes(config)
    return 4 * (8 * s["params"] + 8 * s["step_params"])


def training_bytes(config: DTMConfig, batch_size: int | None = None, n_devices: int = 1) -> int:
    """Estimated memory of one training step on each device, in bytes, for a global batch of ``batch_size``
    rows (default ``config.batch_size``) split over ``n_devices``: :func:`training_fixed_bytes` + the rows a
    device runs (chains padded to a multiple of 16, then split) x :func:`training_bytes_per_row`, + on several
    devices 8 bytes a node for every global row (see the module docstring)."""
    batch_size = config.batch_size if batch_size is None else check_int("batch_size", batch_size, 1)
    n_devices = check_int("n_devices", n_devices, 1)
    chains = -(-2 * batch_size // CHAIN_MULTIPLE) * CHAIN_MULTIPLE
    rows_here = -(-chains // n_devices) / 2
    nbytes = training_fixed_bytes(config) + rows_here * training_bytes_per_row(config)
    if n_devices > 1:  # arrays built before the chain axis is split (see the module docstring)
        nbytes += batch_size * 4 * 2 * _sizes(config)["nodes"]
    return int(nbytes)


def device_budget_bytes(device: Any = None) -> int:
    """The default memory budget of ``device`` (default ``jax.local_devices()[0]``): ``DEVICE_MEMORY_FRACTION``
    of ``device.memory_stats()["bytes_limit"]`` where JAX reports it (GPU), else ``CPU_BUDGET_BYTES``. The
    limit, not what is free, so that hosts with the same devices agree."""
    import jax

    device = jax.local_devices()[0] if device is None else device
    try:
        stats = device.memory_stats()
    except Exception:  # backends without memory statistics
        stats = None
    limit = (stats or {}).get("bytes_limit")
    if not limit:
        return CPU_BUDGET_BYTES
    return int(DEVICE_MEMORY_FRACTION * int(limit))


def auto_batch_size(config: DTMConfig, n_devices: int = 1, budget_bytes: int | None = None) -> int:
    """The largest global batch, a multiple of ``n_devices``, whose :func:`training_bytes` on each device
    stays within ``budget_bytes`` (default :func:`device_budget_bytes` of this process's first device).
    ``config.batch_size`` is ignored. Raises ``ValueError`` when not even one row a device fits.

    It maximises the work of one step, nothing else: the learning rate is not rescaled, and a stream must
    offer ``batch_size x batches_per_epoch`` frames an epoch (``--episodes-per-epoch`` in the CLI)."""
    n_devices = check_int("n_devices", n_devices, 1)
    budget = device_budget_bytes() if budget_bytes is None else check_int("budget_bytes", budget_bytes, 1)

    def fits(rows_per_device: int) -> bool:
        return training_bytes(config, rows_per_device * n_devices, n_devices) <= budget

    if not fits(1):
        need = training_bytes(config, n_devices, n_devices)
        raise ValueError(
            f"not even one batch row a device fits the memory budget of {budget / 2**20:.1f} MiB: the training "
            f"step of {config.preset} needs about {need / 2**20:.1f} MiB a device for batch_size={n_devices}; "
            "raise the budget, or use a smaller preset or fewer diffusion steps"
        )
    lo, hi = 1, 2
    while fits(hi):  # the estimate grows with the batch: double, then bisect
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo * n_devices
