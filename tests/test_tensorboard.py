"""``fit(tensorboard=True)`` / ``--tensorboard``: TensorBoard event files holding exactly the run's records (read
back with tensorboardX's own protobuf), rebuilt like metrics.jsonl on resume, and a one-line error without a workdir."""

from __future__ import annotations

import struct
from pathlib import Path

import optax
import pytest

from jaxnets import data, train

event_pb2 = pytest.importorskip("tensorboardX.proto.event_pb2", reason="tensorboardX is not installed")
SPIRALS = data.load("spirals")


def _fit(workdir: Path, epochs: int, **kw) -> train.FitResult:
    model = train.build_model("mlp", (2,), 2)
    return train.fit(
        model,
        SPIRALS.train_x,
        SPIRALS.train_y,
        SPIRALS.test_x,
        SPIRALS.test_y,
        optimizer=optax.adam(1e-2),
        epochs=epochs,
        batch_size=64,
        workdir=workdir,
        tensorboard=True,
        progress=False,
        log=lambda line: None,
        **kw,
    )


def _scalars(folder: Path) -> dict[tuple[str, int], float]:
    """Every scalar in the folder's event files (TFRecord framing: length, its CRC, the Event, its CRC)."""
    out = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        raw = path.read_bytes()
        at = 0
        while at < len(raw):
            (length,) = struct.unpack("<Q", raw[at : at + 8])
            event = event_pb2.Event.FromString(raw[at + 12 : at + 12 + length])
            at += 16 + length
            for value in event.summary.value:
                assert (value.tag, event.step) not in out, f"{value.tag} at epoch {event.step} written twice"
                out[(value.tag, event.step)] = value.simple_value
    return out


def _expected(records: list[dict]) -> dict[tuple[str, int], float]:
    return {
        (
            f"{k.partition('_')[2]}/{k.partition('_')[0]}" if k.partition("_")[0] in ("train", "test") else k,
            r["epoch"],
        ): v
        for r in records
        for k, v in r.items()
        if k not in ("epoch", "step") and isinstance(v, float)
    }


def test_event_files_hold_the_records_and_are_rebuilt_on_resume(tmp_path):
    _fit(tmp_path / "run", 2)
    first = _scalars(tmp_path / "run" / "tensorboard")
    result = _fit(tmp_path / "run", 4, resume=True)  # (a constant rate: the run may go on for more epochs)
    records = train.read_metrics(tmp_path / "run" / train.METRICS)
    assert [r["epoch"] for r in records] == [1, 2, 3, 4] and len(result.history) == 4
    got = _scalars(tmp_path / "run" / "tensorboard")
    want = _expected(records)
    assert {"loss/train", "loss/test", "accuracy/test"} <= {tag for tag, _ in got}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], rel=1e-6) for k in want)  # (float32 in the events)
    assert all(got[k] == first[k] for k in first if k[0] != "seconds")  # epochs 1-2 as first written


def test_tensorboard_without_a_workdir_is_a_one_line_error():
    with pytest.raises(train.ParameterError, match=r"^tensorboard writes its event files into the workdir"):
        _fit(None, 1)
