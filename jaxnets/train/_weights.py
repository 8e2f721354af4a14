"""The weights file of a run: ``WORKDIR/weights.safetensors`` holds the parameters and model state as plain arrays
under flattened names (``params/conv1/kernel``, ``state/bn1/mean``) and, as its JSON metadata ``"jaxnets"``, what
rebuilds the model and prepares its inputs (``model_record``). safetensors is read by numpy, PyTorch, TF and JAX users
alike with one small package, holds no code (nothing runs on loading, unlike pickle) and carries the metadata in the
same file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxnets import data, models
from jaxnets.nn import PyTree

WEIGHTS = "weights.safetensors"
META_KEY = "jaxnets"
RECORD = ("name", "built_for", "input_shape", "num_classes", "model_args", "dataset")  # what load needs


def model_record(
    name: str,
    model: models.Model,
    built_for: tuple[int, ...] | Mapping[str, tuple[int, ...]],
    num_classes: int,
    model_args: dict[str, Any],
    dataset: str,
    preprocessing: data.Preprocessing | None,
    class_names: list[str] | None = None,
    vocab: str | list[str] | None = None,
) -> dict[str, Any]:
    """What rebuilds a trained model (``models.build(name, built_for, num_classes, **model_args)``) and prepares its
    inputs (JSON): stored in ``config.json`` (``"model"``) and the weights file's metadata."""
    return {
        "name": name,
        "built_for": models.shape_record(built_for),
        "input_shape": models.shape_record(model.input_shape),
        "num_classes": num_classes,
        "model_args": dict(model_args),
        "head": model.head,
        "dataset": dataset,
        "preprocessing": None if preprocessing is None else preprocessing.to_dict(),
        "class_names": class_names,
        "vocab": vocab,
    }


def named_leaves(prefix: str, tree: PyTree) -> dict[str, Any]:
    """The leaves of ``tree`` by their path's names joined with ``/`` after ``prefix`` (``params/conv1/w``)."""
    return {
        "/".join([prefix, *(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)]): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def flat(prefix: str, tree: PyTree) -> dict[str, np.ndarray]:
    """``named_leaves`` as contiguous numpy arrays."""
    return {k: np.ascontiguousarray(np.asarray(v)) for k, v in named_leaves(prefix, tree).items()}


def save_weights(path: str | os.PathLike, params: PyTree, state: PyTree, record: dict[str, Any]) -> Path:
    """Write ``params`` and ``state`` (flattened names) with ``record`` as metadata to a safetensors file,
    atomically (a temp file renamed over it)."""
    from safetensors.numpy import save_file

    path = Path(path)
    tensors = {**flat("params", jax.device_get(params)), **flat("state", jax.device_get(state))}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(record)})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_weights(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays of a weights file by name, and its jaxnets metadata."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "null"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    except (OSError, SafetensorError) as e:
        raise ValueError(f"weights file {path} cannot be read ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"weights file {path} has no {META_KEY!r} metadata: it was not written by jaxnets")
    return tensors, meta
