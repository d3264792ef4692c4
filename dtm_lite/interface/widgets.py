"""An interactive explorer of DTM generation (ipywidgets), a static trajectory figure, and a tiny model.

``SampleExplorer(dtm).widget()`` returns an ipywidgets box with controls for the diffusion step, the Gibbs
sweep within it, the generation β ramp (start, end) and the seed, and shows the chains' visible state at
the chosen step and sweep next to the final generated frames. A generation (one trajectory for every
sample) is computed once per (β start, β end, seed) and cached; moving the step or sweep slider only
re-renders. Everything the widget shows is also available without a frontend: ``explorer.frames()``,
``explorer.figure()`` (a matplotlib Figure, for notebooks read where widgets do not render), and
``explorer.show()`` displays the widget with a static PNG of its current picture below it.

``load_explorer_model(candidates)`` loads the first candidate that exists (a pretrained name such as
``"lunarlander"``, i.e. ``DTM.pretrained``, or a checkpoint / weights file), else the small 16x16 checkpoint
shipped in the repository's ``figures/`` (``SHIPPED_CHECKPOINT``, found from this file's location, so from
any working directory), else trains a tiny model in a few seconds; ``make_explorer_checkpoint()`` writes
that shipped checkpoint (notebook 04's quick-mode model)::

    python -c "from dtm_lite.interface.widgets import make_explorer_checkpoint; make_explorer_checkpoint()"
"""

from __future__ import annotations

import html
import io
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dtm_lite.core.validation import check_beta
from dtm_lite.interface.plots import add_caption, image_grid, model_label
from dtm_lite.optional import require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dtm_lite.model import DTM

# The small explorer model shipped in the repository's figures/ (dtm_lite/interface/widgets.py -> the repository
# root, whatever the working directory); absent from an installed package, where load_explorer_model trains one.
SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[2] / "figures" / "explorer_checkpoint.npz"


def _record_every(sweeps: int, max_records: int = 40) -> int:
    """The smallest divisor of ``sweeps`` that keeps at most ``max_records + 1`` records per step."""
    for k in range(max(1, sweeps // max_records), sweeps + 1):
        if sweeps % k == 0:
            return k
    return sweeps


def _png(images: np.ndarray, ncols: int, scale: int, caption: str | None = None) -> bytes:
    from PIL import Image

    grid = Image.fromarray(image_grid(images, ncols))
    grid = grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)
    if caption:
        grid = add_caption(grid, caption)
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return buf.getvalue()


class SampleExplorer:
    """Generation of ``n`` samples from ``dtm``, browsable by diffusion step, Gibbs sweep, β ramp and seed.

    Args:
        dtm: a (trained) DTM.
        n: samples generated at once (the columns of the picture).
        sweeps: Gibbs sweeps per diffusion step (default ``dtm.config.generation_sweeps``).
        record_every: sweeps between recorded states (must divide ``sweeps``; default: about 40 records).
        beta: the initial β ramp (start, end) (default ``dtm.config.generation_beta``).
        seed: the initial seed.
        scale: pixel magnification of the displayed images.
        cache_size: generations kept in memory (one per (β start, β end, seed)).
        label: which model this is, shown in the widget and the figures (default ``model_label(dtm)``;
            ``load_explorer_model`` returns one).

    The diffusion step control counts in generation order: position 0 is the noisiest step T-1, the last
    position is step 0, whose final sample is the generated image. Sweep 0 is the state before the first
    sweep of a step (for step T-1, fresh spins drawn from the input biases alone).
    """

    def __init__(
        self,
        dtm: DTM,
        n: int = 8,
        sweeps: int | None = None,
        record_every: int | None = None,
        beta: tuple[float, float] | None = None,
        seed: int = 0,
        scale: int = 4,
        cache_size: int = 8,
        label: str | None = None,
    ) -> None:
        self.dtm = dtm
        self.label = label or model_label(dtm)
        self.n = int(n)
        self.sweeps = int(sweeps or dtm.config.generation_sweeps)
        self.every = int(record_every or _record_every(self.sweeps))
        if self.sweeps % self.every:
            raise ValueError(f"record_every ({self.every}) must divide sweeps ({self.sweeps})")
        self.records = self.sweeps // self.every + 1  # per diffusion step, the start included
        self.beta = tuple(float(b) for b in (beta or dtm.config.generation_beta))
        self.seed = int(seed)
        self.scale = int(scale)
        self.step_position = dtm.num_steps - 1  # the last one: step 0, the clean end
        self.sweep = self.sweeps
        self._cache: OrderedDict[tuple[float, float, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cache_size = int(cache_size)
        self.generations = 0  # how many generations were actually run (cache misses)
        self._w: dict[str, Any] | None = None

    # ------------------------------------------------------------------ data

    def generation(self, beta: tuple[float, float] | None = None, seed: int | None = None):
        """``(final (n, H, W, C), trajectory (T * records, n, H, W, C))`` for a β ramp and seed, cached."""
        ramp = self.beta if beta is None else tuple(float(b) for b in beta)
        seed = self.seed if seed is None else int(seed)
        key = (round(ramp[0], 6), round(ramp[1], 6), seed)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        final, traj = self.dtm.generate(
            self.n,
            key=seed,
            sweeps=self.sweeps,
            beta=check_beta("beta", ramp),  # generate() checks it the same way: (start, end), two floats > 0
            return_trajectory=True,
            record_every=self.every,
        )
        self.generations += 1
        self._cache[key] = (final, traj)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return final, traj

    def diffusion_step(self, position: int | None = None) -> int:
        """The model's step index k shown at a generation-order ``position`` (0 = noisiest = T-1)."""
        position = self.step_position if position is None else position
        return self.dtm.num_steps - 1 - int(position)

    def frames(self, position: int | None = None, sweep: int | None = None) -> np.ndarray:
        """The decoded visible state ``(n, H, W, C)`` at a step position and sweep (current controls by default)."""
        position = self.step_position if position is None else int(position)
        sweep = self.sweep if sweep is None else int(sweep)
        if not 0 <= position < self.dtm.num_steps:
            raise ValueError(f"step position must be in [0, {self.dtm.num_steps}), got {position}")
        if not 0 <= sweep <= self.sweeps:
            raise ValueError(f"sweep must be in [0, {self.sweeps}], got {sweep}")
        _, traj = self.generation()
        return traj[position * self.records + sweep // self.every]

    def final(self) -> np.ndarray:
        """The generated images ``(n, H, W, C)`` for the current β ramp and seed."""
        return self.generation()[0]

    def describe(self) -> str:
        k, T = self.diffusion_step(), self.dtm.num_steps
        t = self.dtm.times
        b0, b1 = self.beta
        beta_now = b0 + (b1 - b0) * max(self.sweep - 1, 0) / max(self.sweeps - 1, 1)
        return (
            f"diffusion step k={k} (position {self.step_position + 1} of {T}; models x at t={t[k]:.3g} "
            f"given x at t={t[k + 1]:.3g}), sweep {self.sweep}/{self.sweeps}, β {beta_now:.3f} "
            f"(ramp {b0:g} → {b1:g}), seed {self.seed}"
        )

    # ------------------------------------------------------------------ static figure

    def figure(self, n_show: int | None = None, columns: int = 7, beta=None, seed: int | None = None) -> Figure:
        """A matplotlib Figure of the denoising trajectory: one row per sample, about ``columns`` records
        from the first (random start) to the last (the generated image): log-spaced in sweeps for a
        single-step model, evenly spaced across all diffusion steps (noisiest first) otherwise."""
        from matplotlib.figure import Figure

        final, traj = self.generation(beta, seed)
        n_show = min(self.n, n_show or 4)
        total = len(traj)
        if self.dtm.num_steps == 1:  # most happens early: log-spaced sweeps, the start and the end included
            idx = np.concatenate([[0], np.geomspace(1, total - 1, max(columns - 1, 1))])
        else:  # evenly over the whole chain of steps
            idx = np.linspace(0, total - 1, columns)
        idx = np.unique(idx.round().astype(int))
        fig = Figure(figsize=(1.15 * len(idx) + 0.6, 1.2 * n_show + 0.5), layout="constrained")
        axes = fig.subplots(n_show, len(idx), squeeze=False)
        for c, i in enumerate(idx):
            pos, r = divmod(int(i), self.records)
            for row in range(n_show):
                ax = axes[row, c]
                ax.imshow(image_grid(traj[i, row : row + 1])[1:-1, 1:-1], interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    step = f"k={self.diffusion_step(pos)}, " if self.dtm.num_steps > 1 else ""
                    ax.set_title(f"{step}sweep {r * self.every}", fontsize=8)
        b0, b1 = self.beta if beta is None else beta
        fig.suptitle(f"{self.label}\nGibbs trajectory of generation (β {b0:g} → {b1:g}, "
                     f"seed {self.seed if seed is None else seed})", fontsize=10)  # fmt: skip
        return fig

    # ------------------------------------------------------------------ widget

    def widget(self):
        """An ipywidgets VBox: the model's name, controls, a status line, the current frames and the final
        frames."""
        W = require("ipywidgets", extra="notebooks", what="the interactive explorer (SampleExplorer.widget)")

        T = self.dtm.num_steps
        wide = {"style": {"description_width": "initial"}}  # the whole description, never "diffusion s…"
        # a single-step model (T = 1) has nothing to scrub: the slider says why it is fixed
        fixed = "this model has one diffusion step (T = 1); train with T > 1 to walk through a denoising chain"
        step = W.IntSlider(value=self.step_position, min=0, max=T - 1, disabled=T == 1, continuous_update=True,
                           description="diffusion step" if T > 1 else "diffusion step (fixed: T = 1)",
                           tooltip=fixed if T == 1 else "", **wide)  # fmt: skip
        sweep = W.IntSlider(value=self.sweep, min=0, max=self.sweeps, step=self.every, description="Gibbs sweep",
                            continuous_update=True, **wide)  # fmt: skip
        play = W.Play(value=self.sweep, min=0, max=self.sweeps, step=self.every, interval=120, description="play")
        W.jslink((play, "value"), (sweep, "value"))
        beta0 = W.FloatSlider(value=self.beta[0], min=0.05, max=3.0, step=0.05, description="β start",
                              continuous_update=False, **wide)  # fmt: skip
        beta1 = W.FloatSlider(value=self.beta[1], min=0.05, max=3.0, step=0.05, description="β end",
                              continuous_update=False, **wide)  # fmt: skip
        seed = W.BoundedIntText(value=self.seed, min=0, max=2**31 - 1, description="seed", **wide)
        status = W.HTML()
        ncols = self.n
        now = W.Image(format="png")
        final = W.Image(format="png")
        now_title, final_title = W.HTML(), W.HTML("<b>final frames</b> (step 0, last sweep)")

        def render(*_):
            self.step_position, self.sweep = step.value, sweep.value
            self.beta, self.seed = (beta0.value, beta1.value), seed.value
            try:
                now.value = _png(self.frames(), ncols, self.scale)
                final.value = _png(self.final(), ncols, self.scale)
                status.value = self.describe()
            except Exception as err:  # show it in the widget instead of losing it in a callback
                status.value = f"<span style='color:#b00'>error: {err}</span>"
                raise
            now_title.value = f"<b>state at diffusion step k={self.diffusion_step()}, sweep {self.sweep}</b>"

        for w in (step, sweep, beta0, beta1, seed):
            w.observe(render, names="value")
        render()
        self._w = {"step": step, "sweep": sweep, "play": play, "beta_start": beta0, "beta_end": beta1,
                   "seed": seed, "status": status, "image": now, "final": final}  # fmt: skip
        controls = W.VBox([W.HBox([step, sweep, play]), W.HBox([beta0, beta1, seed])])
        return W.VBox([W.HTML(f"<b>{html.escape(self.label)}</b>"), controls, status, now_title, now, final_title,
                       final])  # fmt: skip

    def snapshot_png(self) -> bytes:
        """A PNG of what the widget shows now: the state at the current step and sweep (top row) over the
        final frames (bottom row), under a caption naming the model and the controls."""
        images = np.concatenate([self.frames(), self.final()])
        caption = f"{self.label}. Top: {self.describe()}. Bottom: the final frames."
        return _png(images, self.n, self.scale, caption)

    def show(self) -> None:
        """Display the live widget and, below it, a static picture of it (:meth:`snapshot_png`), so that a
        notebook read without a kernel or widget state (GitHub, an untrusted notebook) shows the frames
        instead of the text ``VBox(children=...)``."""
        ipd = require("IPython.display", extra="notebooks", what="SampleExplorer.show", package="ipython")
        Image, display = ipd.Image, ipd.display

        box = self.widget()
        bundle = box._repr_mimebundle_()
        bundle["text/plain"] = f"SampleExplorer widget of {self.label} (live in Jupyter; a snapshot follows)"
        display(bundle, raw=True)
        display(Image(data=self.snapshot_png()))

    @property
    def controls(self) -> dict[str, Any]:
        """The widgets of the last ``widget()`` call by name (step, sweep, play, beta_start, beta_end, seed,
        status, image, final): set their ``.value`` to drive the explorer from code."""
        if self._w is None:
            raise RuntimeError("call widget() first")
        return self._w


# ---------------------------------------------------------------------- a model to explore


def tiny_config(**overrides: Any):
    """The quick LunarLander model (``lunarlander_settings.quick_model_config``: 16x16 frames in LunarLander's
    palette on 50_12, a short sampling schedule) with ``lr_decay_batches`` 200, then ``overrides``: trains at a
    few batches a second."""
    from dtm_lite.data.lunarlander_settings import quick_model_config

    return quick_model_config(**{"lr_decay_batches": 200, **overrides})


def train_tiny_model(batches: int = 30, seed: int = 0, progress: bool = False, **overrides: Any) -> DTM:
    """A tiny DTM (``tiny_config``) trained on ``batches`` batches of LunarLander frames (random policy)."""
    from dtm_lite.data.loader import IteratorDataLoader
    from dtm_lite.data.lunarlander import training_stream
    from dtm_lite.model import DTM
    from dtm_lite.training.loop import train_from_iterator

    config = tiny_config(lr_decay_batches=max(batches, 1), seed=seed, **overrides)
    dtm = DTM(config)
    res = config.image_shape[0]

    def factory(epoch: int) -> IteratorDataLoader:
        frames = training_stream(res, 0, 4 * batches + 8, seed)  # epoch 0 of the CLI's stream for this seed
        return IteratorDataLoader(frames, config.batch_size, max_batches_per_epoch=batches, shuffle_buffer=256,
                                  seed=seed, image_shape=config.image_shape)  # fmt: skip

    train_from_iterator(dtm, 1, factory, batches, progress=progress)
    return dtm


def load_explorer_model(candidates: list[str | os.PathLike], train_batches: int = 30) -> tuple[DTM, str]:
    """The first of ``candidates`` that exists: a pretrained name (``DTM.pretrained``, e.g. ``"lunarlander"``)
    or a checkpoint / weights file (a relative path is read from the working directory); else the shipped
    :data:`SHIPPED_CHECKPOINT` (found from the package's own location, so from any working directory); else
    a tiny model trained now. Returns ``(dtm, label)``, the label naming
    the model (:func:`~dtm_lite.interface.plots.model_label`), e.g. ``"DTM.pretrained('lunarlander'): 2,000 batches,
    32x32 palette, planes on 80_12"``."""
    from dtm_lite.interface.figures import load_model
    from dtm_lite.model import pretrained_names

    for candidate in candidates:
        if (isinstance(candidate, str) and candidate in pretrained_names()) or Path(candidate).is_file():
            dtm, source = load_model(candidate)
            return dtm, model_label(dtm, source)
    if SHIPPED_CHECKPOINT.is_file():
        dtm, source = load_model(SHIPPED_CHECKPOINT)
        return dtm, model_label(dtm, f"no model found among the candidates; the shipped {source}")
    dtm = train_tiny_model(train_batches)
    return dtm, model_label(dtm, "no model found among the candidates; a tiny model trained now")


def make_explorer_checkpoint(path: str | os.PathLike = SHIPPED_CHECKPOINT, batches: int = 120) -> Path:
    """Train the tiny model on ``batches`` batches and save it to ``path`` (default: :data:`SHIPPED_CHECKPOINT`
    in the repository's ``figures/``, whatever the working directory: the shipped fallback of
    :func:`load_explorer_model` and notebook 04's quick-mode model, about 200 KiB)."""
    return train_tiny_model(batches, progress=True).save(path)
