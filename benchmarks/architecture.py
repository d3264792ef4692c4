"""The package's shape, read from its source (nothing imported): lines by layer, long functions, imports, cycles.

    python benchmarks/architecture.py                    # the working tree
    python benchmarks/architecture.py --rev 6808741~1    # ... and, beside it, another git revision ("before")
    python benchmarks/architecture.py --json             # the same figures as JSON

Reports, for every ``*.py`` under ``dtm_lite/``: the physical lines (docstrings included) of the core
(``dtm_lite/core/``) and of each other layer; the longest function and every function over 60 lines; the lines of
the ``DTM`` class; which module imports which at run time (package-internal only, imports inside functions
included, ``if TYPE_CHECKING:`` excluded); the import cycles among them; and every import from the core to another
layer. The rules are in ``dtm_lite/interface/code_map.py`` (standard library only), loaded here from its file so
that this script needs neither JAX nor an importable package; ``tests/test_architecture.py`` checks the limits.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_code_map() -> ModuleType:
    """``dtm_lite/interface/code_map.py`` loaded from its path (``import dtm_lite`` would pull in JAX)."""
    spec = importlib.util.spec_from_file_location("code_map", ROOT / "dtm_lite" / "interface" / "code_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["code_map"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def print_sizes(columns: list[tuple[str, dict]]) -> None:
    """Files and lines by layer, one pair of columns per tree."""
    print(f"{'layer':<14}" + "".join(f"{title:>24}" for title, _ in columns))
    print(f"{'':<14}" + "".join(f"{'files':>12}{'lines':>12}" for _ in columns))
    layers = list(columns[0][1]["layers"])
    for layer in layers:
        row = "".join(f"{s['layers'][layer]['files']:>12}{s['layers'][layer]['lines']:>12}" for _, s in columns)
        print(f"{layer:<14}{row}")
    print(f"{'total':<14}" + "".join(f"{s['modules']:>12}{s['total_lines']:>12}" for _, s in columns))


def describe(function: dict | None) -> str:
    if function is None:
        return "none"
    return f"{function['name']} ({function['path']}:{function['line']}), {function['lines']} lines"


def print_details(title: str, s: dict) -> None:
    """Long functions, the model class, cycles, core leaks and the import lists of one tree."""
    print(f"\n== {title} ({s['layout']} layout, {s['modules']} modules) ==")
    print(f"longest function: {describe(s['longest_function'])}")
    over = s["functions_over_limit"]
    print(f"functions over {s['function_limit']} lines: {len(over)}")
    for f in over:
        print(f"  {f['lines']:>4}  {f['path']}:{f['line']}  {f['name']}")
    print(f"class {s['model_class']['name']}: {s['model_class']['lines']} lines")
    path = s["reading_path"]
    print(f"the core's reading path: {path['lines']} lines ({', '.join(f'{n} {k}' for n, k in path['files'].items())})")
    print(f"import cycles (run-time imports, lazy included, TYPE_CHECKING excluded): {len(s['cycles'])}")
    for cycle in s["cycles"]:
        inside = set(cycle)
        edges = [f"{a} -> {b}" for a in cycle for b in s["imports"][a] if b in inside]
        print(f"  {len(cycle)} modules: " + "; ".join(edges))
    print(f"core imports of other layers (TYPE_CHECKING included): {len(s['core_leaks'])}")
    for a, b in s["core_leaks"]:
        print(f"  {a} -> {b}")
    print("imports (package-internal, run-time):")
    for name, targets in s["imports"].items():
        if targets:
            print(f"  {name} -> {', '.join(targets)}")


def print_comparison(now: dict, before: dict, rev: str) -> None:
    rows = [
        ("core lines", before["layers"]["core"]["lines"], now["layers"]["core"]["lines"]),
        ("total lines", before["total_lines"], now["total_lines"]),
        ("longest function", before["longest_function"]["lines"], now["longest_function"]["lines"]),
        (f"functions > {now['function_limit']} lines", len(before["functions_over_limit"]),
         len(now["functions_over_limit"])),
        (f"class {now['model_class']['name']} lines", before["model_class"]["lines"], now["model_class"]["lines"]),
        ("import cycles", len(before["cycles"]), len(now["cycles"])),
        ("core imports of other layers", len(before["core_leaks"]), len(now["core_leaks"])),
    ]  # fmt: skip
    print(f"\n== before ({rev}) -> now ==")
    for what, a, b in rows:
        print(f"  {what:<30}{a!s:>8} -> {b!s:<8}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="also report this git revision (e.g. 6808741~1, the flat layout)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository root (default: this checkout)")
    args = ap.parse_args(argv)
    code_map = load_code_map()
    now = code_map.summary(code_map.modules_from_dir(args.root))
    before = code_map.summary(code_map.modules_from_rev(args.root, args.rev)) if args.rev else None
    if args.json:
        print(json.dumps({"now": now, "before": before, "rev": args.rev}, indent=1))
        return
    columns = [("now", now)] + ([(f"before ({args.rev})", before)] if before else [])
    print_sizes(columns)
    print_details("now: the working tree", now)
    if before is not None:
        print_details(f"before: {args.rev}", before)
        print_comparison(now, before, args.rev)


if __name__ == "__main__":
    main()
