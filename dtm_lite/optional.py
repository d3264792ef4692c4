"""Optional dependencies, imported where they are used, with an error naming the extra to install.

``pip install dtm_lite`` brings what the model, the data loader, training and evaluation need (jax, optax,
numpy, scipy, tqdm, matplotlib, pillow). The rest comes with extras:

- ``lunarlander``: ``gymnasium[box2d]``, gymnasium's ``LunarLander-v3`` (Box2D physics) behind
  :class:`dtm_lite.data.lunarlander.LunarLanderFrames`;
- ``notebooks``: ``jupyterlab`` and ``ipywidgets`` for the tutorials and the interactive
  :class:`dtm_lite.interface.widgets.SampleExplorer`, plus the ``lunarlander`` extra;
- ``dev``: the test, lint and type-check tools and thrml (Extropic's block-Gibbs sampling library, which the
  tests compare the sampler with), plus both extras above.

``require(module, extra=..., what=...)`` imports ``module`` or raises an ``ImportError`` that says what needs
it and which ``pip install`` brings it, e.g.::

    require("gymnasium", extra="lunarlander", what="LunarLander frames", package="gymnasium[box2d]")
    # without gymnasium: ImportError: gymnasium[box2d] is needed for LunarLander frames but cannot be
    # imported (No module named 'gymnasium'): pip install 'dtm_lite[lunarlander]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

# extra -> the packages it installs beyond the base dependencies (pyproject.toml's optional-dependencies)
EXTRAS: dict[str, tuple[str, ...]] = {
    "lunarlander": ("gymnasium[box2d]",),
    "notebooks": ("jupyterlab", "ipywidgets", "gymnasium[box2d]"),
    "dev": (
        "pytest",
        "pytest-xdist",
        "nbval",
        "thrml",
        "hypothesis",
        "ruff",
        "mypy",
        "jupyterlab",
        "ipywidgets",
        "gymnasium[box2d]",
    ),
}


def install_command(extra: str) -> str:
    """The shell command that installs ``extra``, e.g. ``pip install 'dtm_lite[lunarlander]'`` (quoted for shells
    that expand brackets)."""
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {tuple(EXTRAS)}, got {extra!r}")
    return f"pip install 'dtm_lite[{extra}]'"


def require(module: str, *, extra: str, what: str, package: str | None = None) -> ModuleType:
    """Import ``module`` (a dotted name) and return it; if it cannot be imported, raise ``ImportError``
    naming ``what`` needs it, the distribution (``package``, default the module's top-level name) and
    ``install_command(extra)``. The original error is chained (``__cause__``) and quoted in the message."""
    hint = install_command(extra)
    try:
        return importlib.import_module(module)
    except ImportError as err:
        name = package or module.split(".", 1)[0]
        raise ImportError(f"{name} is needed for {what} but cannot be imported ({err}): {hint}") from err
