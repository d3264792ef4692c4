"""A map of the package read from its source alone (``ast``, nothing imported): layers, sizes, imports, cycles.

Used by ``benchmarks/architecture.py`` (the printed report) and ``tests/test_architecture.py`` (the checks that
keep the core small and self-contained). Standard library only, so it runs without JAX installed.

Modules. Every ``*.py`` file under the package folder is a module named by its path: ``dtm_lite/core/sampler.py``
is ``dtm_lite.core.sampler``, ``dtm_lite/core/__init__.py`` is ``dtm_lite.core``. :func:`modules_from_dir` reads a
working tree, :func:`modules_from_rev` another git revision (``git ls-tree`` and ``git show REV:path``).

Imports (:func:`module_imports`). An edge ``A -> B`` means A's code imports the package-internal module B when it
runs: imports inside functions (lazy) count, imports under ``if TYPE_CHECKING:`` do not (they never run).
Relative imports are resolved against A's package. ``from P import x`` is an edge to the submodule ``P.x`` when
such a file exists, else to ``P`` itself (its ``__init__``). The parent packages that Python also initialises
(``import a.b.c`` runs ``a/__init__`` and ``a/b/__init__``) are not edges: the top-level ``__init__`` re-exports
the public names, so counting them would put every module in one cycle. A package ``__init__`` that imports its
own submodules is an edge like any other.

Cycles (:func:`import_cycles`): the strongly connected components of more than one module (Tarjan's algorithm).

Layers (:func:`layer_of`): the first folder under the package (``core``, ``conditioning``, ``data``, ``training``,
``evaluation``, ``scale``, ``interface``), ``model`` for ``model.py`` and ``top`` for the other top-level files.
A flat tree (no sub-packages, as before the move to folders) is classified by :data:`FLAT_LAYERS`.

Sizes. A file's size is its physical line count (docstrings, comments and blank lines included). A function or
class spans from its first decorator (or its ``def``/``class`` line) to its last line, nested functions included.
"""

from __future__ import annotations

import ast
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "dtm_lite"
MAX_FUNCTION_LINES = 60
LAYER_PACKAGES = ("core", "conditioning", "data", "training", "evaluation", "scale", "interface")
LAYERS = (*LAYER_PACKAGES, "model", "top")
# the core files a reader opens first (README, "Read the core first"), then the three they call for the noise
# process, the state pytree and the fixed parts of a model
READING_PATH = ("sampler", "gibbs_reference", "train_step", "generation", "conditioner", "diffusion", "state", "spec")
# the flat layout before the folders: old module name -> layer
FLAT_LAYERS = {
    **dict.fromkeys(
        ("graph", "capacity", "encoding", "placement", "diffusion", "sampler", "exact", "config", "state"), "core"
    ),
    **dict.fromkeys(("validation", "regularization", "penalty", "kernels"), "core"),
    **dict.fromkeys(("conditioning", "layout"), "conditioning"),
    **dict.fromkeys(("loader", "lunarlander"), "data"),
    **dict.fromkeys(("training", "checkpoint", "files"), "training"),
    **dict.fromkeys(("metrics", "thrml_bridge"), "evaluation"),
    **dict.fromkeys(("sharding", "batch_size"), "scale"),
    **dict.fromkeys(("cli", "plots", "figures", "widgets"), "interface"),
    "dtm": "model",
    "model": "model",
}


@dataclass(frozen=True)
class Module:
    """One source file: dotted ``name``, ``path`` relative to the tree's root, its ``source`` text."""

    name: str
    path: str
    source: str

    @property
    def is_package(self) -> bool:
        return self.path.endswith("__init__.py")

    @property
    def lines(self) -> int:
        return len(self.source.splitlines())


@dataclass(frozen=True)
class Function:
    """A function or method: ``name`` qualified by its classes and outer functions (``DTM.generate``)."""

    name: str
    path: str
    line: int
    lines: int


def module_name(path: str) -> str:
    """``"dtm_lite/core/sampler.py"`` -> ``"dtm_lite.core.sampler"``; ``".../core/__init__.py"`` -> ``"...core"``."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_from_dir(root: str | Path, package: str = PACKAGE) -> dict[str, Module]:
    """Every ``*.py`` under ``root/package`` (``__pycache__`` skipped), keyed by module name."""
    root = Path(root)
    if not (root / package / "__init__.py").is_file():
        raise FileNotFoundError(f"{root / package} has no __init__.py: pass the folder that holds the package")
    files = sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)
    modules = [Module(module_name(p.relative_to(root).as_posix()), p.relative_to(root).as_posix(), "") for p in files]
    return {m.name: Module(m.name, m.path, (root / m.path).read_text(encoding="utf-8")) for m in modules}


def modules_from_rev(repo: str | Path, rev: str, package: str = PACKAGE) -> dict[str, Module]:
    """Every ``*.py`` under ``package/`` at git revision ``rev`` of the repository at ``repo``."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise ValueError(f"git {' '.join(args)} failed: {done.stderr.strip()} (is {rev!r} a revision of {repo}?)")
        return done.stdout

    paths = [p for p in git("ls-tree", "-r", "--name-only", rev, "--", package).splitlines() if p.endswith(".py")]
    if not paths:
        raise ValueError(f"revision {rev!r} has no {package}/*.py files")
    return {module_name(p): Module(module_name(p), p, git("show", f"{rev}:{p}")) for p in paths}


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (any ``X.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them, function bodies included, but not ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [node]
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    return [imp for child in children for imp in _import_nodes(child)]


def _resolve_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of ``from <node.module> import ...`` (relative levels resolved against the package)."""
    if node.level == 0:
        return node.module or ""
    parts = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if node.level - 1 > len(parts) - 1:
        raise ValueError(f"{module.path}:{node.lineno}: relative import goes above the top-level package")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def module_imports(module: Module, known: set[str]) -> set[str]:
    """The package-internal modules (names in ``known``) that ``module`` imports at run time, itself excluded."""
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(module.source, filename=module.path)):
        if isinstance(node, ast.Import):
            for alias in node.names:  # ``import a.b.c``: the deepest known module of the dotted name
                parts = alias.name.split(".")
                found = [".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in known]
                targets.update(found[:1])
            continue
        base = _resolve_from(module, node)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in known:
                targets.add(sub)
            elif base in known:
                targets.add(base)
    targets.discard(module.name)
    return targets


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    """``{module: the modules it imports at run time}`` over every module of the tree."""
    known = set(modules)
    return {name: module_imports(m, known) for name, m in sorted(modules.items())}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth <= number of modules (tens)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (-len(c), c))


def _start(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def functions(module: Module) -> list[Function]:
    """Every function and method of ``module`` (nested ones too), with its length in lines."""
    found: list[Function] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    end = child.end_lineno or child.lineno
                    found.append(Function(name, module.path, child.lineno, end - _start(child) + 1))
                walk(child, f"{name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(module.source, filename=module.path), "")
    return found


def class_lines(module: Module, name: str) -> int | None:
    """The length in lines of the top-level class ``name`` of ``module``, or None if it has none."""
    for node in ast.parse(module.source, filename=module.path).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return (node.end_lineno or node.lineno) - _start(node) + 1
    return None


def is_flat(modules: dict[str, Module]) -> bool:
    """True for a tree without sub-packages (every module ``pkg`` or ``pkg.x``)."""
    return all(name.count(".") <= 1 for name in modules)


def layer_of(name: str, flat: bool = False) -> str:
    """The layer of module ``name``: a folder of :data:`LAYER_PACKAGES`, ``"model"`` or ``"top"`` (flat: by
    :data:`FLAT_LAYERS`)."""
    parts = name.split(".")
    if len(parts) == 1:
        return "top"
    if flat:
        return FLAT_LAYERS.get(parts[1], "top")
    if parts[1] in LAYER_PACKAGES:
        return parts[1]
    return "model" if parts[1] == "model" else "top"


def core_leaks(modules: dict[str, Module]) -> list[tuple[str, str]]:
    """``(core module, outside module)`` for every import from the core to another layer.

    Stricter than :func:`import_graph`: imports under ``if TYPE_CHECKING:`` count too, since a core that names
    outside types still depends on them.
    """
    flat, known = is_flat(modules), set(modules)
    leaks = []
    for name, module in sorted(modules.items()):
        if layer_of(name, flat) != "core":
            continue
        targets = module_imports(module, known) | _type_checking_imports(module, known)
        leaks += [(name, t) for t in sorted(targets) if layer_of(t, flat) != "core"]
    return leaks


def _type_checking_imports(module: Module, known: set[str]) -> set[str]:
    """The package-internal modules that ``module`` imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse(module.source, filename=module.path)
    blocks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and _is_type_checking(n.test)]
    body = "\n".join(ast.unparse(stmt) for block in blocks for stmt in block.body)
    return module_imports(Module(module.name, module.path, body), known) if body else set()


def summary(modules: dict[str, Module], model_class: str = "DTM") -> dict:
    """The figures of one tree, JSON-ready: lines by layer, long functions, the model class, imports, cycles."""
    flat = is_flat(modules)
    layers: dict[str, dict[str, int]] = {layer: {"files": 0, "lines": 0} for layer in LAYERS}
    for name, module in modules.items():
        layer = layers[layer_of(name, flat)]
        layer["files"] += 1
        layer["lines"] += module.lines
    funcs = sorted((f for m in modules.values() for f in functions(m)), key=lambda f: (-f.lines, f.path, f.line))
    model = [m for name, m in modules.items() if layer_of(name, flat) == "model"]
    sizes = [n for n in (class_lines(m, model_class) for m in model) if n is not None]
    graph = import_graph(modules)
    return {
        "layout": "flat" if flat else "layers",
        "modules": len(modules),
        "layers": layers,
        "total_lines": sum(m.lines for m in modules.values()),
        "longest_function": vars(funcs[0]) if funcs else None,
        "functions_over_limit": [vars(f) for f in funcs if f.lines > MAX_FUNCTION_LINES],
        "function_limit": MAX_FUNCTION_LINES,
        "model_class": {"name": model_class, "lines": sizes[0] if sizes else None},
        "imports": {name: sorted(targets) for name, targets in graph.items()},
        "cycles": import_cycles(graph),
        "core_leaks": [list(pair) for pair in core_leaks(modules)],
        "reading_path": reading_path(modules),
    }


def reading_path(modules: dict[str, Module]) -> dict:
    """The lines of the :data:`READING_PATH` files of ``dtm_lite/core/`` (those present), in reading order."""
    files = {n: modules[f"{PACKAGE}.core.{n}"].lines for n in READING_PATH if f"{PACKAGE}.core.{n}" in modules}
    return {"files": files, "lines": sum(files.values())}
