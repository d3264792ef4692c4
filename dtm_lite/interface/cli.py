"""Command line of dtm_lite: ``python -m dtm_lite train`` trains a DTM on streaming LunarLander frames,
``python -m dtm_lite export`` writes a run's parameters as a weights file (what ``DTM.pretrained`` loads) and
``python -m dtm_lite figures`` makes the README's figures from a run.

``train``'s model is ``dtm_lite.data.lunarlander_settings.model_config()`` (32x32 RGB frames in
LunarLander's 4-colour palette on 80_12, batch 50, 300 warm-up sweeps, 30 samples 6 sweeps apart,
learning rate 0.03; ``--quick``: ``quick_model_config()``), trained for 20 epochs of 100 batches (the run and
stream settings: ``lunarlander_settings.STREAM_SETTINGS``). Every ``DTMConfig`` field is a flag of its own
name (``--num-diffusion-steps 4``, ``--learning-rate 0.01``, ``--image-shape 24 24 3``). Everything goes to a
run folder: ``run.json`` (the model config and the stream settings, so that ``--resume`` rebuilds the same
run), ``latest.npz`` (checkpoint), ``metrics.csv``, sample grids and denoising GIFs, and ``metrics.png``.

``--condition label`` trains a labelled model (``n_classes`` 3; with the default's layout, its label acting through the
layout prior and the layout weights: ``lunarlander_settings.LABEL_LAYOUT``) on the frames with their simulator
``"zone"`` label (left of the pad, over it, right of it); ``--condition world`` a world model (``n_actions`` 4; with the
default's layout, ``lunarlander_settings.WORLD_LAYOUT``) on ``(frame, action, next frame)`` transitions, each
action held for the frame stride; both on the same episodes as the default run (README: Conditioning;
notebook 06).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dtm_lite.core.config import DTMConfig
from dtm_lite.data.lunarlander import TRAIN_FRAMES_PER_EPISODE
from dtm_lite.data.lunarlander_settings import (
    LABEL_KIND,
    LABEL_LAYOUT,
    N_ACTIONS,
    N_ZONES,
    STREAM_MINIMUMS,
    STREAM_SETTINGS,
    WORLD_LAYOUT,
    config_from_settings,
    default_settings,
    eval_settings,
    model_config,
    quick_model_config,
)
from dtm_lite.scale.batch_size import AUTO
from dtm_lite.scale.sharding import COORDINATOR_WAIT_S

QUICK_ENV = "DTM_LITE_QUICK"
CORRUPT = "corrupt or not a dtm_lite checkpoint"  # the wording of dtm_lite.training.checkpoint.corrupt's one error
UNSET = "auto"  # the flag value of a field left unset (None): encoding, layout_color
# --condition: what the model conditions on, and so which stream it trains on (README: Conditioning)
CONDITIONS = ("none", "label", "world")
_NULLABLE = {f.name for f in dataclasses.fields(DTMConfig) if f.default is None}
_FIELDS = [f.name for f in dataclasses.fields(DTMConfig)]

# what the command adds to a field's own help; the metavars of the tuple fields (the others: by type)
FLAG_NOTES = {
    "encoding": f"{UNSET} = unset",
    "layout_color": f"{UNSET} = none (a plain DTM)",
    "image_shape": "LunarLander frames are square RGB: H = W, C = 3",
    "lr_decay_batches": "unless set: --epochs x --batches-per-epoch when the run started",
    "batch_size": f"{AUTO} = the largest multiple of the device count that fits --memory-budget a device",
}
METAVARS: dict[str, Any] = {
    "image_shape": ("H", "W", "C"), "generation_beta": ("START", "END"), "palette": "R,G,B", "batch_size": "N|auto",
    "layout_color": "R,G,B|auto",
}  # fmt: skip


def flag(name: str) -> str:
    """The flag of a setting or DTMConfig field: ``num_diffusion_steps`` -> ``--num-diffusion-steps``."""
    return "--" + name.replace("_", "-")


def _show(v: Any) -> str:
    """A value as it is typed after its flag."""
    if v is None:
        return UNSET
    if isinstance(v, tuple) and v and all(isinstance(x, float) for x in v):  # one colour: R,G,B
        return ",".join(f"{x:g}" for x in v)
    if isinstance(v, tuple):
        return " ".join(",".join(f"{x:g}" for x in c) if isinstance(c, tuple) else str(c) for c in v)
    return str(v)


def _default_help(help_: str, default: Any, quick: Any) -> str:
    also = "" if quick == default else f"; {_show(quick)} with --quick"
    return f"{help_} (default {_show(default)}{also})"


def _numbers(kind: type, n: int):
    """An argparse type: ``"a,b,c"`` as a tuple of ``n`` numbers of ``kind``."""

    def parse(text: str) -> tuple:
        parts = text.split(",")
        try:
            if len(parts) != n:
                raise ValueError
            return tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {n} comma-separated numbers, got {text!r}") from None

    return parse


def _numbers_or_unset(kind: type):
    """An argparse type: ``"a,b,c"`` as a tuple of numbers of ``kind`` (any count), or ``auto`` (unset)."""

    def parse(text: str) -> tuple | str:
        if text == UNSET:
            return UNSET
        try:
            return tuple(kind(p) for p in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers or {UNSET!r}, got {text!r}") from None

    return parse


def _int_or_auto(text: str) -> int | str:
    """An argparse type: an integer, or ``auto`` (``--batch-size auto``, resolved in :func:`train`)."""
    if text == AUTO:
        return AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or {AUTO!r}, got {text!r}") from None


def _metavar(default: Any) -> str | None:
    return None if isinstance(default, bool) else {int: "N", float: "X"}.get(type(default), "NAME")


def _field_type(default: Any) -> dict[str, Any]:
    """The add_argument keywords that parse a DTMConfig field with this (class) default."""
    if isinstance(default, bool):
        return {"action": argparse.BooleanOptionalAction}
    if isinstance(default, tuple) and default and isinstance(default[0], tuple):  # palette: colours R,G,B ...
        return {"nargs": "+", "type": _numbers(type(default[0][0]), len(default[0]))}
    if isinstance(default, tuple):  # image_shape H W C, generation_beta START END
        return {"nargs": len(default), "type": type(default[0])}
    return {"type": str if default is None else type(default)}  # default None: encoding, a name or UNSET


def _model_kinds() -> dict[str, dict[str, Any]]:
    """The add_argument keywords of every DTMConfig field: by its class default, except the fields whose
    default says nothing of their type (palette, layout_color: None) and ``--batch-size`` (or ``auto``)."""
    kinds = {f.name: _field_type(f.default) for f in dataclasses.fields(DTMConfig)}
    kinds["palette"] = {"nargs": "+", "type": _numbers(float, 3)}  # colours R,G,B ...
    kinds["layout_color"] = {"type": _numbers_or_unset(float)}
    kinds["batch_size"] = {"type": _int_or_auto}
    return kinds


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """One flag a DTMConfig field (``--num-diffusion-steps``), documented with the field's help and the
    defaults of ``lunarlander_settings.model_config()`` and ``quick_model_config()``."""
    g = p.add_argument_group(
        "model (the fields of DTMConfig)",
        "defaults: dtm_lite.data.lunarlander_settings.model_config(); with --quick: quick_model_config()",
    )
    full, quick = model_config(), quick_model_config()
    kinds = _model_kinds()
    for f in dataclasses.fields(DTMConfig):
        help_ = f.metadata["help"] + (f"; {FLAG_NOTES[f.name]}" if f.name in FLAG_NOTES else "")
        g.add_argument(
            flag(f.name), default=None, metavar=METAVARS.get(f.name, _metavar(f.default)), **kinds[f.name],
            help=_default_help(help_, getattr(full, f.name), getattr(quick, f.name)),
        )  # fmt: skip


def _add_stream_args(p: argparse.ArgumentParser) -> None:
    """One flag a run or stream setting (``lunarlander_settings.STREAM_SETTINGS``), with its defaults."""
    g = p.add_argument_group("run and data stream")
    for name, (default, quick, help_) in STREAM_SETTINGS.items():
        g.add_argument(flag(name), type=type(default), default=None, help=_default_help(help_, default, quick))


def _add_device_args(p: argparse.ArgumentParser) -> None:
    """--devices, --memory-budget and the multi-host flags (README: Scaling out)."""
    d = p.add_argument_group("devices and hosts (README: Scaling out)")
    d.add_argument(
        "--devices", type=int, default=None,
        help="devices to split the chains over (default: all; batch size must be a multiple)",
    )  # fmt: skip
    d.add_argument(
        "--coordinator", default=None, metavar="HOST:PORT",
        help="multi-host: process 0's address, passed to jax.distributed.initialize",
    )  # fmt: skip
    d.add_argument(
        "--coordinator-timeout", type=int, default=None, metavar="S",
        help=f"multi-host: seconds to wait for the coordinator and the other processes (default {COORDINATOR_WAIT_S})",
    )  # fmt: skip
    d.add_argument("--num-processes", type=int, default=None, help="multi-host: number of processes (hosts)")
    d.add_argument("--process-id", type=int, default=None, help="multi-host: this process's index, 0 .. P-1")
    d.add_argument(
        "--memory-budget", type=float, default=None, metavar="MIB",
        help=f"--batch-size {AUTO}: memory a device may use, in MiB (default: half the device's memory where JAX "
        "reports it, else 2048)",
    )  # fmt: skip


def _add_train_parser(sub: Any) -> None:
    """``train``: the command's own options, then the device, stream and model flags."""
    t = sub.add_parser(
        "train", help="train on streaming LunarLander frames", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    t.add_argument("--out", type=Path, default=None, help="run folder (default runs/lunarlander-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (default: the newest in runs/)")
    t.add_argument(
        "--quick", action="store_true",
        help="a tiny run (lunarlander_settings.quick_model_config(): 16x16 frames on 50_12; 2 epochs of 8 "
        f"batches); also set by {QUICK_ENV}=1",
    )  # fmt: skip
    t.add_argument(
        "--condition", choices=CONDITIONS, default=None,
        help=f"none: frames alone; label: a labelled model (--n-classes {N_ZONES}) on frames with their "
        f"LunarLander {LABEL_KIND!r} label; world: a world model (--n-actions {N_ACTIONS}; with the default's layout "
        "also --cond-frames 2 --cond-radius 1 --layout-min-size 1 unless given) on (frame, action, next frame) "
        "transitions (default none; a resumed run keeps its model's)",
    )  # fmt: skip
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_device_args(t)
    _add_stream_args(t)
    _add_model_args(t)


def _add_figures_and_export_parsers(sub: Any) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m dtm_lite``: the commands ``train``, ``figures`` and ``export``."""
    ap = argparse.ArgumentParser(prog="python -m dtm_lite", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    _add_figures_and_export_parsers(sub)
    return ap


def _tuples(v: Any) -> Any:
    """Lists (from JSON or nargs) as tuples, nested ones too, as DTMConfig holds them."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list | tuple) else v


def _resume_folder(out: Path | None) -> Path:
    """The run folder ``--resume`` continues: ``--out``, else the newest run in ``runs/``; it must hold a
    run.json."""
    if out is None:
        runs = sorted(Path("runs").glob("*/run.json"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise SystemExit("--resume: no run to resume in runs/; pass --out RUN_FOLDER")
        out = runs[-1].parent
    if not (out / "run.json").exists():
        raise SystemExit(f"--resume: {out} has no run.json; is it a run folder made by 'python -m dtm_lite train'?")
    return out


def _check_out(out: Path, what: str = "the run") -> None:
    """``--out`` must be a folder, or a path whose nearest existing part is one (the folder for ``what`` is
    created there): SystemExit for a file, or a path under a file."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"--out {out} is a file, not a folder: pass a folder for {what} (it is made if needed)")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise SystemExit(f"--out {out}: {parent} is a file, so no folder can be made under it")
            return


def _apply_run_json(settings: dict[str, Any], out: Path) -> bool:
    """Update ``settings`` from ``out/run.json`` (``{"config": DTMConfig fields, **stream settings}``); a model
    field it lacks takes the class default, as ``DTMConfig.from_dict`` reads the run's checkpoints. Returns
    whether it holds ``lr_decay_batches``."""
    path = out / "run.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # unreadable, truncated, not UTF-8, nested too deeply
        why = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise SystemExit(
            f"--resume: cannot read {path} ({why}): it is damaged (a truncated write?); restore it, or start a new "
            "run in another --out"
        ) from None
    config = saved.get("config") if isinstance(saved, dict) else None
    if not isinstance(config, dict):
        raise SystemExit(
            f'--resume: {path} holds no model config (its "config" entry), so it was not written by this '
            "version of 'python -m dtm_lite train': start a new run in another --out"
        )
    unknown = sorted(set(config) - set(_FIELDS))
    if unknown:
        raise SystemExit(f"--resume: {path} has model fields that DTMConfig does not know: {unknown}")
    plain = DTMConfig()
    settings.update({k: getattr(plain, k) for k in _FIELDS if k not in config})
    settings.update({k: _tuples(v) for k, v in config.items()})
    settings.update({k: v for k, v in saved.items() if k in STREAM_SETTINGS})
    return "lr_decay_batches" in config


def _apply_flags(settings: dict[str, Any], args: argparse.Namespace) -> bool:
    """Update ``settings`` from the flags given (``auto`` unsets a field whose default is None). Returns
    whether ``--lr-decay-batches`` was given."""
    for key in [*_FIELDS, *STREAM_SETTINGS]:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = None if (value == UNSET and key in _NULLABLE) else _tuples(value)
    return getattr(args, "lr_decay_batches", None) is not None


def _apply_condition(settings: dict[str, Any], args: argparse.Namespace) -> None:
    """``--condition``: set the model fields it implies (unless given explicitly), or refuse a model (from the
    flags or the resumed run) that conditions on something else."""
    condition = getattr(args, "condition", None)
    if condition is None:
        return
    implied = condition_of(settings)  # of the flags and the resumed run
    if implied == "none" and condition == "world" and getattr(args, "quench_fraction", None) is None:
        settings["quench_fraction"] = 0.0  # the world model was measured without the default's quench
    if implied == "none" and condition == "label" and args.n_classes is None:
        settings["n_classes"], implied = N_ZONES, "label"
        if settings["layout_color"] is not None:  # the zone model: the label acts through the layout
            settings.update({k: v for k, v in LABEL_LAYOUT.items() if getattr(args, k, None) is None})
    if implied == "none" and condition == "world" and args.n_actions is None:
        settings["n_actions"], implied = N_ACTIONS, "world"
        if settings["layout_color"] is not None:  # the measured world model with a layout (README)
            settings.update({k: v for k, v in WORLD_LAYOUT.items() if getattr(args, k, None) is None})
    if implied != condition:
        raise SystemExit(
            f"--condition {condition}: the model has n_classes={settings['n_classes']}, n_actions="
            f"{settings['n_actions']} (from flags or the resumed run), which is --condition {implied}"
        )


def _check_run_settings(settings: dict[str, Any]) -> None:
    """The stream settings' minimums and LunarLander's square RGB frames (DTMConfig checks the rest)."""
    for name, (default, _, _) in STREAM_SETTINGS.items():
        v = settings[name]
        if isinstance(v, bool) or not isinstance(v, type(default)):
            kind = "an integer" if isinstance(default, int) else "a string"
            raise SystemExit(f"{flag(name)} must be {kind}, got {v!r} (from run.json?)")
    for name, lo in STREAM_MINIMUMS.items():
        if settings[name] < lo:
            raise SystemExit(f"{flag(name)} must be >= {lo}, got {settings[name]}")
    shape = settings["image_shape"]
    ok = isinstance(shape, tuple) and len(shape) == 3 and all(isinstance(v, int) and v > 0 for v in shape)
    if not ok or shape[0] != shape[1] or shape[2] != 3:
        raise SystemExit(f"--image-shape: LunarLander frames are square RGB, N N 3, got {_show(shape)}")


def _resolve(args: argparse.Namespace, use_env: bool = True) -> tuple[dict[str, Any], Path]:
    """Run settings from the defaults (``lunarlander_settings.default_settings``; with --quick or, with
    ``use_env``, DTM_LITE_QUICK=1, the quick ones), a resumed run's run.json, explicit flags and --condition
    (in that order): one flat dict of the DTMConfig fields, the stream settings and ``quick``; and the run
    folder."""
    quick = bool(args.quick or (use_env and os.environ.get(QUICK_ENV) == "1"))
    settings = default_settings(quick)
    if args.out is not None:
        _check_out(args.out)
    out = _resume_folder(args.out) if args.resume else args.out
    decay_given = _apply_run_json(settings, out) if args.resume else False
    decay_given = _apply_flags(settings, args) or decay_given
    _apply_condition(settings, args)
    _check_run_settings(settings)
    # the learning-rate decay spans the batches planned when the run started; a resumed run keeps it
    if not decay_given:
        settings["lr_decay_batches"] = settings["epochs"] * settings["batches_per_epoch"]
    if out is None:
        out = Path("runs") / f"lunarlander-{time.strftime('%Y%m%d-%H%M%S')}"
    return settings, out


def train(args: argparse.Namespace) -> int:
    """``python -m dtm_lite train``: resolve the settings, build the model (refusing what cannot run before
    anything is written), then, holding the run folder's lock (one writer a run folder), write run.json and
    train (:func:`_train`)."""
    from dtm_lite.training.loop import CHECKPOINT_NAME

    _start_processes(args)  # before anything touches JAX's devices
    s, out = _resolve(args)
    config = _build_config(s, args)
    condition_of(s)  # a model that no stream fits is refused before anything is written
    dtm = _build_model(config, args)
    with _run_folder(out):
        ckpt = out / CHECKPOINT_NAME
        if not args.resume and ckpt.exists():
            raise SystemExit(f"{out} already holds a run: add --resume to continue it, or choose another --out")
        if args.resume and ckpt.exists():
            _check_resume(config, ckpt)  # before run.json changes: a refused resume leaves the run resumable
        _write_run_json(out, config, s)
        import jax

        print(f"devices: {dtm.n_devices} x {dtm.mesh.devices[0].platform}, {jax.process_count()} process(es)")
        print(f"run folder: {out.resolve()}")
        print(repr(dtm))
        _train(dtm, s, out, args)
    return 0


def _build_model(config: DTMConfig, args: argparse.Namespace):
    """The DTM of ``config`` on the devices of ``--devices``: SystemExit with a ``--devices:`` line for what the
    devices refuse (too many, a batch size they do not divide), ``invalid model settings:`` for the rest."""
    from dtm_lite.model import DTM
    from dtm_lite.scale.sharding import ChainMesh

    devices = "all" if args.devices is None else args.devices
    try:
        ChainMesh.of(devices).check_batch_size(config.batch_size)
    except ValueError as err:
        raise SystemExit(f"--devices: {err}") from None
    try:
        return DTM(config, devices=devices)
    except ValueError as err:
        raise SystemExit(f"invalid model settings: {err}") from None


@contextlib.contextmanager
def _run_folder(out: Path) -> Iterator[None]:
    """The run folder, checked writable (64 KiB written and fsynced: a full disk is refused here) and locked
    for the ``with`` block (:func:`~dtm_lite.training.files.lock_folder`), by process 0 (multi-host: the
    writer of the run folder); a one-line SystemExit naming --out otherwise."""
    import jax

    from dtm_lite.training.files import FolderBusyError, check_writable, lock_folder

    with contextlib.ExitStack() as stack:
        if jax.process_index() == 0:
            try:
                check_writable(out, "--out")
                stack.enter_context(lock_folder(out, "--out"))
            except FolderBusyError as err:
                raise SystemExit(str(err)) from None
            except OSError as err:
                raise SystemExit(err.strerror if "--out" in str(err.strerror) else f"--out {out}: {err}") from None
        yield


def _build_config(s: dict[str, Any], args: argparse.Namespace) -> DTMConfig:
    """The run's DTMConfig (SystemExit naming the problem for invalid settings); ``--batch-size auto``
    resolved for the devices (and written back into ``s``)."""
    auto = s["batch_size"] == AUTO
    budget = args.memory_budget
    if budget is not None and not (auto and math.isfinite(budget) and 0 < budget < 2**40):
        raise SystemExit(
            f"--memory-budget (MiB, > 0) goes with --batch-size {AUTO}, got {budget:g}"
            + ("" if math.isfinite(budget) and budget > 0 else ": give a finite number of MiB above 0")
        )
    try:
        config = config_from_settings({**s, "batch_size": 1} if auto else s)
    except ValueError as err:
        raise SystemExit(f"invalid model settings: {err}") from None
    frames = s["episodes_per_epoch"] * TRAIN_FRAMES_PER_EPISODE  # the most one epoch's stream gives
    if auto:
        config = config.replace(batch_size=_auto_batch_size(config, args, frames // s["batches_per_epoch"]))
        s["batch_size"] = config.batch_size
    if config.batch_size > frames:
        raise SystemExit(
            f"--batch-size {config.batch_size} is more than one epoch's stream gives: --episodes-per-epoch "
            f"{s['episodes_per_epoch']} plays at most {frames} frames ({TRAIN_FRAMES_PER_EPISODE} an episode), so no "
            "batch would fill; raise --episodes-per-epoch or lower --batch-size"
        )
    return config


def _write_run_json(out: Path, config: DTMConfig, s: dict[str, Any]) -> None:
    """``out/run.json``: ``{"config": config.to_dict(), **stream settings}``, written by process 0 only."""
    import jax

    from dtm_lite.training.files import atomic_write

    text = json.dumps({"config": config.to_dict(), **{k: s[k] for k in STREAM_SETTINGS}}, indent=2)
    if jax.process_index() == 0:  # multi-host: process 0 writes the run folder's files
        try:
            atomic_write(out / "run.json", lambda f: f.write(text.encode()))
        except OSError as err:
            raise SystemExit(
                f"--out {out}: cannot write run.json ({err.strerror or err}); nothing was trained: free some space "
                "or fix the folder's permissions, or choose another --out"
            ) from None


def condition_of(s: dict[str, Any]) -> str:
    """What a run's model conditions on (its settings or config fields ``n_classes``, ``n_actions``): "label"
    (n_classes = 3, the zone label), "world" (n_actions = 4) or "none"; SystemExit for a model that no
    LunarLander stream of the command fits."""
    n_classes, n_actions = s.get("n_classes", 0), s.get("n_actions", 0)
    if n_classes and n_actions:
        raise SystemExit(
            "a model with labels (--n-classes) and actions (--n-actions) has no LunarLander stream here: "
            "use --condition label or --condition world"
        )
    if n_classes not in (0, N_ZONES):
        raise SystemExit(f"--n-classes {n_classes}: the {LABEL_KIND!r} label (--condition label) has {N_ZONES} classes")
    if n_actions not in (0, N_ACTIONS):
        raise SystemExit(f"--n-actions {n_actions}: LunarLander, the stream of --condition world, has {N_ACTIONS}")
    return "label" if n_classes else "world" if n_actions else "none"


def _start_processes(args: argparse.Namespace) -> None:
    """Multi-host: ``jax.distributed.initialize`` with --coordinator, --num-processes and --process-id, or
    with what a SLURM job step or an Open MPI launch of several processes sets (JAX reads it itself)."""
    from dtm_lite.scale.sharding import cluster_process_count, initialize_distributed, initialize_from_cluster

    given = [flag(k) for k in ("num_processes", "process_id") if getattr(args, k) is not None]
    timeout = getattr(args, "coordinator_timeout", None)
    if timeout is not None and (args.coordinator is None or timeout < 1):
        raise SystemExit(f"--coordinator-timeout (seconds, >= 1) goes with --coordinator HOST:PORT, got {timeout}")
    if args.coordinator is not None:
        if len(given) < 2:
            raise SystemExit("--coordinator HOST:PORT needs --num-processes P and --process-id I as well")
        try:
            initialize_distributed(
                args.coordinator, args.num_processes, args.process_id, timeout or COORDINATOR_WAIT_S, log=_say
            )
        except (ValueError, ConnectionError) as err:
            raise SystemExit(f"--coordinator: {err}") from None
    elif given:
        raise SystemExit(
            f"{' and '.join(given)} {'need' if len(given) > 1 else 'needs'} --coordinator HOST:PORT (process 0's "
            "address); under SLURM or Open MPI leave all three out: JAX reads them from the launcher"
        )
    elif cluster_process_count() > 1:
        initialize_from_cluster()


def _say(text: str) -> None:
    """A progress line of the command (stderr, flushed at once)."""
    print(text, file=sys.stderr, flush=True)


def _auto_batch_size(config: DTMConfig, args: argparse.Namespace, stream_rows: int | None = None) -> int:
    """``--batch-size auto``: the largest global batch that fits the devices the run uses (see
    :mod:`dtm_lite.scale.batch_size`), the same on every process; printed with its estimate. With
    ``stream_rows`` (the most rows a batch can take for the stream to fill every batch of an epoch) it is
    capped there (a multiple of the device count, at least one row a device), which is said too."""
    import jax
    import numpy as np

    from dtm_lite.scale.batch_size import (
        CPU_BUDGET_BYTES,
        DEVICE_MEMORY_FRACTION,
        auto_batch_size,
        device_budget_bytes,
        training_bytes,
    )
    from dtm_lite.scale.sharding import resolve_devices

    try:
        devices = resolve_devices("all" if args.devices is None else args.devices)
    except ValueError as err:
        raise SystemExit(f"--devices: {err}") from None
    n = len(devices)
    if args.memory_budget is not None:
        budget, source = int(args.memory_budget * 2**20), "--memory-budget"
    else:
        mine = [d for d in devices if d.process_index == jax.process_index()] or devices
        budget = min(device_budget_bytes(d) for d in mine)
        source = "CPU default" if budget == CPU_BUDGET_BYTES else f"{DEVICE_MEMORY_FRACTION:g} of the device's memory"
    try:
        batch = auto_batch_size(config, n, budget)
    except ValueError as err:
        raise SystemExit(f"--batch-size {AUTO}: {err}") from None
    if jax.process_count() > 1:  # every process must step the same batch: the smallest choice
        from jax.experimental import multihost_utils

        batch = int(np.min(multihost_utils.process_allgather(np.int32(batch))))
    if stream_rows is not None and batch > max(n, stream_rows - stream_rows % n):
        batch = max(n, stream_rows - stream_rows % n)
        print(
            f"batch size {AUTO}: capped at {batch} rows, what one epoch's stream fills in every batch (at most "
            f"{stream_rows} frames a batch); raise --episodes-per-epoch for larger batches"
        )
    estimate = training_bytes(config, batch, n)
    print(
        f"batch size {AUTO}: {batch} ({batch // n} a device on {n} device(s)); training step estimated at "
        f"{estimate / 2**20:.1f} MiB a device, of a {budget / 2**20:.1f} MiB budget ({source})"
    )
    return batch


def _check_resume(config: DTMConfig, ckpt: Path) -> None:
    """Refuse (SystemExit) to resume ``ckpt`` with a model config other than the one it was made with,
    listing the fields that differ with their flags."""
    from dtm_lite.training.checkpoint import checkpoint_config

    try:
        saved = checkpoint_config(ckpt)
    except (OSError, ValueError) as err:
        raise SystemExit(f"--resume: cannot read the run's checkpoint: {err}") from None
    if saved == config:
        return
    diff = [
        f"{name} ({flag(name)}): {getattr(config, name)!r} now, {getattr(saved, name)!r} in the checkpoint"
        for name in config.to_dict()
        if getattr(config, name) != getattr(saved, name)
    ]
    raise SystemExit(
        f"--resume: these settings differ from the checkpoint {ckpt}: " + "; ".join(diff) + ". Drop those "
        "flags to continue the run (or start a new one with another --out); run.json is left unchanged."
    )


def stream_factory(dtm, s: dict[str, Any]):
    """``factory(epoch)`` -> that epoch's loader: frames (``--condition none``), frames with their zone labels
    (``label``) or (frames up to t, action_t, frame_t+1) transitions (``world``), each process its share."""
    import jax

    from dtm_lite.data.loader import IteratorDataLoader, TransitionLoader
    from dtm_lite.data.lunarlander import training_stream, transitions

    res = s["image_shape"][0]  # square RGB frames (checked by _resolve)
    rank, n_proc = jax.process_index(), jax.process_count()  # multi-host: each process streams its share
    condition = condition_of(s)

    def factory(epoch: int) -> IteratorDataLoader:
        stream = training_stream(
            res, epoch, s["episodes_per_epoch"], s["seed"], policy=s["policy"], num_envs=s["num_envs"],
            frame_stride=s["frame_stride"], process_index=rank, process_count=n_proc,
        )  # fmt: skip
        kw = dict(
            encoding=dtm.encoding, max_batches_per_epoch=s["batches_per_epoch"], shuffle_buffer=s["shuffle_buffer"],
            seed=s["seed"] + epoch, image_shape=(res, res, 3),
        )  # fmt: skip
        if condition == "world":  # each action held for the frame stride
            episodes = transitions(dataclasses.replace(stream, repeat_actions=True), history=s["cond_frames"])
            return TransitionLoader(episodes, s["batch_size"] // n_proc, n_actions=N_ACTIONS, **kw)
        if condition == "label":  # (frames, labels): the simulator's label of each frame
            stream = dataclasses.replace(stream, label=LABEL_KIND)
        return IteratorDataLoader(stream, s["batch_size"] // n_proc, n_classes=s["n_classes"] or None, **kw)

    return factory


def _holdout(s: dict[str, Any]):
    """The held-out frames and how often to evaluate on them: none for a world model (its samples need a
    previous frame and an action: benchmarks/world_model.py measures it); a labelled model is evaluated on
    its joint samples (image and label both sampled)."""
    from dtm_lite.data.lunarlander import holdout_frames

    if condition_of(s) == "world":
        print("world model: no held-out evaluation (benchmarks/world_model.py measures next frames and rollouts)")
        return None, 0
    t0 = time.perf_counter()
    res = s["image_shape"][0]
    holdout = holdout_frames(
        res, s["holdout_episodes"], seed=s["seed"], policy=s["policy"], frame_stride=s["frame_stride"]
    )
    print(f"held-out frames: {len(holdout)} from {s['holdout_episodes']} episodes ({time.perf_counter() - t0:.1f} s)")
    return holdout, s["evaluate_every"]


def _report(dtm, history: list[dict[str, Any]], out: Path, elapsed: float) -> None:
    """metrics.png and the last evaluation's numbers, then the session's length and the run folder."""
    from dtm_lite.interface.plots import plot_metrics
    from dtm_lite.training.loop import CHECKPOINT_NAME

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
        f"{len(history)} epochs, {dtm.batches_trained} batches; this session {elapsed:.0f} s; "
        f"checkpoint {out / CHECKPOINT_NAME}"
    )
    print(f"run folder: {out.resolve()}")


def _train(dtm, s: dict[str, Any], out: Path, args: argparse.Namespace) -> None:
    """Train ``dtm`` on the run's stream with checkpoints in ``out``, evaluating on the hold-out with the
    LunarLander evaluation settings (``lunarlander_settings.eval_settings``)."""
    from dtm_lite.training.loop import EmptyEpochError

    t0 = time.perf_counter()
    holdout, evaluate_every = _holdout(s)
    try:
        history = dtm.train_from_iterator(
            s["epochs"], stream_factory(dtm, s), s["batches_per_epoch"], evaluate_every=evaluate_every,
            holdout=holdout, checkpoint_dir=out, resume=args.resume, eval_settings=eval_settings(s["quick"]),
            progress=not args.no_progress,
        )  # fmt: skip
    except EmptyEpochError as err:
        raise SystemExit(
            f"{str(err).split(':')[0]}: --batch-size {s['batch_size']} is more frames than this epoch's "
            f"--episodes-per-epoch {s['episodes_per_epoch']} episodes gave; raise --episodes-per-epoch or lower "
            "--batch-size"
        ) from None
    except ValueError as err:
        if args.resume and CORRUPT in str(err):  # a checkpoint whose state or progress cannot be resumed
            raise SystemExit(f"--resume: {err}") from None
        raise
    _report(dtm, history, out, time.perf_counter() - t0)


def _figures(args: argparse.Namespace) -> int:
    """``figures``: the README figures of ``--model``, and ``metrics.png`` when ``--run`` holds a metrics.csv;
    a bad flag is a one-line refusal that names it."""
    from dtm_lite.interface.figures import draw_figures, load_model

    _check_out(args.out, "the figures")
    try:
        dtm, source = load_model(args.model)
    except (OSError, ValueError) as err:
        raise SystemExit(f"--model {args.model}: {err}") from None
    if not (args.run / "metrics.csv").is_file():
        print(f"--run {args.run} holds no metrics.csv, so metrics.png is not made (give --run a training run's "
              "folder for it)", file=sys.stderr)  # fmt: skip
    try:
        paths = draw_figures(dtm, source, args.run, args.out)
    except OSError as err:
        raise SystemExit(f"--out {args.out}: cannot write the figures ({err.strerror or err})") from None
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


def _export(args: argparse.Namespace) -> int:
    """``export``: the run's checkpoint as a weights file; a missing or damaged checkpoint, or an ``--out`` that
    cannot be written, is a one-line refusal that names the flag."""
    from dtm_lite.model import DTM
    from dtm_lite.training.loop import CHECKPOINT_NAME

    src = args.run / CHECKPOINT_NAME
    if not src.is_file():
        raise SystemExit(
            f"--run {args.run}: no checkpoint {src}; give the folder of a training run "
            "(python -m dtm_lite train --out FOLDER writes one)"
        )
    try:
        dtm = DTM.load(src)
    except (OSError, ValueError) as err:
        raise SystemExit(f"--run {args.run}: {err}") from None
    try:
        path = dtm.save_weights(args.out)
    except OSError as err:  # a folder, a path under a file (atomic_write says which), no space, no permission
        raise SystemExit(f"--out {args.out}: cannot write the weights file ({err.strerror or err})") from None
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB): the parameters of {src}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "figures":
        return _figures(args)
    if args.command == "export":
        return _export(args)
    if args.command == "train":
        try:
            return train(args)
        except KeyboardInterrupt:
            print("stopped; resume with: python -m dtm_lite train --resume --out <run folder>", file=sys.stderr)
            return 130
    return 2
