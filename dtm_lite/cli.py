"""Command line: ``python -m dtm_lite train`` trains a DTM on streaming LunarLander frames;
``python -m dtm_lite figures`` makes the README's figures from a run.

Defaults are the seed's configuration (32x32 RGB binary on 80_12, batch 50, 300 warm-up sweeps,
30 samples 6 sweeps apart, learning rate 0.03) for as many epochs as fit in about 10 minutes on a
2-core CPU. Everything goes to a run folder: ``run.json`` (the arguments), ``latest.npz`` (checkpoint),
``metrics.csv``, sample grids and denoising GIFs, and ``metrics.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

QUICK_ENV = "DTM_LITE_QUICK"

# (argument, default, help) for the model and data; saved to run.json so --resume rebuilds the same run.
RUN_ARGS: list[tuple[str, Any, str]] = [
    ("preset", "80_12", "graph preset side_degree; must hold the encoding's visible spins"),
    ("resolution", 32, "frame side in pixels (frames are resolution x resolution x 3)"),
    (
        "encoding",
        "palette",
        "binary, thermometer or palette (LunarLander's 4 colours, 2 bits a pixel); auto: by --levels",
    ),
    ("levels", 1, "spins per channel value: 1 = binary threshold, L > 1 = thermometer code"),
    ("diffusion_steps", 1, "number of diffusion steps T (1 = a plain EBM)"),
    ("schedule", "log", "time grid: log or linear"),
    ("batch_size", 50, "frames per batch"),
    ("warmup", 300, "Gibbs sweeps before the first sample of each phase"),
    ("samples", 30, "samples per phase"),
    ("steps_per_sample", 6, "sweeps between samples"),
    ("generation_sweeps", 400, "sweeps per diffusion step when generating"),
    ("lr", 0.03, "peak learning rate (cosine decay over all batches to 0.2 of it)"),
    ("image_rate", 0.8, "forward-process rate lambda"),
    ("diffusion_offset", 0.1, "diffusion offset delta"),
    ("corr_penalty", 0.0, "initial correlation penalty (with --adaptive-penalty at least cp_min = 1e-3)"),
    ("adaptive_penalty", False, "adapt the correlation penalty from the held-out autocorrelation each epoch"),
    ("placement", "planes", "visible sites: planes (neighbouring pixels coupled directly), spatial, raster, random"),
    ("seed", 0, "seed of the model, the data stream and the evaluation"),
    ("policy", "random", "LunarLander policy: random or heuristic"),
    ("num_envs", 1, "gymnasium vector envs generating episodes"),
    ("frame_stride", 2, "keep every k-th simulator step"),
    ("episodes_per_epoch", 200, "episodes the stream offers each epoch (new seeds every epoch)"),
    ("shuffle_buffer", 1024, "frames in the seeded shuffle buffer"),
    ("holdout_episodes", 256, "held-out episodes (other seeds) for evaluation, 4 frames each"),
]


# settings of the run and its data stream that DTMConfig does not check: refused before anything is written
STREAM_MINIMUMS = {
    "epochs": 1, "batches_per_epoch": 1, "evaluate_every": 0, "num_envs": 1, "frame_stride": 1,
    "episodes_per_epoch": 1, "shuffle_buffer": 0, "holdout_episodes": 1,
}  # fmt: skip


def _add_run_args(p: argparse.ArgumentParser) -> None:
    for name, default, help_ in RUN_ARGS:
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction
            p.add_argument(flag, action=action, default=None, help=f"{help_} (default {default})")
        else:
            p.add_argument(flag, type=type(default), default=None, help=f"{help_} (default {default})")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m dtm_lite", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train",
        help="train on streaming LunarLander frames",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--epochs", type=int, default=None, help="total epochs (default 20; 2 with --quick)")
    t.add_argument(
        "--batches-per-epoch", type=int, default=None, help="batches per epoch (default 100; 8 with --quick)"
    )
    t.add_argument("--evaluate-every", type=int, default=None, help="evaluate every N epochs (default 2; 0 = never)")
    t.add_argument("--out", type=Path, default=None, help="run folder (default runs/lunarlander-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (default: the newest in runs/)")
    t.add_argument(
        "--quick", action="store_true", help=f"a tiny run (16x16 frames on 50_12); also set by {QUICK_ENV}=1"
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_run_args(t)
    f = sub.add_parser("figures", help="make the README figures from a training run")
    f.add_argument("--run", type=Path, default=Path("runs/default"),
                   help="run folder whose metrics.csv makes metrics.png (default runs/default)")  # fmt: skip
    f.add_argument("--out", type=Path, default=Path("figures"), help="output folder (default figures/)")
    f.add_argument("--model", default="lunarlander",
                   help="pretrained name, weights file or checkpoint to show (default lunarlander)")  # fmt: skip
    e = sub.add_parser("export", help="write a run's parameters as a weights file (what DTM.pretrained loads)")
    e.add_argument("--run", type=Path, default=Path("runs/default"), help="run folder (default runs/default)")
    e.add_argument(
        "--out", type=Path, default=Path("dtm_lite/pretrained/lunarlander.npz"),
        help="weights file (default dtm_lite/pretrained/lunarlander.npz, shipped as DTM.pretrained('lunarlander'))",
    )  # fmt: skip
    return ap


def _resolve(args: argparse.Namespace, use_env: bool = True) -> tuple[dict[str, Any], Path]:
    """Run settings from defaults, --quick (or, with ``use_env``, DTM_LITE_QUICK=1), a resumed run's
    run.json, and explicit flags (in that order)."""
    quick = args.quick or (use_env and os.environ.get(QUICK_ENV) == "1")
    settings = {name: default for name, default, _ in RUN_ARGS}
    settings.update(epochs=20, batches_per_epoch=100, evaluate_every=2)
    if quick:
        settings.update(
            preset="50_12", resolution=16, warmup=60, samples=10, steps_per_sample=3, generation_sweeps=100,
            epochs=2, batches_per_epoch=8, evaluate_every=1, episodes_per_epoch=40, holdout_episodes=96,
            shuffle_buffer=256,
        )  # fmt: skip
    out = args.out
    if args.resume:
        if out is None:
            runs = sorted(Path("runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
            if not runs:
                raise SystemExit("--resume: no run to resume in runs/; pass --out RUN_FOLDER")
            out = runs[-1].parent
        if not (out / "run.json").exists():
            raise SystemExit(f"--resume: {out} has no run.json; is it a run folder made by 'python -m dtm_lite train'?")
        settings.update(json.loads((out / "run.json").read_text()))
    for key in list(settings):
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    for name, lo in STREAM_MINIMUMS.items():  # the model's fields are checked by DTMConfig itself
        if settings[name] < lo:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= {lo}, got {settings[name]}")
    settings["quick"] = quick
    # the learning-rate decay spans the batches planned when the run started; a resumed run keeps it
    settings.setdefault("lr_decay_batches", settings["epochs"] * settings["batches_per_epoch"])
    if out is None:
        out = Path("runs") / f"lunarlander-{time.strftime('%Y%m%d-%H%M%S')}"
    return settings, out


def train(args: argparse.Namespace) -> int:
    from .dtm import DTM
    from .files import atomic_write
    from .training import CHECKPOINT_NAME

    s, out = _resolve(args)
    ckpt = out / CHECKPOINT_NAME
    if not args.resume and ckpt.exists():
        raise SystemExit(f"{out} already holds a run: add --resume to continue it, or choose another --out")
    config = config_from_settings(s)
    if args.resume and ckpt.exists():
        _check_resume(config, ckpt)  # before run.json changes: a refused resume leaves the run resumable
    dtm = DTM(config)
    text = json.dumps({k: v for k, v in s.items() if k != "quick"}, indent=2)
    atomic_write(out / "run.json", lambda f: f.write(text.encode()))
    print(f"run folder: {out.resolve()}")
    print(repr(dtm))
    _train(dtm, s, out, args)
    return 0


def default_settings(quick: bool = False) -> dict[str, Any]:
    """The run settings of ``python -m dtm_lite train`` with no flags (``quick``: with ``--quick``)."""
    args = build_parser().parse_args(["train"] + (["--quick"] if quick else []))
    return _resolve(args, use_env=False)[0]  # quick=False means the full defaults, whatever DTM_LITE_QUICK says


def config_from_settings(s: dict[str, Any]):
    """The :class:`~dtm_lite.dtm.DTMConfig` of a run's settings (``run.json``)."""
    from .dtm import DTMConfig

    res = s["resolution"]
    return DTMConfig(
        image_shape=(res, res, 3), preset=s["preset"], grayscale_levels=s["levels"],
        encoding=None if s["encoding"] == "auto" else s["encoding"],
        num_diffusion_steps=s["diffusion_steps"], schedule=s["schedule"], diffusion_offset=s["diffusion_offset"],
        image_rate=s["image_rate"], placement=s["placement"], batch_size=s["batch_size"],
        steps_warmup=s["warmup"], n_samples=s["samples"], steps_per_sample=s["steps_per_sample"],
        generation_sweeps=s["generation_sweeps"], learning_rate=s["lr"],
        lr_decay_batches=s["lr_decay_batches"], corr_penalty=s["corr_penalty"],
        adaptive_penalty=s["adaptive_penalty"], seed=s["seed"],
    )  # fmt: skip


# the flag (or run.json setting) behind each DTMConfig field, for --resume's refusal message
CONFIG_FLAGS = {
    "image_shape": "--resolution", "preset": "--preset", "encoding": "--encoding", "grayscale_levels": "--levels",
    "num_diffusion_steps": "--diffusion-steps", "schedule": "--schedule", "diffusion_offset": "--diffusion-offset",
    "image_rate": "--image-rate", "placement": "--placement", "batch_size": "--batch-size",
    "steps_warmup": "--warmup", "n_samples": "--samples", "steps_per_sample": "--steps-per-sample",
    "generation_sweeps": "--generation-sweeps", "learning_rate": "--lr",
    "lr_decay_batches": "run.json lr_decay_batches", "corr_penalty": "--corr-penalty",
    "adaptive_penalty": "--adaptive-penalty", "seed": "--seed",
}  # fmt: skip


def _check_resume(config, ckpt: Path) -> None:
    """Refuse (SystemExit) to resume ``ckpt`` with a model config other than the one it was made with,
    listing the fields that differ."""
    from .dtm import checkpoint_config

    try:
        saved = checkpoint_config(ckpt)
    except (OSError, ValueError) as err:
        raise SystemExit(f"--resume: cannot read the run's checkpoint: {err}") from None
    if saved == config:
        return
    diff = [
        f"{name} ({CONFIG_FLAGS.get(name, 'run.json')}): {getattr(config, name)!r} now, "
        f"{getattr(saved, name)!r} in the checkpoint"
        for name in config.to_dict()
        if getattr(config, name) != getattr(saved, name)
    ]
    raise SystemExit(
        f"--resume: these settings differ from the checkpoint {ckpt}: " + "; ".join(diff) + ". Drop those "
        "flags to continue the run (or start a new one with another --out); run.json is left unchanged."
    )


def _train(dtm, s: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    from .loader import IteratorDataLoader
    from .lunarlander import holdout_frames, training_stream
    from .plots import plot_metrics
    from .training import CHECKPOINT_NAME, EvalSettings

    res = s["resolution"]

    def factory(epoch: int) -> IteratorDataLoader:
        stream = training_stream(
            res, epoch, s["episodes_per_epoch"], s["seed"], policy=s["policy"], num_envs=s["num_envs"],
            frame_stride=s["frame_stride"],
        )  # fmt: skip
        return IteratorDataLoader(
            stream, s["batch_size"], encoding=dtm.encoding, max_batches_per_epoch=s["batches_per_epoch"],
            shuffle_buffer=s["shuffle_buffer"], seed=s["seed"] + epoch, image_shape=(res, res, 3),
        )  # fmt: skip

    t0 = time.perf_counter()
    holdout = holdout_frames(
        res, s["holdout_episodes"], seed=s["seed"], policy=s["policy"], frame_stride=s["frame_stride"]
    )
    print(f"held-out frames: {len(holdout)} from {s['holdout_episodes']} episodes ({time.perf_counter() - t0:.1f} s)")

    history = dtm.train_from_iterator(
        s["epochs"], factory, s["batches_per_epoch"], evaluate_every=s["evaluate_every"], holdout=holdout,
        checkpoint_dir=out, resume=args.resume, eval_settings=EvalSettings.quick() if s["quick"] else EvalSettings(),
        progress=not args.no_progress,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    rows = [r for r in history if "fd_pca" in r]
    if rows:
        plot_metrics(rows).savefig(out / "metrics.png", dpi=100)
        last = rows[-1]
        better = (last["fd_independent"] - last["fd_pca"]) / last["fd_independent"] * 100
        print(
            f"final (epoch {last['epoch']}): FD-PCA {last['fd_pca']:.3f}, data floor {last['fd_floor']:.3f}, "
            f"independent-pixel baseline {last['fd_independent']:.3f} ({better:+.0f}% vs baseline), "
            f"marginal error {last['marginal_error']:.4f}"
        )
    print(
        f"{len(history)} epochs, {dtm.state.step} batches; this session {elapsed:.0f} s; "
        f"checkpoint {out / CHECKPOINT_NAME}"
    )
    print(f"run folder: {out.resolve()}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "figures":
        from .figures import make_figures

        for path in make_figures(args.run, args.out, model=args.model):
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
        return 0
    if args.command == "export":
        from .dtm import DTM
        from .training import CHECKPOINT_NAME

        src = args.run / CHECKPOINT_NAME
        path = DTM.load(src).save_weights(args.out)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB): the parameters of {src}")
        return 0
    if args.command == "train":
        try:
            return train(args)
        except KeyboardInterrupt:
            print("stopped; resume with: python -m dtm_lite train --resume --out <run folder>", file=sys.stderr)
            return 130
    return 2
