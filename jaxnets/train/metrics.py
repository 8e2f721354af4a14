"""Metrics writers: one JSON object per epoch in ``metrics.jsonl``, and metric curves in ``curves.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
    """Rewrite metrics.jsonl with ``records`` (used on resume to drop epochs past the checkpoint)."""
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in records))


def append_metrics(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record as a JSON line and flush it to disk."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Plot each metric (loss first, then accuracy, ...) for train and test against epoch into a PNG (Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    names = list(dict.fromkeys(k.removeprefix("train_") for k in records[0] if k.startswith("train_")))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        scale = 100 if name == "accuracy" else 1
        for split in ("train", "test"):
            if f"{split}_{name}" in records[0]:
                ax.plot(epochs, [scale * r[f"{split}_{name}"] for r in records], "o-", label=split)
        ax.set(xlabel="epoch", ylabel=name + (" (%)" if scale == 100 else ""), title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
