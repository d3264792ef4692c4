"""environment.yml and pyproject.toml name the same packages; the README keeps its two commands."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# conda-forge splits gymnasium[box2d] into gymnasium + box2d-py; thrml comes from PyPI via pip.
CONDA_NAMES = {"gymnasium[box2d]": {"gymnasium", "box2d-py"}}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req.strip(), maxsplit=1)[0].lower()


def _environment_names() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^\s+- ([A-Za-z0-9_.\-\[\]]+)", line)
        if m and m.group(1) not in ("pip", "pip:"):
            names.add(_name(m.group(1)))
    return names - {"python"}


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set()
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        wanted |= CONDA_NAMES.get(_name(req), {_name(req)})
    assert _environment_names() == wanted


def test_readme_quick_start_and_ci():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
