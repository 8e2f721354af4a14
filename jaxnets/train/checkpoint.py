"""Checkpoints: a state pytree (a TrainState, an RL runner) and the run's config in one msgpack file, written
atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import jax
import numpy as np
from flax import serialization

State = TypeVar("State")  # a pytree: the state restored has the structure of the template given


CHECKPOINT = "checkpoint.msgpack"
FORMAT = 2  # {'format', 'sha256', 'body': msgpack of {'config', 'state', 'extra'}}; format 1 was the bare body


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used for this run (missing, unreadable, or made with another config)."""


def save_checkpoint(
    path: str | os.PathLike, state: Any, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    """Write state + config (+ ``extra``, JSON-able: e.g. a part-done epoch's step metrics) to ``path`` atomically:
    temp file in the same folder, fsync, ``os.replace``, so a crash mid-write leaves the previous checkpoint intact.
    The body carries its SHA-256, so a file damaged later is reported as corrupt instead of loaded."""
    path = Path(path)
    body = {"config": json.dumps(config, sort_keys=True), "state": serialization.to_state_dict(jax.device_get(state))}
    if extra is not None:
        body["extra"] = json.dumps(extra)
    body_bytes = serialization.msgpack_serialize(body)
    data = serialization.msgpack_serialize(
        {"format": FORMAT, "sha256": hashlib.sha256(body_bytes).hexdigest(), "body": body_bytes}
    )
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


def _corrupt(path: str | os.PathLike, why: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt ({why}): it was left untouched; use --overwrite to start "
        "afresh or another --workdir"
    )


def _read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's body ({'config', 'state'[, 'extra']}), its checksum verified (files of the first format,
    without one, are read as they are)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except OSError as e:
        raise CheckpointError(f"checkpoint {path} cannot be read ({e.strerror or e})") from None
    try:
        outer = serialization.msgpack_restore(raw)
    except Exception as e:
        raise _corrupt(path, f"{len(raw)} bytes that do not parse: {type(e).__name__}: {e}") from None
    if not isinstance(outer, dict):
        raise _corrupt(path, f"{len(raw)} bytes that do not hold a checkpoint")
    if "body" in outer:
        body = outer["body"]
        if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != outer.get("sha256"):
            raise _corrupt(path, "its contents do not match their SHA-256 checksum")
        outer = serialization.msgpack_restore(body)
    if not isinstance(outer.get("config"), str) or not isinstance(outer.get("state"), dict):
        raise _corrupt(path, "no config or state in it")
    return outer


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config saved with a checkpoint."""
    try:
        return json.loads(_read(path)["config"])
    except json.JSONDecodeError as e:
        raise _corrupt(path, f"its config is not JSON: {e}") from None


def read_extra(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra`` saved with a checkpoint (empty if none)."""
    return json.loads(_read(path).get("extra", "{}"))


def load_checkpoint(path: str | os.PathLike, template: State) -> tuple[State, dict[str, Any]]:
    """Restore a checkpoint into the structure of ``template`` (a freshly initialised state); returns it and the
    saved config. Raises ``CheckpointError`` if the structures differ."""
    raw = _read(path)
    try:
        state = serialization.from_state_dict(template, raw["state"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path} does not match this model/optimizer: {e}") from None
    saved = jax.tree_util.tree_flatten_with_path(state)[0]
    for (where, want), (_, got) in zip(jax.tree_util.tree_flatten_with_path(template)[0], saved, strict=True):
        if np.shape(want) != np.shape(got):
            raise CheckpointError(
                f"checkpoint {path} holds arrays of other shapes than this model/optimizer: "
                f"{jax.tree_util.keystr(where)} is {np.shape(got)} there, {np.shape(want)} here"
            )
    return state, json.loads(raw["config"])


def config_difference(saved: dict[str, Any], now: dict[str, Any], ignore: tuple[str, ...] = ()) -> str:
    """The entries (but ``ignore``) in which a checkpoint's config and a run's differ, as "k=saved there but now
    here, ..." for a one-line refusal to resume; empty when they agree."""
    keys = sorted((set(saved) | set(now)) - set(ignore))
    return ", ".join(f"{k}={saved.get(k)!r} there but {now.get(k)!r} here" for k in keys if saved.get(k) != now.get(k))
