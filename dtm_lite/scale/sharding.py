"""Chains over devices: one 1-D device mesh, the state replicated, the batch rows (chains) sharded.

A DTM runs on a :class:`ChainMesh` (``DTM(config, devices=...)`` or :meth:`DTM.use_devices`). The training
step is one ``jax.jit`` with ``in_shardings`` (state replicated, batch rows split over the mesh axis
``"chains"``) and XLA's SPMD partitioner (GSPMD) spreads the rest: the sampler's lattice arrays
``(2, n, n, ..., chains)`` carry a sharding constraint on their chain axis, the moments are summed over
chains on each device and then across devices (an all-reduce), and parameters, optimiser state and
metrics come back replicated. Generation shards its chains the same way.

Why the result does not depend on the number of devices (bit for bit):

- all randomness is a function of the *global* array index: the sampler's uniforms hash (key, index of the
  global lattice array) (``dtm_lite.core.sampler._uniforms``), and ``jax.random`` draws on global shapes are
  sharding-invariant with ``jax_threefry_partitionable`` (the default since JAX 0.5; checked by
  :func:`check_partitionable`);
- every reduction over chains sums integer-valued float32 counts (sums of ±1 spins and edge products
  over samples and chains) and divides once at the end (:func:`dtm_lite.core.train_step.phase_moments`); sums of
  integers below 2**24 are exact in any order, so partial sums per device and their all-reduce give the
  same value as one device's sum.

With one device the mesh has one device and the same jitted function runs (XLA does not partition it).

Multi-host (one process per host, ``jax.distributed.initialize``): the mesh spans every process's
devices, each process reads its own share of the batch rows and :func:`global_batch` assembles the
global batch with ``jax.make_array_from_process_local_data``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "chains"
"""Name of the mesh axis the chains (batch rows of both phases, generation's chains) are split over."""

Devices = int | str | Sequence[Any] | None
"""What ``devices=`` accepts: None (1 device, this process's first), an int N (the first N of
``jax.devices()``), ``"all"`` (every device of every process) or a sequence of ``jax.Device``."""


def resolve_devices(devices: Devices = None) -> list[Any]:
    """The devices a :data:`Devices` value names, checked; a clear ``ValueError`` otherwise."""
    every = jax.devices()
    if devices is None:
        return [jax.local_devices()[0]]
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices must be None, an int >= 1, 'all' or a list of jax devices, got {devices!r}")
        return list(every)
    if isinstance(devices, int | np.integer) and not isinstance(devices, bool):
        n = int(devices)
        if not 1 <= n <= len(every):
            raise ValueError(
                f"devices={n}, but JAX sees {len(every)} device(s) ({every[0].platform}); ask for 1 to "
                f"{len(every)}, or set XLA_FLAGS=--xla_force_host_platform_device_count={max(n, 1)} before "
                "JAX starts for virtual CPU devices"
            )
        return list(every[:n])
    if isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        if len(set(devices)) != len(devices):
            raise ValueError(f"devices lists a device twice: {list(devices)}")
        return list(devices)
    raise ValueError(f"devices must be None, an int >= 1, 'all' or a list of jax devices, got {devices!r}")


@dataclass(frozen=True, eq=False)
class ChainMesh:
    """A 1-D mesh over axis :data:`AXIS`, with the shardings the DTM's kernels use."""

    mesh: Mesh

    @classmethod
    def of(cls, devices: Devices = None) -> ChainMesh:
        return cls(Mesh(np.array(resolve_devices(devices), dtype=object), (AXIS,)))

    @property
    def n_devices(self) -> int:
        return int(self.mesh.size)

    @property
    def devices(self) -> list[Any]:
        return list(self.mesh.devices.flat)

    @property
    def replicated(self) -> NamedSharding:
        """Every device holds the whole array (parameters, optimiser state, keys, metrics)."""
        return NamedSharding(self.mesh, P())

    @property
    def rows(self) -> NamedSharding:
        """The leading axis (batch rows) split over the devices."""
        return NamedSharding(self.mesh, P(AXIS))

    def constrain(self, x: jax.Array, axis: int) -> jax.Array:
        """Inside ``jax.jit``: ask XLA to split ``x``'s ``axis`` (a chain axis) over the devices. A no-op on
        one device, or where that axis has length 1 (a per-chain array broadcast over chains)."""
        if self.n_devices == 1 or x.shape[axis] == 1:
            return x
        spec: list[str | None] = [None] * x.ndim
        spec[axis % x.ndim] = AXIS
        return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, P(*spec)))

    def check_batch_size(self, batch_size: int) -> None:
        """Batch rows are split evenly: ``batch_size`` must be a multiple of the device count."""
        n = self.n_devices
        if batch_size % n:
            lo, hi = batch_size // n * n, -(-batch_size // n) * n
            fix = f"batch_size={hi}" if lo == 0 else f"batch_size={lo} or {hi}"
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {n} devices its rows are split over: use "
                f"{fix} (a multiple of {n}), or fewer devices (devices=N with N dividing {batch_size})"
            )

    def put_state(self, state: Any) -> Any:
        """The state (any pytree) replicated on every device of the mesh."""
        if jax.process_count() == 1:
            return jax.device_put(state, self.replicated)
        # every process holds the same values: each places its own devices' copies
        return jax.tree.map(lambda a: _from_local_copy(a, self.replicated), state)

    def __repr__(self) -> str:
        return f"ChainMesh({self.n_devices} x {self.devices[0].platform})"


def _from_local_copy(a: Any, sharding: NamedSharding) -> jax.Array:
    if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(a))
        return jax.random.wrap_key_data(jax.make_array_from_callback(data.shape, sharding, lambda i: data[i]))
    arr = np.asarray(a)
    return jax.make_array_from_callback(arr.shape, sharding, lambda i: arr[i])


def global_batch(chain_mesh: ChainMesh, local: dict[str, Any], global_rows: int) -> dict[str, jax.Array]:
    """The global batch (rows sharded over the mesh) from this process's rows: ``local`` is a dict of arrays
    whose leading axis is this process's ``global_rows / jax.process_count()`` rows (process ``i`` holds
    rows ``i * b .. (i + 1) * b - 1`` of the global batch). One process: a plain ``device_put``."""
    out = {}
    for name, a in local.items():
        a = np.asarray(a)
        out[name] = jax.make_array_from_process_local_data(chain_mesh.rows, a, (global_rows,) + a.shape[1:])
    return out


COORDINATOR_WAIT_S = 300
"""Seconds :func:`initialize_distributed` waits for the coordinator and the other processes by default."""


def initialize_distributed(
    coordinator: str, num_processes: int, process_id: int, timeout_s: int = COORDINATOR_WAIT_S,
    log: Callable[[str], None] | None = None,
) -> None:  # fmt: skip
    """``jax.distributed.initialize`` for multi-host runs (one process a host), with CPU collectives (gloo)
    and a clear error for an unreachable coordinator: processes other than 0 first wait up to ``timeout_s``
    for ``coordinator`` (``HOST:PORT``, port 1..65535, where process 0 listens) to accept connections, then
    raise ``ConnectionError`` naming it (JAX itself would abort the process with a gRPC deadline message).
    ``log`` (e.g. ``print``) gets a line when the wait begins and every 30 s of it. Call before anything else
    touches JAX's devices. On SLURM / Open MPI clusters ``jax.distributed.initialize()`` without arguments
    detects all this itself."""
    host, port = _coordinator_address(coordinator)
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in 0..{num_processes - 1}, got {process_id}")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int) or timeout_s < 1:
        raise ValueError(f"the coordinator timeout must be a whole number of seconds >= 1, got {timeout_s!r}")
    say = log or (lambda text: None)
    if process_id == 0:
        say(f"process 0 of {num_processes}: waiting up to {timeout_s} s for the others to join at {coordinator}")
    else:
        say(f"process {process_id} of {num_processes}: waiting up to {timeout_s} s for the coordinator {coordinator}")
        _wait_for(host, port, coordinator, timeout_s, say)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
        initialization_timeout=timeout_s,
    )  # fmt: skip


def _coordinator_address(coordinator: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (an IPv6 host in brackets), the port in 1..65535."""
    host, sep, port_text = str(coordinator).rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"coordinator must be HOST:PORT, got {coordinator!r}")
    if not 1 <= int(port_text) <= 65535:
        raise ValueError(f"coordinator {coordinator!r}: the port must be in 1..65535, got {int(port_text)}")
    return host.strip("[]"), int(port_text)


def _wait_for(host: str, port: int, coordinator: str, timeout_s: int, say: Callable[[str], None]) -> None:
    """Try to connect to ``host:port`` every 0.5 s until it accepts or ``timeout_s`` pass (ConnectionError)."""
    import socket
    import time

    start = time.monotonic()
    told = 0
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as err:
            waited = time.monotonic() - start
            if waited >= timeout_s:
                raise ConnectionError(
                    f"the coordinator {coordinator} (process 0) did not answer within {timeout_s} s ({err}); "
                    "start process 0 with the same --coordinator, and check the host name, port and firewall"
                ) from None
            if waited >= told + 30:
                told += 30
                say(f"still waiting for the coordinator {coordinator} ({told} s of {timeout_s} s): {err}")
            time.sleep(0.5)


# what jax.distributed.initialize() reads without arguments (jax/_src/clusters): a SLURM job step, Open MPI (ORTE)
SLURM_VARS = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
OMPI_VARS = ("OMPI_MCA_orte_hnp_uri", "OMPI_COMM_WORLD_SIZE")


def cluster_process_count(env: dict[str, str] | None = None) -> int:
    """Processes of the SLURM job step (``SLURM_NTASKS``, ``srun``) or Open MPI launch (``OMPI_COMM_WORLD_SIZE``,
    ``mpirun``) this process belongs to, as JAX's own cluster detection reads them; 1 outside both."""
    env = dict(os.environ) if env is None else env
    for names, count in ((SLURM_VARS, "SLURM_NTASKS"), (OMPI_VARS, "OMPI_COMM_WORLD_SIZE")):
        if all(k in env for k in names) and env[count].isdigit():
            return int(env[count])
    return 1


def initialize_from_cluster(timeout_s: int = 300) -> None:
    """``jax.distributed.initialize()`` without arguments, under SLURM or Open MPI (see
    :func:`cluster_process_count`): JAX reads the coordinator, the process count and this process's index
    from the launcher's environment. CPU collectives over gloo, as :func:`initialize_distributed`."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(initialization_timeout=timeout_s)


def check_partitionable() -> None:
    """Bit-identity across device counts needs ``jax_threefry_partitionable`` (default True since JAX 0.5)."""
    if not jax.config.jax_threefry_partitionable:  # type: ignore[attr-defined]
        raise RuntimeError(
            "jax_threefry_partitionable is off: random draws would depend on the device count; "
            "jax.config.update('jax_threefry_partitionable', True)"
        )
