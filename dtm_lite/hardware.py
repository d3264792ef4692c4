"""What one sample of a DTM costs: on the chip of p-bits it was designed for, on this CPU, and on a GPU.

The chip (Jelinčič et al., "An efficient probabilistic hardware architecture for diffusion-like models", arXiv
2510.23972): every node of the grid graph is a *cell*, a p-bit (probabilistic bit: a circuit whose output is a
random bit with a programmable bias) with its couplings to its neighbours. A block Gibbs *sweep* updates the
``c`` colours of the graph one after another (every jump of a preset has odd ``dx + dy``, so ``c = 2``); all cells
of a colour update at once, in one decorrelation time ``τ0`` of the random number generator (RNG). Generating one
sample runs ``K = config.generation_sweeps`` sweeps in each of the ``T`` diffusion steps. So, per sample:

    E_samp = T · K · N · E_cell              t_samp = T · K · c · τ0
    E_init = T · N · e_init                  t_init = T · τ0      (every cell draws its first state at once)
    E_read = T · n_read · e_read                                  (read-out latency not modelled)
    E = E_samp + E_init + E_read             t = t_samp + t_init

``N = GridGraph.from_preset(config.preset).n_nodes`` (side², the paper's L²), ``n_read`` the visible bits a step
hands on (image bits and label bits). The split into sampling, initialisation and read-out follows the paper's
Appendix E, ``E = T (E_samp + E_init + E_read)`` with ``E_samp = K N (E_rng + E_bias + E_clock + E_nb)`` (its
energy per sample, p. 6: ``T · K · L² · E_cell``); that appendix's own values were not confirmed here, so
``e_init`` and ``e_read`` are this module's assumptions. Of ``E_samp``, the RNG's share ``T · K · N · e_rng`` is
reported too.

Every constant is a field of :class:`Assumptions`, with its source in :data:`SOURCES` (and the text, if any, in
which its value was confirmed while writing this module). Override any of them: ``chip_cost(config,
e_cell=1.3e-15)``. :func:`gpu_bracket` brackets a GPU's energy from *reported* figures (:data:`RTX_3090`), the
method of Jelinčič & Walker, "Energy-efficient Codon Optimization on Thermodynamic Hardware" (Extropic, 2026):
FLOPs / peak × TDP below, wall time × TDP above. :func:`measure_generation` measures this machine (CPU time,
spin updates per second, RAPL energy where readable). ``benchmarks/sample_cost.py`` and notebook 07 use them.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from dtm_lite.core.config import DTMConfig
from dtm_lite.core.graph import PRESETS, GridGraph


class Source(NamedTuple):
    """Where an assumption's default comes from (``where``), in which text its value was found while this module was
    written (``confirmed_in``; empty: not confirmed), and a ``note``."""

    where: str
    confirmed_in: str
    note: str = ""

    @property
    def confirmed(self) -> bool:
        return bool(self.confirmed_in)


DTM_PAPER = "Jelinčič et al., arXiv 2510.23972 v2"
CODON_PAPER = "Jelinčič & Walker, Energy-efficient Codon Optimization on Thermodynamic Hardware (Extropic, 2026)"

SOURCES: dict[str, Source] = {
    "e_cell": Source(
        f"{DTM_PAPER}, p. 6: E_cell ≈ 2 fJ per cell update", "",
        f"not confirmed here from that paper's text; {CODON_PAPER}, §2.3 and §4.7, uses 1.3 fJ per spin per Gibbs "
        "step from the same paper's Appendix E model, validated against a prototype chip to within an order of "
        "magnitude (confirmed in its text)",
    ),
    "tau0": Source(
        f"{DTM_PAPER}, p. 6: RNG autocorrelation time τ0 ≈ 100 ns", "codon paper §2.4",
        f"{CODON_PAPER}, §2.4: '~100 ns (measured from prototype hardware)', citing the DTM paper; the DTM paper's "
        "own text not confirmed here",
    ),
    "e_rng": Source(
        f"{DTM_PAPER}, Appendix J: an RNG of about 10 MHz at about 350 aJ a bit", "codon paper §4.7",
        f"{CODON_PAPER}, §4.7: E_cell 'includes contributions from the RNG (~350 aJ)'; the DTM paper's own text "
        "(and its 10 MHz) not confirmed here",
    ),
    "e_init": Source(
        "this module's assumption: initialising a step draws every cell once, one cell update's energy", "",
        f"{DTM_PAPER}, Appendix E, models E_init; its value was not confirmed here",
    ),
    "e_read": Source(
        "this module's assumption: reading (handing on) one visible bit costs one cell update's energy", "",
        f"{DTM_PAPER}, Appendix E, models E_read; its value was not confirmed here",
    ),
    "colours": Source(
        "dtm_lite.core.graph: every preset is bipartite (odd dx + dy), so a sweep is 2 colour phases",
        "dtm_lite.core.graph", f"{CODON_PAPER}, §2.4: a Gibbs step of its 4-colourable graph takes ~400 ns",
    ),
    "chip_cells": Source(
        f"{CODON_PAPER}, §2.4 and §4.7: near-term TSU designs of ~250,000 p-bits", "codon paper §2.4, §4.7",
    ),
}  # fmt: skip
"""Field of :class:`Assumptions` -> its :class:`Source`."""


def _positive(name: str, value: Any, integer: bool = False) -> None:
    """A clear ``ValueError`` unless ``value`` is a finite number > 0 (an integer >= 1 if ``integer``)."""
    kind_ok = isinstance(value, numbers.Integral if integer else numbers.Real) and not isinstance(value, bool)
    ok = kind_ok and math.isfinite(float(value)) and float(value) >= (1.0 if integer else math.ulp(0.0))
    if not ok:
        kind = "an integer >= 1" if integer else "a finite number > 0"
        raise ValueError(f"assumption {name} must be {kind}, got {value!r} (default from {SOURCES[name].where})")


@dataclass(frozen=True)
class Assumptions:
    """The chip's constants, SI units; each one's source is ``SOURCES[name]``.

    ``e_cell`` J per cell update (RNG, bias, clock and neighbour couplings together), ``tau0`` s per colour phase
    (the RNG's decorrelation time), ``e_rng`` J per random bit (part of ``e_cell``), ``e_init`` J per cell to
    initialise a step, ``e_read`` J per visible bit read out of a step, ``colours`` colour phases a sweep,
    ``chip_cells`` the chip's size in cells."""

    e_cell: float = 2e-15
    tau0: float = 100e-9
    e_rng: float = 350e-18
    e_init: float = 2e-15
    e_read: float = 2e-15
    colours: int = 2
    chip_cells: int = 250_000

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _positive(f.name, getattr(self, f.name), integer=f.name in ("colours", "chip_cells"))
        if self.e_rng > self.e_cell:
            raise ValueError(
                f"assumption e_rng ({self.e_rng:g} J) is part of e_cell ({self.e_cell:g} J) and cannot exceed it"
            )

    def replace(self, **overrides: Any) -> Assumptions:
        """A copy with ``overrides``; an unknown name is a ``ValueError`` listing the known ones."""
        unknown = sorted(set(overrides) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown assumption(s) {unknown}; the assumptions are: {', '.join(SOURCES)}")
        return dataclasses.replace(self, **overrides)

    def table(self) -> list[dict[str, Any]]:
        """One row a field: name, value, source, where the value was confirmed ("" if nowhere), and the note."""
        return [
            {"name": n, "value": getattr(self, n), "source": s.where, "confirmed_in": s.confirmed_in, "note": s.note}
            for n, s in SOURCES.items()
        ]


def _config(model: Any) -> DTMConfig:
    config = getattr(model, "config", model)
    if not isinstance(config, DTMConfig):
        raise TypeError(f"expected a DTMConfig or a DTM, got {type(model).__name__}")
    return config


def updates_per_sample(model: Any) -> int:
    """Spin updates to generate one sample: ``T · K · N`` (steps x generation sweeps x grid cells)."""
    c = _config(model)
    return c.num_diffusion_steps * c.generation_sweeps * GridGraph.from_preset(c.preset).n_nodes


def fitting_presets(chip_cells: int, degree: int | None = None) -> list[str]:
    """The presets (of ``degree``, or any) whose grid has at most ``chip_cells`` cells, smallest first."""
    _positive("chip_cells", chip_cells, integer=True)
    names = [n for n, (side, _) in PRESETS.items() if side * side <= chip_cells]
    names = [n for n in names if degree is None or int(n.split("_")[1]) == degree]
    return sorted(names, key=lambda n: (PRESETS[n][0], int(n.split("_")[1])))


def what_fits(chip_cells: int, degree: int | None = None) -> str:
    """A sentence on what a chip of ``chip_cells`` cells can run: its largest even grid side, the visible bits
    that grid holds (colour-0 sites, ``side² / 2``), and the largest preset (of ``degree``, then of any)."""
    same, every = fitting_presets(chip_cells, degree), fitting_presets(chip_cells)  # these check chip_cells first
    side = math.isqrt(int(chip_cells)) // 2 * 2
    parts = [f"a chip of {chip_cells:,} cells holds a torus of side up to {side} ({side * side // 2:,} visible bits)"]
    if degree is not None:
        parts.append(f"the largest preset of degree {degree} that fits is {same[-1]}" if same else
                     f"no preset of degree {degree} fits")  # fmt: skip
    parts.append(f"the largest of any degree is {every[-1]}" if every else "no preset fits")
    return "; ".join(parts)


@dataclass(frozen=True)
class ChipCost:
    """One sample on the chip: energies in J, times in s (formulas in the module docstring); ``preset`` None for a
    grid given by its size (:func:`grid_cost`)."""

    preset: str | None
    steps: int
    sweeps: int
    cells: int
    read_bits: int
    sampling_j: float
    rng_j: float
    init_j: float
    readout_j: float
    sampling_s: float
    init_s: float
    fits: bool
    assumptions: Assumptions = field(repr=False)

    @property
    def updates(self) -> int:
        """Spin updates per sample, ``T · K · N``."""
        return self.steps * self.sweeps * self.cells

    @property
    def energy_j(self) -> float:
        return self.sampling_j + self.init_j + self.readout_j

    @property
    def latency_s(self) -> float:
        return self.sampling_s + self.init_s

    def as_dict(self) -> dict[str, Any]:
        """Every field, the totals and the assumptions, JSON-ready."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "assumptions"}
        out.update(updates=self.updates, energy_j=self.energy_j, latency_s=self.latency_s)
        return {**out, "assumptions": dataclasses.asdict(self.assumptions)}


def grid_cost(steps: int, sweeps: int, cells: int, read_bits: int = 0, assumptions: Assumptions | None = None,
              preset: str | None = None, **overrides: Any) -> ChipCost:  # fmt: skip
    """The formulas of the module docstring for any grid: ``steps`` T, ``sweeps`` K, ``cells`` N, ``read_bits``
    n_read, with ``assumptions`` (default :class:`Assumptions`) and ``overrides``; ``fits`` is ``N <= chip_cells``.

    The codon paper's Ising example (§2.3, §2.4): ``grid_cost(1, 20_000, 3147, e_cell=1.3e-15, colours=4)`` samples
    for 2·10⁴ · 3,147 · 1.3 fJ = 82 nJ in 2·10⁴ · 4 · 100 ns = 8 ms."""
    for name, v in (("steps", steps), ("sweeps", sweeps), ("cells", cells)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not isinstance(read_bits, numbers.Integral) or isinstance(read_bits, bool) or read_bits < 0:
        raise ValueError(f"read_bits must be an integer >= 0, got {read_bits!r}")
    a = (assumptions or Assumptions()).replace(**overrides)
    T, K, N = int(steps), int(sweeps), int(cells)
    return ChipCost(
        preset=preset, steps=T, sweeps=K, cells=N, read_bits=int(read_bits),
        sampling_j=T * K * N * a.e_cell, rng_j=T * K * N * a.e_rng, init_j=T * N * a.e_init,
        readout_j=T * int(read_bits) * a.e_read, sampling_s=T * K * a.colours * a.tau0, init_s=T * a.tau0,
        fits=N <= a.chip_cells, assumptions=a,
    )  # fmt: skip


def chip_cost(model: Any, assumptions: Assumptions | None = None, *, check_fit: bool = True,
              **overrides: Any) -> ChipCost:  # fmt: skip
    """The energy and latency of one sample of ``model`` (a :class:`DTMConfig` or a ``DTM``) on a chip:
    :func:`grid_cost` with T = ``num_diffusion_steps``, K = ``generation_sweeps``, N the preset's cells and n_read
    the image and label bits.

    ``assumptions`` (default :class:`Assumptions`) with ``overrides`` applied, e.g. ``e_cell=1.3e-15``. A model
    whose grid has more cells than ``chip_cells`` is refused with a ``ValueError`` saying what such a chip could
    run instead; ``check_fit=False`` prices it anyway and sets ``fits=False``. (The diffusion steps run one after
    another on the same cells, so the chip needs ``N`` cells, not ``T · N``.)

    The paper's Fashion-MNIST configuration, ``DTMConfig(image_shape=(28, 28, 1), preset="70_12",
    num_diffusion_steps=8, generation_sweeps=800)``, samples for 8 · 800 · 4900 · 2 fJ = 62.7 nJ in
    8 · 800 · 2 · 100 ns = 1.28 ms.
    """
    config = _config(model)
    graph = GridGraph.from_preset(config.preset)
    read_bits = config.n_visible + config.n_label_bits
    cost = grid_cost(config.num_diffusion_steps, config.generation_sweeps, graph.n_nodes, read_bits, assumptions,
                     preset=config.preset, **overrides)  # fmt: skip
    if check_fit and not cost.fits:
        chip = cost.assumptions.chip_cells
        raise ValueError(
            f"preset {config.preset} has {graph.n_nodes:,} cells, more than a chip of chip_cells={chip:,}: "
            f"{what_fits(chip, graph.degree)}. Pass a larger chip_cells, or check_fit=False to price it anyway"
        )
    return cost


# ---------------------------------------------------------------------------------------------------- GPU


@dataclass(frozen=True)
class GPUFigure:
    """A GPU's reported figures: board power ``tdp_w`` (W), peak ``peak_flops`` (FLOP/s), and a reported rate of
    Gibbs sampling, ``updates_per_s`` (spin updates per second of one chain), with their ``source``."""

    name: str
    tdp_w: float
    peak_flops: float
    updates_per_s: float
    source: str


RTX_3090 = GPUFigure(
    "NVIDIA RTX 3090", tdp_w=350.0, peak_flops=35.6e12, updates_per_s=2e4 * 3147 / (84.0 / 350.0),
    source=f"{CODON_PAPER}, §4.7 (350 W TDP, 35.6 TFLOPS FP32 peak) and Table 1 (its Ising sampler, one chain of "
    "3,147 spins x 2·10⁴ sweeps, ~84 J at TDP, so ~0.24 s: 2.6·10⁸ spin updates/s); reported, not measured here",
)  # fmt: skip
"""The GPU of the codon paper's bracket, with the rate its authors measured for one chain in JAX."""


def energy_bracket(flops: float, wall_s: float, tdp_w: float, peak_flops: float) -> tuple[float, float]:
    """The codon paper's (§4.7) GPU bracket in J: ``(flops / peak_flops · tdp_w, wall_s · tdp_w)``, an idealised
    lower bound (100% utilisation) and an upper bound (full board power for the whole wall time).

    The codon paper's Ising run, ``energy_bracket(2e9, 0.24, 350.0, 35.6e12)``: 0.0197 J (its "20 mJ") and 84 J.
    """
    for name, v in (("flops", flops), ("wall_s", wall_s), ("tdp_w", tdp_w), ("peak_flops", peak_flops)):
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(float(v)) or float(v) <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return flops / peak_flops * tdp_w, wall_s * tdp_w


@dataclass(frozen=True)
class GPUBracket:
    """One sample on a GPU, not measured here: ``low_j``/``high_j`` (J) from ``low_s``/``high_s`` (s)."""

    gpu: GPUFigure
    updates: int
    flops: float
    low_s: float
    high_s: float
    low_j: float
    high_j: float

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "measured_here": False}


def gpu_bracket(model: Any, gpu: GPUFigure = RTX_3090, flops_per_update: float | None = None) -> GPUBracket:
    """A GPU running the same Gibbs chains, one sample: ``T · K · N`` spin updates of ``flops_per_update`` FLOPs
    (default ``2 · degree + 1``: the local field's multiply-adds and the bias, as counted for the sampler in
    ``benchmarks/README.md``; the random number and the decision are left out, which only lowers the lower bound).
    Low: FLOPs / peak × TDP; high: updates / ``gpu.updates_per_s`` × TDP (:func:`energy_bracket`)."""
    config = _config(model)
    degree = GridGraph.from_preset(config.preset).degree
    per_update = 2.0 * degree + 1.0 if flops_per_update is None else flops_per_update
    updates = updates_per_sample(config)
    flops, wall = updates * per_update, updates / gpu.updates_per_s
    low, high = energy_bracket(flops, wall, gpu.tdp_w, gpu.peak_flops)
    return GPUBracket(gpu, updates, flops, flops / gpu.peak_flops, wall, low, high)


# ---------------------------------------------------------------------------------------------------- this CPU

CPU_WATTS_PER_CORE = 280.0 / 64
"""Assumed power of one busy core, W, where RAPL is not readable: :data:`CPU_POWER_SOURCE`."""

CPU_POWER_SOURCE = (
    "assumed, not measured: the TDP share of one core of a 64-core Zen 3 AMD EPYC 7763 (280 W / 64 = 4.4 W; AMD's "
    "Milan launch table as printed by techgage.com); this VM reports a Zen 3 EPYC (family 25, model 1) but not its "
    "model number, and exposes no RAPL counter"
)

RAPL_GLOB = "/sys/class/powercap/intel-rapl*/energy_uj"


def read_rapl() -> dict[str, int] | None:
    """Each RAPL package domain's energy counter (µJ), or None where none is readable (VMs, no permission)."""
    out = {}
    for path in glob.glob(RAPL_GLOB):
        if Path(path).parent.name.count(":") != 1:  # intel-rapl:0 (a package), not intel-rapl:0:0 (a part of it)
            continue
        try:
            out[path] = int(Path(path).read_text())
        except (OSError, ValueError):
            return None
    return out or None


def _rapl_joules(before: dict[str, int] | None, after: dict[str, int] | None) -> float | None:
    if before is None or after is None or before.keys() != after.keys():
        return None
    total = 0
    for path, start in before.items():
        delta = after[path] - start
        if delta < 0:  # the counter wrapped
            delta += int(Path(path).with_name("max_energy_range_uj").read_text())
        total += delta
    return total * 1e-6


@dataclass(frozen=True)
class CPUMeasurement:
    """``n`` samples generated in one call, best of the repeats: wall and CPU (process) seconds, spin updates, and
    the energy: RAPL's where readable (the whole package: other jobs count too), else CPU seconds x
    ``watts_per_core``. Per sample: ``*_per_sample``."""

    n: int
    wall_s: float
    cpu_s: float
    updates: int
    rapl_j: float | None
    watts_per_core: float

    @property
    def energy_j(self) -> float:
        return self.rapl_j if self.rapl_j is not None else self.cpu_s * self.watts_per_core

    @property
    def energy_source(self) -> str:
        if self.rapl_j is not None:
            return f"RAPL ({RAPL_GLOB}), whole package"
        return f"CPU time x {self.watts_per_core:.2f} W a core (assumed; no readable RAPL): {CPU_POWER_SOURCE}"

    updates_per_s = property(lambda self: self.updates / self.wall_s, doc="Spin updates per wall second.")
    wall_s_per_sample = property(lambda self: self.wall_s / self.n)
    cpu_s_per_sample = property(lambda self: self.cpu_s / self.n)
    energy_j_per_sample = property(lambda self: self.energy_j / self.n)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in ("energy_j", "energy_source", "updates_per_s", "wall_s_per_sample", "cpu_s_per_sample",
                     "energy_j_per_sample"):  # fmt: skip
            out[name] = getattr(self, name)
        return out


def measure_generation(
    model: Any, n: int, *, repeats: int = 3, key: int = 0, watts_per_core: float = CPU_WATTS_PER_CORE, **kwargs: Any
) -> CPUMeasurement:
    """Time ``model.generate(n, key=key, **kwargs)`` on this machine: one call to compile, then the best
    (shortest wall time) of ``repeats`` calls, with the CPU time and RAPL energy of that call."""
    if not isinstance(n, int) or n < 1 or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"n and repeats must be integers >= 1, got n={n!r}, repeats={repeats!r}")
    if not math.isfinite(watts_per_core) or watts_per_core <= 0:
        raise ValueError(f"watts_per_core must be a finite number > 0, got {watts_per_core!r}")
    model.generate(n, key=key, **kwargs)  # compile
    best: tuple[float, float, float | None] | None = None
    for _ in range(repeats):
        rapl0, cpu0, wall0 = read_rapl(), time.process_time(), time.perf_counter()
        model.generate(n, key=key, **kwargs)
        wall, cpu, joules = time.perf_counter() - wall0, time.process_time() - cpu0, _rapl_joules(rapl0, read_rapl())
        if best is None or wall < best[0]:
            best = (wall, cpu, joules)
    assert best is not None
    sweeps = kwargs.get("sweeps") or model.config.generation_sweeps
    updates = n * model.config.num_diffusion_steps * sweeps * model.graph.n_nodes
    return CPUMeasurement(n, best[0], best[1], updates, best[2], float(watts_per_core))
