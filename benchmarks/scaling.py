"""Chain-sweeps per second against the number of devices, for the training step and for generation, with a
fixed number of chains a device (weak scaling).

    python benchmarks/scaling.py                    # GPUs: 1, 2, 4, ... up to jax.device_count()
    python benchmarks/scaling.py --max-devices 4    # CPU: 1, 2, 4 virtual devices
    python benchmarks/scaling.py --quick            # quick_model_config() instead of model_config()

Each device count runs in a subprocess of its own: on CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (the flag must be set before JAX starts), on GPUs
with the first N devices. A device runs ``--rows`` batch rows (two chains each) of the training step and
``--chains`` chains of generation. Every subprocess also trains one step on the same batch of ``2 x
--max-devices`` rows and generates 16 frames from the same key, and the table's last line says whether
those came out bit-identical for every device count.

Virtual CPU devices share the host's cores: on CPU the figures check that the sharded step and generation
run, and run correctly, not how they scale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time


def worker(args: argparse.Namespace) -> None:
    """One device count: time the training step and generation; print one JSON line."""
    import jax
    import numpy as np

    from dtm_lite import DTM
    from dtm_lite.data.lunarlander_settings import model_config, quick_model_config

    n = args.worker
    base = quick_model_config() if args.quick else model_config()
    rng = np.random.default_rng(0)

    def step_batch(rows: int) -> np.ndarray:
        return (rng.random((rows, base.n_visible)) < 0.3).astype(np.uint8)

    batch = args.rows * n
    dtm = DTM(base.replace(batch_size=batch), devices=n)
    model = repr(dtm).replace(", trained 0 batches", "")
    bits = step_batch(batch)
    t0 = time.perf_counter()
    dtm.train_step(bits)
    compile_s = time.perf_counter() - t0
    dtm.train_step(bits)  # (one device: the second step compiles again, for the state the first one returned)
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        dtm.train_step(bits)
        times.append(time.perf_counter() - t)
    train_s = float(np.median(times))
    train_cs = 2 * batch * base.sweeps_per_phase * base.num_diffusion_steps / train_s

    chains = args.chains * n
    dtm.generate(chains, key=1)  # compile
    gen_times = []
    for i in range(2):
        t = time.perf_counter()
        dtm.generate(chains, key=2 + i)
        gen_times.append(time.perf_counter() - t)
    gen_s = float(np.median(gen_times))
    gen_cs = chains * base.generation_sweeps * base.num_diffusion_steps / gen_s

    digest = ""
    if args.check:  # the same global batch and key on every device count: the same bits
        rows = 2 * args.max_devices
        rng = np.random.default_rng(1)
        check = DTM(base.replace(batch_size=rows), devices=n)
        check.train_step(step_batch(rows))
        frames = check.generate(16, key=3, sweeps=20)
        h = hashlib.sha256()
        for leaf in jax.tree.leaves(check.state.params):
            h.update(np.asarray(leaf).tobytes())
        h.update(np.asarray(frames).tobytes())
        digest = h.hexdigest()[:16]
    out = {
        "devices": n, "platform": dtm.mesh.devices[0].platform, "kind": dtm.mesh.devices[0].device_kind,
        "batch": batch, "compile_s": compile_s, "train_s": train_s, "train_cs": train_cs, "chains": chains,
        "gen_s": gen_s, "gen_cs": gen_cs, "digest": digest, "model": model,
    }  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


def probe() -> tuple[str, int, str]:
    """Platform, device count and device kind, from a subprocess (this process never starts JAX, so that a
    GPU's memory stays free for the workers)."""
    code = "import jax; d = jax.devices(); print(d[0].platform, len(d), d[0].device_kind.replace(' ', '_'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1]), out[2].replace("_", " ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-devices", type=int, default=None,
                    help="largest device count (default: every device; 4 virtual devices on CPU)")  # fmt: skip
    ap.add_argument("--rows", type=int, default=32, help="training batch rows a device (default 32)")
    ap.add_argument("--chains", type=int, default=64, help="generation chains a device (default 64)")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps, after one compile step")
    ap.add_argument(
        "--quick", action="store_true", help="lunarlander_settings.quick_model_config() (16x16 frames on 50_12)"
    )
    ap.add_argument("--no-check", dest="check", action="store_false", help="skip the bit-identity check")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        worker(args)
        return

    platform, count, kind = probe()
    cpu = platform == "cpu"
    top = args.max_devices or (4 if cpu else count)
    if not cpu and top > count:
        raise SystemExit(f"--max-devices {top}, but JAX sees {count} {platform} device(s)")
    counts = [1 << i for i in range(top.bit_length()) if 1 << i <= top]
    args.max_devices = counts[-1]
    if cpu:
        print(
            f"virtual CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) sharing this machine's "
            f"{os.cpu_count()} CPU cores: these figures check that sharded training and generation run, "
            "not their speed"
        )
    else:
        print(f"{count} x {kind} ({platform})")
    rows = []
    for n in counts:
        env = dict(os.environ)
        if cpu:
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
            env["JAX_PLATFORMS"] = "cpu"
        argv = [sys.executable, __file__, "--worker", str(n), "--max-devices", str(args.max_devices),
                "--rows", str(args.rows), "--chains", str(args.chains), "--steps", str(args.steps)]  # fmt: skip
        argv += ["--quick"] * args.quick + ["--no-check"] * (not args.check)
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{n} device(s) failed:\n{proc.stderr[-3000:]}")
        r = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))[7:])
        if n == 1:
            print(r["model"])
            print(f"{args.rows} batch rows (2 chains each) and {args.chains} generation chains a device")
            print(
                f"{'devices':>7} {'batch':>6} {'train s/step':>12} {'train chain-sweeps/s':>20} {'x 1 dev':>8} "
                f"{'gen chains':>10} {'gen s':>7} {'gen chain-sweeps/s':>18} {'x 1 dev':>8}"
            )
        rows.append(r)
        one = rows[0]
        print(
            f"{n:>7} {r['batch']:>6} {r['train_s']:>12.3f} {r['train_cs']:>20.3g} "
            f"{r['train_cs'] / one['train_cs']:>8.2f} {r['chains']:>10} {r['gen_s']:>7.3f} {r['gen_cs']:>18.3g} "
            f"{r['gen_cs'] / one['gen_cs']:>8.2f}",
            flush=True,
        )
    if args.check:
        digests = ", ".join(f"{r['devices']}: {r['digest']}" for r in rows)
        same = len({r["digest"] for r in rows}) == 1
        verdict = "bit-identical on every device count" if same else f"DIFFER between device counts ({digests})"
        print(f"one training step on the same {2 * args.max_devices} rows and 16 generated frames: {verdict}")


if __name__ == "__main__":
    main()
