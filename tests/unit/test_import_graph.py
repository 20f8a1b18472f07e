"""The package's layers: every import (module level or inside a function) points down or sideways, and
no chain of imports comes back to where it started.

Layers, bottom to top (a module may import its own layer and the ones below):
    0 config, device, errors,     settings, devices, user errors, paths, model folders,
      home, io, omp_policy        OpenMP's wait policy (set before torch loads)
    1 data                        corpora, tokens, vectors, vocabularies, batching
    2 models                      networks (nn.Modules) and their kernels
    3 train                       the generic training loop
    4 tasks, explain              classification and tagging: APIs, tasks, metrics; examining a trained
                                  classifier (Classifier.explain/encode call it, it calls their networks)
    5 presets, inspect, tune,     recipes, diagnostics, the search, other frameworks (Keras), the HTTP
      interop, serve, export      service, ONNX export
    6 cli                         the command line: nothing imports it
The package root (`loopynet/__init__.py`) re-exports the public API lazily (imports inside `__getattr__`):
it is a module of layer 5, with an edge to each module it re-exports from, and `from loopynet import X`
(X not a submodule) is an edge to it; so a task module that reads anything from the root is both an
upward edge and a cycle (loopynet -> loopynet.tasks.*.api -> loopynet). Imports by name
(`importlib.import_module("loopynet.x")`) and module names in the root's lazy tables count as edges too.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "loopynet"
LAYERS = {"version": 0, "config": 0, "device": 0, "errors": 0, "home": 0, "io": 0, "omp_policy": 0, "data": 1, "models": 2,
          "train": 3, "tasks": 4, "explain": 4, "presets": 5, "inspect": 5, "tune": 5, "interop": 5, "serve": 5,
          "export": 5, "cli": 6}
ROOT = "loopynet"  # the package root: re-exports the tasks' APIs (layer 4)
ROOT_LAYER = 5


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The loopynet modules `path` imports anywhere in its code (`from a import b` counts as a.b when
    a.b is a module, else as a: `from loopynet import Classifier` is an edge to the root), imports by
    name (`import_module("loopynet.x")`, `__import__`), and in a package's `__init__.py` every string
    that names a module (a lazy re-export table read by `__getattr__`)."""
    found, lazy_table = set(), path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
        elif isinstance(node, ast.Call) and _called(node) in ("import_module", "__import__") and node.args:
            found |= {node.args[0].value} if isinstance(node.args[0], ast.Constant) else set()
        elif lazy_table and isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
    return {name for name in found if name in modules}


def _called(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the loopynet modules it imports, for every module of `package`, the root included."""
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    return {name: imports(path, set(paths)) - {name} for name, path in paths.items()}  # a docstring may name itself


def layer(module: str) -> int:
    if module == ROOT:
        return ROOT_LAYER
    top = module.split(".")[1]
    assert top in LAYERS, f"{module} belongs to no layer: add {top!r} to LAYERS in {__file__}"
    return LAYERS[top]


def upward_edges(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((a, b) for a, targets in edges.items() for b in targets if layer(b) > layer(a))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm), or a self-import."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_points_up_a_layer():
    assert upward_edges(graph()) == []


def test_models_import_nothing_above_them():
    edges = graph()
    assert {b for a, targets in edges.items() if a.startswith("loopynet.models") for b in targets
            if b.split(".")[1] not in ("config", "home", "models")} == set()


def test_no_import_cycle():
    assert cycles(graph()) == []


def test_the_checks_find_an_upward_edge_and_a_cycle():
    edges = {"loopynet.models.x": {"loopynet.train.loop"}, "loopynet.train.loop": {"loopynet.models.x"}}
    assert upward_edges(edges) == [("loopynet.models.x", "loopynet.train.loop")]
    assert cycles(edges) == [["loopynet.models.x", "loopynet.train.loop"]]
    assert cycles({"loopynet.data.a": {"loopynet.data.b"}, "loopynet.data.b": set()}) == []


@pytest.mark.parametrize("source, expected", [
    ("from loopynet.train.loop import fit", {"loopynet.train.loop"}),
    ("def f():\n    from loopynet.models import base", {"loopynet.models.base"}),
    ("import loopynet.data.vocab", {"loopynet.data.vocab"}),
    ("from loopynet import __version__", {"loopynet"}),
    ("from loopynet import config", {"loopynet.config"}),
    ("import importlib\nimportlib.import_module('loopynet.data.vocab')", {"loopynet.data.vocab"}),
])
def test_imports_are_read_at_any_depth(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    modules = {"loopynet", "loopynet.config", "loopynet.train.loop", "loopynet.models", "loopynet.models.base",
               "loopynet.data.vocab"}
    assert imports(path, modules) == expected


def test_the_roots_edges_are_its_lazy_re_exports():
    assert graph()[ROOT] >= {"loopynet.tasks.classification.api", "loopynet.tasks.tagging.api", "loopynet.config",
                             "loopynet.version"}


def _fake_package(tmp_path: Path, init: str, api: str) -> Path:
    """A package `loopynet` with a lazily re-exporting root and one task API module."""
    package = tmp_path / "loopynet"
    (package / "tasks" / "x").mkdir(parents=True)
    for path, text in ((package / "__init__.py", init), (package / "version.py", '__version__ = "0"\n'),
                       (package / "tasks" / "__init__.py", ""), (package / "tasks" / "x" / "__init__.py", ""),
                       (package / "tasks" / "x" / "api.py", api)):
        path.write_text(textwrap.dedent(text))
    return package


GETATTR_ROOT = """
    \"\"\"A root as loopynet's: the version at import, the API lazily.\"\"\"
    __version__ = "0"

    def __getattr__(name):
        if name == "Api":
            from loopynet.tasks.x.api import Api

            return Api
        raise AttributeError(name)
"""
TABLE_ROOT = """
    import importlib

    _LAZY = {"Api": "loopynet.tasks.x.api"}

    def __getattr__(name):
        return getattr(importlib.import_module(_LAZY[name]), name)
"""


@pytest.mark.parametrize("init", [GETATTR_ROOT, TABLE_ROOT], ids=["getattr-import", "lazy-table"])
def test_the_checks_catch_a_cycle_through_the_roots_lazy_re_export(tmp_path, init):
    """The cycle of last stop: the root re-exports a task API lazily, the API reads the root's __version__."""
    cyclic = graph(_fake_package(tmp_path / "a", init, "from loopynet import __version__\nclass Api: ...\n"))
    assert cycles(cyclic) == [["loopynet", "loopynet.tasks.x.api"]]
    assert upward_edges(cyclic) == [("loopynet.tasks.x.api", "loopynet")]
    fixed = graph(_fake_package(tmp_path / "b", init, "from loopynet.version import __version__\nclass Api: ...\n"))
    assert fixed["loopynet"] == {"loopynet.tasks.x.api"} and cycles(fixed) == [] and upward_edges(fixed) == []
