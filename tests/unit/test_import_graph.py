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
The package root (`loopynet/__init__.py`) re-exports the public API lazily and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "loopynet"
LAYERS = {"version": 0, "config": 0, "device": 0, "errors": 0, "home": 0, "io": 0, "omp_policy": 0, "data": 1, "models": 2,
          "train": 3, "tasks": 4, "explain": 4, "presets": 5, "inspect": 5, "tune": 5, "interop": 5, "serve": 5,
          "export": 5, "cli": 6}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The loopynet modules `path` imports anywhere in its code (`from a import b` counts as a.b when
    a.b is a module, else as a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
    return {name for name in found if name in modules and name != "loopynet"}


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items() if name != "loopynet"}


def layer(module: str) -> int:
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
    ("from loopynet import __version__", set()),
])
def test_imports_are_read_at_any_depth(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    modules = {"loopynet", "loopynet.train.loop", "loopynet.models", "loopynet.models.base", "loopynet.data.vocab"}
    assert imports(path, modules) == expected
