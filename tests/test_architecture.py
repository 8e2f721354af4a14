"""The layering of the package holds: every import inside ``jaxnets`` (module-level or inside a function) goes down
the layers or stays in its own, and no modules import each other in a cycle.

    nn  <-  losses  <-  models  <-  train  <-  cli
                    <-  data        train  <-  rl  <-  cli (rl's runs use train's run directory)
    viz: imports up to models and data; imported by train and cli only.

A new module of the package must be placed in a layer below (``LAYER_OF``), which is the point: its imports are
then checked like every other module's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "jaxnets"
FACADE = "jaxnets"  # jaxnets/__init__.py: the top-level re-exports, which only the CLI (a user) may import

# The first name under jaxnets -> its layer.
LAYER_OF = {
    "_names": "base",
    "accelerators": "base",
    "nn": "nn",
    "losses": "losses",
    "models": "models",
    "_summary": "models",
    "analysis": "models",
    "uncertainty": "models",
    "data": "data",
    "viz": "viz",
    "train": "train",
    "rl": "rl",
    "cli": "cli",
    "sample": "cli",
    "summary": "cli",
}
BELOW_MODELS = {"base", "nn", "losses"}
# layer -> the layers its modules may import (their own included).
MAY_IMPORT = {
    "base": {"base"},
    "nn": {"base", "nn"},
    "losses": {"base", "nn", "losses"},
    "models": BELOW_MODELS | {"models"},
    "data": BELOW_MODELS | {"data"},
    "viz": BELOW_MODELS | {"models", "data", "viz"},
    "train": BELOW_MODELS | {"models", "data", "viz", "train"},
    "rl": BELOW_MODELS | {"models", "data", "viz", "train", "rl"},
    "cli": BELOW_MODELS | {"models", "data", "viz", "train", "rl", "cli", "facade"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module an imported dotted name refers to: itself if it is one, else its longest module prefix."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> set[str]:
    """Every jaxnets module that ``module`` imports, at any depth of its code (functions included)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from .. import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {_resolve(n) for n in names if n == "jaxnets" or n.startswith("jaxnets.")}
    found.discard(module)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _layer(module: str) -> str:
    return "facade" if module == FACADE else LAYER_OF[module.split(".")[1]]


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if m != FACADE and m.split(".")[1] not in LAYER_OF)
    assert not unplaced, f"modules in no layer (add them to LAYER_OF in {Path(__file__).name}): {unplaced}"


def test_the_walk_sees_the_imports_it_should():
    """The checker itself: it finds module-level, function-level and `from package import submodule` imports."""
    assert "jaxnets.nn._core" in GRAPH["jaxnets.nn._conv"]
    assert "jaxnets.nn.initializers" in GRAPH["jaxnets.nn._conv"]  # from jaxnets.nn import initializers as inits
    assert "jaxnets.models" in GRAPH["jaxnets.train.pretrain"]
    assert {"jaxnets.nn", "jaxnets.losses"} <= GRAPH["jaxnets.models._googlenet"]
    assert "jaxnets.models._boltzmann" in GRAPH["jaxnets.models._autoencoders"]  # inside a function


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != FACADE))
def test_imports_go_down_the_layers(module):
    if module.split(".")[1] not in LAYER_OF:
        pytest.fail(f"{module} is in no layer")
    own = _layer(module)
    for target in sorted(GRAPH[module]):
        if target == FACADE or target.split(".")[1] in LAYER_OF:
            assert _layer(target) in MAY_IMPORT[own], (
                f"{module} ({own}) imports {target} ({_layer(target)}): {own} may import only {sorted(MAY_IMPORT[own])}"
            )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
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
    return found


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "modules importing each other in a cycle: " + "; ".join(" <-> ".join(c) for c in cycles)
