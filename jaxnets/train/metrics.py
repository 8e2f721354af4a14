"""Metrics writers: one JSON object per epoch in ``metrics.jsonl``, and metric curves in ``curves.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jaxnets.viz import plot_curves as plot_curves  # curves.png is drawn in the one plotting module

METRICS = "metrics.jsonl"
CURVES = "curves.png"


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (empty if it does not exist); a line cut short by a crash is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [r for r in records if isinstance(r, dict) and "epoch" in r]


def write_metrics(path: str | os.PathLike, records: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl with ``records`` (on resume: the checkpoint's record of the epochs done), atomically: a
    temp file renamed over it, so a kill meanwhile leaves the old file whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, path)


def append_metrics(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
