"""Metrics writers: one JSON object per epoch in ``metrics.jsonl``, metric curves in ``curves.png`` and, optionally,
TensorBoard event files in ``tensorboard/``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from jaxnets.viz import plot_curves as plot_curves  # curves.png is drawn in the one plotting module

METRICS = "metrics.jsonl"
CURVES = "curves.png"
TENSORBOARD = "tensorboard"  # the folder of event files (optional; tensorboardX writes them)
SPLITS = ("train", "val", "test")


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


class TensorBoard:
    """The records of a run as TensorBoard event files in ``folder``, written with tensorboardX's synchronous event
    writer (``pip install 'jaxnets[tensorboard]'``): each number ``SPLIT_METRIC`` of a record as scalar
    ``METRIC/SPLIT`` (train, val and test in one chart), other numbers under their own name, at step = the record's
    epoch. Like metrics.jsonl the files are a view of the checkpoint's records: ``rewrite`` replaces them (a new or
    resumed run), ``add`` appends one, on disk when it returns."""

    def __init__(self, folder: str | os.PathLike):
        from tensorboardX.event_file_writer import EventsWriter  # ImportError without the extra (fit: one line)
        from tensorboardX.proto import event_pb2, summary_pb2

        self.folder, self._writer_class, self._pb = Path(folder), EventsWriter, (event_pb2, summary_pb2)
        self.writer: Any = None

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the folder's event files by one holding ``records``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = self._writer_class(str(self.folder / "events"))
        for record in records:
            self.add(record)

    def add(self, record: dict[str, Any]) -> None:
        """Write one record's numbers as one event and flush it."""
        assert self.writer is not None, "rewrite first"
        event_pb2, summary_pb2 = self._pb
        values = []
        for key, value in record.items():
            if key in ("epoch", "step", "kept_epoch") or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            split, _, name = key.partition("_")
            tag = f"{name}/{split}" if split in SPLITS and name else key
            values.append(summary_pb2.Summary.Value(tag=tag, simple_value=float(value)))
        summary = summary_pb2.Summary(value=values)
        self.writer.write_event(event_pb2.Event(wall_time=time.time(), step=int(record["epoch"]), summary=summary))
        self.writer.flush()
