"""The public API is what a user would guess: every name the README and the notebooks use exists; each public package
lists its names in a sorted, complete ``__all__``; no package attribute is a function hiding a submodule of the same
name (the trap of ``jaxnets.summary`` or ``models.googlenet`` before the implementation modules became private)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

import jaxnets

ROOT = Path(__file__).parents[1]
PACKAGES = [
    "jaxnets",
    *sorted(
        name
        for _, name, is_package in pkgutil.walk_packages(jaxnets.__path__, "jaxnets.")
        if is_package and not any(part.startswith("_") for part in name.split("."))
    ),
]


def _documents() -> dict[str, str]:
    """README and every notebook cell (code and prose), by where they come from."""
    texts = {"README.md": (ROOT / "README.md").read_text()}
    for path in sorted((ROOT / "colab").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        texts[path.name] = "\n".join("".join(cell["source"]) for cell in cells)
    return texts


SUBPACKAGES = ("nn", "models", "losses", "data", "train", "viz", "analysis")


def _references() -> set[tuple[str, str]]:
    """(document, dotted name) of every jaxnets name used: ``jn.x.y`` / ``jaxnets.x.y``, ``from jaxnets.x import y``,
    ``python -m jaxnets.x``, and ``nn.x``-style names of the subpackages, in inline code (`models.x`) or where the
    document imports that subpackage by its own name (``from jaxnets import nn``)."""
    found = set()
    for where, text in _documents().items():
        imported = set()
        for module, names in re.findall(r"from (jaxnets(?:\.\w+)*) import ([\w, ]+)", text):
            names = [n.strip() for n in names.split(",") if n.strip()]
            found |= {(where, f"{module}.{n}") for n in names}
            imported |= set(names) if module == "jaxnets" else set()
        for rest in re.findall(r"(?<![\w./-])(?:jn|jaxnets)((?:\.\w+)+)", text):
            found.add((where, "jaxnets" + rest))
        for tick, sub, rest in re.findall(rf"(?<![\w./-])(`?)({'|'.join(SUBPACKAGES)})((?:\.\w+)+)", text):
            if (tick or sub in imported) and not rest.startswith(".py"):  # train.py is the script
                found.add((where, f"jaxnets.{sub}{rest}"))
        found |= {(where, "-m " + m) for m in re.findall(r"python -m (jaxnets[\w.]*)", text)}
    return found


NOT_OURS = {"jaxnets.nn.RNN"}  # flax's nn.RNN, which the README names beside jaxnets' own recurrent layer
REFERENCES = sorted(ref for ref in _references() if ref[1] not in NOT_OURS)


def _resolve(dotted: str) -> object:
    """The object a dotted name reaches from ``jaxnets``: attribute by attribute, importing submodules as needed."""
    parts = dotted.split(".")
    obj: object = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        if not hasattr(obj, part) and inspect.ismodule(obj):
            importlib.import_module(".".join(parts[: i + 1]))
        obj = getattr(obj, part)
    return obj


def test_the_documents_use_names():
    names = {name for _, name in REFERENCES}
    assert {"jaxnets.build", "jaxnets.train.fit", "jaxnets.nn.conv2d"} <= names, sorted(names)[:20]


@pytest.mark.parametrize(("where", "name"), REFERENCES, ids=[f"{w}:{n}" for w, n in REFERENCES])
def test_every_name_the_readme_and_notebooks_use_exists(where, name):
    if name.startswith("-m "):
        assert importlib.util.find_spec(name[3:]) is not None, f"{where} runs `python -m {name[3:]}`, which is missing"
        return
    try:
        _resolve(name)
    except (AttributeError, ImportError) as err:
        pytest.fail(f"{where} uses {name}, which does not exist: {err}")


def test_top_level_reaches_every_public_package():
    for sub in ("nn", "models", "losses", "data", "train", "viz", "analysis"):
        assert inspect.ismodule(getattr(jaxnets, sub)), sub
    assert callable(jaxnets.summary) and callable(jaxnets.count_params) and callable(jaxnets.build)
    assert "mlp" in jaxnets.models.REGISTRY and jaxnets.models.main_params is not None


def _defined_here(value: object) -> bool:
    """A name the package itself provides: a function or class of jaxnets, or a constant (no ``__module__``);
    not a typing helper or a ``__future__`` feature imported for the package's own code."""
    module = getattr(value, "__module__", None)
    return module is None or module == "jaxnets" or module.startswith("jaxnets.")


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_complete(package):
    pkg = importlib.import_module(package)
    assert hasattr(pkg, "__all__"), f"{package} has no __all__"
    names = list(pkg.__all__)
    assert names == sorted(names), f"{package}.__all__ is not sorted: {names}"
    assert len(set(names)) == len(names), f"{package}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(pkg, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
    public = {n for n, v in vars(pkg).items() if not n.startswith("_") and not inspect.ismodule(v) and _defined_here(v)}
    unlisted = sorted(public - set(names))
    assert not unlisted, f"{package} has public names missing from its __all__: {unlisted}"


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_shadows_a_submodule(package):
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        value = getattr(pkg, info.name, None)
        assert value is None or inspect.ismodule(value), (
            f"{package}.{info.name} is a {type(value).__name__}, hiding the submodule {package}.{info.name}"
        )
