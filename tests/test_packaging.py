"""Packaging: environment.yml and pyproject.toml name the same packages, the base install leaves the extras
out and works without them, a missing extra says which ``pip install`` brings it; the README keeps its two
commands."""

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from dtm_lite import optional

ROOT = Path(__file__).resolve().parents[1]
# conda-forge splits gymnasium[box2d] into gymnasium + box2d-py; thrml comes from PyPI via pip.
CONDA_NAMES = {"gymnasium[box2d]": {"gymnasium", "box2d-py"}}
EXTRA_ONLY = {"gymnasium", "gymnasium[box2d]", "box2d-py", "jupyterlab", "ipywidgets"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _extra(project: dict, extra: str) -> list[str]:
    """The requirements of ``extra``, its self-references (``dtm_lite[a,b]``) replaced by those extras'."""
    reqs = []
    for req in project["optional-dependencies"][extra]:
        m = re.fullmatch(r"dtm_lite\[([\w,\s-]+)\]", req.strip())
        if m:
            for other in m.group(1).split(","):
                reqs += _extra(project, other.strip())
        else:
            reqs.append(req)
    return reqs


def _environment_names() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-\[\]]+)", line)
        if m and m.group(1) not in ("pip", "pip:"):
            names.add(_name(m.group(1)))
    return names - {"python"}


def test_environment_matches_pyproject():
    project = _project()
    wanted = set()
    for req in project["dependencies"] + _extra(project, "dev"):
        wanted |= CONDA_NAMES.get(_name(req), {_name(req)})
    assert _environment_names() == wanted


def test_base_dependencies_leave_the_extras_out():
    project = _project()
    base = {_name(r) for r in project["dependencies"]}
    assert not base & EXTRA_ONLY
    assert {"jax", "optax", "numpy", "tqdm"} <= base
    extras = {e: {_name(r) for r in _extra(project, e)} for e in project["optional-dependencies"]}
    assert not base & set().union(*extras.values())  # nothing listed twice
    assert extras == {e: {_name(p) for p in pkgs} for e, pkgs in optional.EXTRAS.items()}  # the errors' names
    assert extras["lunarlander"] == {"gymnasium[box2d]"}
    assert extras["lunarlander"] | {"jupyterlab", "ipywidgets"} <= extras["notebooks"]
    assert (
        extras["notebooks"] | {"pytest", "pytest-xdist", "nbval", "thrml", "hypothesis", "ruff", "mypy"}
        <= extras["dev"]
    )
    assert 'pip install -e ".[dev]"' in (ROOT / "Makefile").read_text()  # make lab / make test: everything


def test_py_typed_ships_as_package_data():
    assert (ROOT / "dtm_lite" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["dtm_lite"]


def test_require_names_the_extra():
    assert optional.require("json", extra="dev", what="nothing") is json
    with pytest.raises(ImportError) as err:
        optional.require("dtm_lite_no_such_module.sub", extra="lunarlander", what="LunarLander frames", package="pkg")
    assert str(err.value).startswith("pkg is needed for LunarLander frames but cannot be imported")
    assert str(err.value).endswith("pip install 'dtm_lite[lunarlander]'")
    assert isinstance(err.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ValueError, match="extra must be one of"):
        optional.require("json", extra="lunar", what="nothing")


# Run in a fresh interpreter where the extras' modules cannot be imported (as if not installed).
WITHOUT_EXTRAS = textwrap.dedent("""
    import importlib.abc, json, sys

    BLOCKED = {"gymnasium", "Box2D", "ipywidgets", "jupyterlab", "IPython", "ipykernel"}

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NotInstalled())
    import numpy as np
    import dtm_lite

    def import_error(fn):
        try:
            fn()
        except ImportError as err:
            return str(err)

    out = {}
    dtm = dtm_lite.DTM(dtm_lite.DTMConfig(
        image_shape=(4, 4, 1), preset="20_8", batch_size=4, warmup_sweeps=4, n_samples=2, sweeps_per_sample=1,
        generation_sweeps=4, lr_decay_batches=10, seed=5))
    rng = np.random.default_rng(0)
    batches = [255 * rng.integers(0, 2, (4, 4, 4, 1), dtype=np.uint8) for _ in range(2)]
    rows = dtm_lite.train_from_iterator(dtm, 1, lambda: batches, 2, progress=False, prefetch=0)
    out["trained"] = [len(rows), list(np.shape(dtm.generate(2, key=0)))]
    from dtm_lite.data import lunarlander
    out["resized"] = list(lunarlander.resize_area(np.zeros((1, 8, 8, 3), np.uint8), (4, 4)).shape)
    out["frames"] = import_error(lambda: dtm_lite.LunarLanderFrames(resolution=8, episodes=1))
    out["make_env"] = import_error(lambda: lunarlander.make_env(8, "center", 1))
    out["frame_capture"] = import_error(lambda: lunarlander.FrameCapture)
    from dtm_lite.interface.widgets import SampleExplorer
    explorer = SampleExplorer(dtm, n=2)
    out["widget"] = import_error(explorer.widget)
    out["show"] = import_error(explorer.show)
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def without_extras() -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_trains_without_the_extras(without_extras):
    assert without_extras["trained"] == [1, [2, 4, 4, 1]]  # one epoch's metrics row, two generated 4x4 frames
    assert without_extras["resized"] == [1, 4, 4, 3]  # the frame helpers need no gymnasium


def test_import_leaves_the_extras_unimported():
    """Installed or not, the extras' modules are imported only where used (an env made, a widget shown)."""
    pytest.importorskip("gymnasium")
    pytest.importorskip("ipywidgets")
    code = (
        "import json, sys, dtm_lite, dtm_lite.data.lunarlander, dtm_lite.interface.widgets; "
        "print(json.dumps(sorted(m for m in ('gymnasium', 'Box2D', 'ipywidgets', 'jupyterlab') if m in sys.modules)))"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("what", ["frames", "make_env", "frame_capture"])
def test_lunarlander_without_gymnasium_names_the_extra(without_extras, what):
    message = without_extras[what]
    assert message is not None, f"{what} did not raise ImportError without gymnasium"
    assert "gymnasium[box2d]" in message and "pip install 'dtm_lite[lunarlander]'" in message


@pytest.mark.parametrize("what", ["widget", "show"])
def test_explorer_without_ipywidgets_names_the_extra(without_extras, what):
    message = without_extras[what]
    assert message is not None, f"SampleExplorer.{what}() did not raise ImportError without the notebooks extra"
    assert "pip install 'dtm_lite[notebooks]'" in message


def test_readme_quick_start_and_ci():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
