"""What one generated sample costs: on this CPU (measured), on a DTM chip (dtm_lite.hardware's model) and on a GPU
(a bracket from reported figures, not measured here). Writes ``figures/sample_cost.json``.

    python benchmarks/sample_cost.py [--model lunarlander] [--n 128] [--repeats 3] [--before-after]

Measured here, for the shipped model (``DTM.pretrained``): ``--n`` samples generated in one call (best of
``--repeats`` after a compile run), and one sample alone; wall and CPU seconds, spin updates per second (chains x
diffusion steps x sweeps x grid nodes / wall time) and joules: RAPL's (``/sys/class/powercap/intel-rapl*/energy_uj``,
the whole package) where this machine exposes it, else CPU seconds x ``--watts-per-core`` (an assumption, stated in
the JSON). ``--before-after`` also times ``--big`` (512) chains in one kernel call (generation's chunking before
``GENERATE_CHUNK_CHAINS``) against the same chains in chunks of 128 (after), alternating rounds in one process.

The chip and GPU columns come from ``dtm_lite.hardware.chip_cost`` and ``gpu_bracket`` with their default
assumptions (each with its source in ``dtm_lite.hardware.SOURCES``), for the model and for the paper's
Fashion-MNIST configuration (70x70 grid, T = 8, K = 800).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import jax

from dtm_lite import DTM, DTMConfig
from dtm_lite import hardware as hw
from dtm_lite.sampling import GENERATE_CHUNK_CHAINS

FASHION = DTMConfig(image_shape=(28, 28, 1), preset="70_12", num_diffusion_steps=8, generation_sweeps=800)
ROOT = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (a VM may hide the exact part), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def before_after(model: DTM, big: int, repeats: int) -> dict[str, Any]:
    """``big`` chains in one kernel call (before) and in chunks of GENERATE_CHUNK_CHAINS (after), alternating
    rounds; each run's best wall time and best CPU (process) time, which other jobs on the machine disturb less."""
    updates = big * model.num_steps * model.config.generation_sweeps * model.graph.n_nodes
    after = f"chunks of {GENERATE_CHUNK_CHAINS}"
    runs = {"one call": {"max_chunk_chains": big}, after: {}}
    for kwargs in runs.values():
        model.generate(big, key=0, **kwargs)  # compile
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, kwargs in runs.items():
            t, c = time.perf_counter(), time.process_time()
            model.generate(big, key=0, **kwargs)
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    out = {
        name: {"seconds": min(wall[name]), "cpu_seconds": min(cpu[name]), "updates_per_s": updates / min(wall[name]),
               "updates_per_cpu_s": updates / min(cpu[name]), "all_seconds": wall[name], "all_cpu_seconds": cpu[name]}
        for name in runs
    }  # fmt: skip
    return {
        "chains": big, "updates": updates, "runs": out,
        "speedup": out["one call"]["seconds"] / out[after]["seconds"],
        "cpu_speedup": out["one call"]["cpu_seconds"] / out[after]["cpu_seconds"],
    }  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    model = DTM.pretrained(args.model)
    batch = hw.measure_generation(model, args.n, repeats=args.repeats, watts_per_core=args.watts_per_core)
    single = hw.measure_generation(model, 1, repeats=args.repeats, watts_per_core=args.watts_per_core)
    out = {
        "model": {"name": args.model, "repr": repr(model), "config": model.config.to_dict()},
        "cpu_batch": batch.as_dict(),
        "cpu_single": single.as_dict(),
        "chip": hw.chip_cost(model).as_dict(),
        "gpu": hw.gpu_bracket(model).as_dict(),
        "fashion_mnist": {"chip": hw.chip_cost(FASHION).as_dict(), "gpu": hw.gpu_bracket(FASHION).as_dict()},
        "assumptions": hw.Assumptions().table(),
        "cpu_power_assumption": {"watts_per_core": args.watts_per_core, "source": hw.CPU_POWER_SOURCE},
    }
    if args.before_after:
        out["before_after"] = before_after(model, args.big, args.repeats)
    return out


def report(res: dict[str, Any]) -> None:
    b, s, chip, gpu = res["cpu_batch"], res["cpu_single"], res["chip"], res["gpu"]
    print(res["model"]["repr"])
    print(f"{'':<34}{'energy / sample':>18}{'time / sample':>16}")
    print(f"{'chip (model, default assumptions)':<34}{chip['energy_j']:>16.3g} J{chip['latency_s']:>14.3g} s")
    print(f"{'this CPU, ' + str(b['n']) + ' in one call':<34}{b['energy_j_per_sample']:>16.3g} J"
          f"{b['wall_s_per_sample']:>14.3g} s   {b['updates_per_s']:.3g} spin updates/s")  # fmt: skip
    print(f"{'this CPU, one sample alone':<34}{s['energy_j_per_sample']:>16.3g} J{s['wall_s_per_sample']:>14.3g} s   "
          f"{s['updates_per_s']:.3g} spin updates/s")  # fmt: skip
    print(f"{'GPU bracket (' + gpu['gpu']['name'] + ')':<34}{gpu['low_j']:>8.3g}-{gpu['high_j']:<.3g} J"
          f"{gpu['low_s']:>9.3g}-{gpu['high_s']:.3g} s  (reported figures, not measured here)")  # fmt: skip
    print(f"CPU energy: {b['energy_source']}")
    if "before_after" in res:
        ba = res["before_after"]
        for name, r in ba["runs"].items():
            print(
                f"generate {ba['chains']} chains, {name}: {r['seconds']:.3f} s ({r['updates_per_s']:.3g} spin "
                f"updates/s), CPU {r['cpu_seconds']:.3f} s ({r['updates_per_cpu_s']:.3g} per CPU second)"
            )
        print(
            f"chunks of {GENERATE_CHUNK_CHAINS}: {ba['speedup']:.2f}x the one-call rate (wall), "
            f"{ba['cpu_speedup']:.2f}x (CPU time)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="lunarlander", help="a DTM.pretrained name")
    ap.add_argument("--n", type=int, default=GENERATE_CHUNK_CHAINS, help="samples generated in one call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--watts-per-core", type=float, default=hw.CPU_WATTS_PER_CORE,
                    help="assumed power of a busy core where RAPL is not readable (W)")  # fmt: skip
    ap.add_argument("--before-after", action="store_true", help="also time --big chains in one call vs chunks")
    ap.add_argument("--big", type=int, default=512, help="chains for --before-after")
    ap.add_argument("--out", type=Path, default=ROOT / "figures" / "sample_cost.json")
    args = ap.parse_args()
    res = measure(args)
    res = {
        "command": "python benchmarks/sample_cost.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "load_average": os.getloadavg(),
        },  # fmt: skip
        **res,
    }
    report(res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
