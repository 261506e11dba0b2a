"""The package's import graph: no cycle, the layers of CONTRIBUTING.md, each module
importable on its own.

The graph is read from the source with :mod:`ast`: every ``from . import x``, ``from .x
import y``, ``from xpcli.x import y`` and ``import xpcli.x``, at module level, inside
functions and under ``TYPE_CHECKING`` alike. (``xp --help`` importing neither polars nor
matplotlib is tests/test_docs.py::test_help_imports_neither_polars_nor_matplotlib.)
"""

from __future__ import annotations

import ast
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import PYTHON, ROOT

PACKAGE = ROOT / "xpcli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The modules of this package that module ``name`` imports, anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:  # from . import hf: the submodule
                    found.add(f"{target}.{alias.name}")
                elif target in MODULES:
                    found.add(target)
    found.discard(name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    assert "xpcli.cache" in GRAPH["xpcli.dataset"]  # from .cache import RawData, read
    assert "xpcli.format" in GRAPH["xpcli.importers._base"]  # from .. import format as fmt
    assert "xpcli.importers.hf" in GRAPH["xpcli.importers"]  # from . import hf, ...
    assert "xpcli.errors" in GRAPH["xpcli.spec.metric"]  # from xpcli.errors import SpecError
    assert "xpcli.dataset" in GRAPH["xpcli.commands._common"]  # inside a function
    assert "xpcli.analysis.forgetting" in GRAPH["xpcli.plots.forgetting"]  # TYPE_CHECKING


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def documented_layers() -> list[str]:
    """The top-level entries of CONTRIBUTING.md's layer map, in order (``records``,
    ``spec``, ...; ``xpcli`` for the package's ``__init__.py``)."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("## The layer map", 1)[1].split("    xpcli/\n", 1)[1].split("\n\n")[0]
    names = re.findall(r"^      (\S+?)(?:\.py|/)\s", block, flags=re.M)
    return ["xpcli" if n == "__init__" else f"xpcli.{n}" for n in names]


def test_imports_run_down_the_documented_layers() -> None:
    layers = documented_layers()

    def placed(module: str, top: str) -> bool:  # "xpcli" is the package's __init__.py only
        return module == top or (top != "xpcli" and module.startswith(top + "."))

    def layer(module: str) -> int:
        (index,) = [i for i, top in enumerate(layers) if placed(module, top)]
        return index

    undocumented = [m for m in MODULES if m != "xpcli.__main__"
                    and not any(placed(m, top) for top in layers)]
    assert not undocumented, f"add {undocumented} to CONTRIBUTING.md's layer map"
    upward = [f"{a} -> {b}" for a in sorted(MODULES) if a != "xpcli.__main__"
              for b in sorted(GRAPH[a]) if layer(b) > layer(a)]
    assert not upward, "imports against the layer map: " + ", ".join(upward)


def test_the_layer_map_is_read() -> None:
    layers = documented_layers()
    assert layers[0] == "xpcli.errors" and "xpcli.format" in layers
    assert layers.index("xpcli.records") < layers.index("xpcli.cache") < \
        layers.index("xpcli.dataset")
    assert layers[-1] == "xpcli.cli"


def import_alone(module: str) -> tuple[str, int, str]:
    proc = subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    return module, proc.returncode, proc.stderr.strip().splitlines()[-1:]


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    """First in its interpreter, each module must import: no order-dependent cycle, no
    name it takes from a module it does not import. (``__main__`` runs the CLI.)"""
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(import_alone, sorted(set(MODULES) - {"xpcli.__main__"})))
    failed = [f"{module}: {error}" for module, code, error in results if code != 0]
    assert not failed, failed
    assert len(results) == len(MODULES) - 1 > 40
