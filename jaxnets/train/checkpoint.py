"""Checkpoints: the TrainState and the run's config in one msgpack file, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import jax
from flax import serialization

from jaxnets.train.state import TrainState

CHECKPOINT = "checkpoint.msgpack"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used for this run (missing, unreadable, or made with another config)."""


def save_checkpoint(path: str | os.PathLike, state: TrainState, config: dict[str, Any]) -> None:
    """Write state + config to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``, so a crash
    mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    payload = {"config": json.dumps(config, sort_keys=True),
               "state": serialization.to_state_dict(jax.device_get(state))}
    data = serialization.msgpack_serialize(payload)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _read(path: str | os.PathLike) -> dict[str, Any]:
    try:
        return serialization.msgpack_restore(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e})") from None


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config saved with a checkpoint."""
    return json.loads(_read(path)["config"])


def load_checkpoint(path: str | os.PathLike, template: TrainState) -> tuple[TrainState, dict[str, Any]]:
    """Restore a checkpoint into the structure of ``template`` (a freshly initialised state); returns it and the
    saved config. Raises ``CheckpointError`` if the structures differ."""
    raw = _read(path)
    try:
        state = serialization.from_state_dict(template, raw["state"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} does not match this model/optimizer: {e}") from None
    shapes = jax.tree.map(lambda a, b: a.shape == b.shape, template, state)
    if not all(jax.tree.leaves(shapes)):
        raise CheckpointError(f"checkpoint {path} holds arrays of other shapes than this model/optimizer")
    return state, json.loads(raw["config"])
