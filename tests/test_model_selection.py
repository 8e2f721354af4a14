"""Issue 14, validation and model selection: a seeded hold-out of the training set scored each epoch (``val_*``), the
test set scored once at the end on the kept parameters (``test_*``), ``keep="best"`` (the weights file and
``jaxnets.load`` get the lowest validation loss's parameters, the checkpoint stays the latest state), ``patience``
(early stopping), resume bitwise with both, and one-line errors for bad settings. Tiny runs on the embedded spirals."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import optax
import pytest
from helpers_train import leaves_equal
from test_reliability import cli, one_line  # noqa: F401 (cli: a fixture)
from test_run_safety import _signal_at_step

import jaxnets
from jaxnets import data, train
from jaxnets.cli import evaluate as evaluate_cli
from jaxnets.train import checkpoint as ckpt
from jaxnets.train.loop import validation_split
from jaxnets.train.rundir import BEST

SPIRALS = data.load("spirals")
MODEL = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
# Adam at 0.3 on a quarter of the spirals held out: the validation loss is lowest at epoch 6, higher at 7..10.
OPTIMIZER = optax.adam(0.3)
BEST_EPOCH, STEPS = 6, 12  # (384 training examples, batch 32)
TIMING = ("seconds", "images_per_second", "elapsed")


def _fit(epochs=10, **kw):
    kw = {"val_split": 0.25, "keep": "best", "log": lambda line: None, **kw}
    return train.fit(
        MODEL,
        SPIRALS.train_x,
        SPIRALS.train_y,
        SPIRALS.test_x,
        SPIRALS.test_y,
        optimizer=OPTIMIZER,
        epochs=epochs,
        batch_size=32,
        progress=False,
        **kw,
    )


def _records(workdir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in train.read_metrics(workdir / train.METRICS)]


def _without_opt(state: train.TrainState) -> train.TrainState:
    return state.replace(opt_state=None)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """10 epochs, keep best, patience 3, without a fault: the result and its workdir."""
    workdir = tmp_path_factory.mktemp("straight")
    return _fit(patience=3, workdir=workdir), workdir


def test_the_split_is_seeded_disjoint_and_covers_the_training_set():
    kept, held = validation_split(512, 0.25, seed=7)
    again = validation_split(512, 0.25, seed=7)
    other = validation_split(512, 0.25, seed=8)
    assert (len(kept), len(held)) == (384, 128)
    assert np.array_equal(kept, again[0]) and np.array_equal(held, again[1])
    assert not np.array_equal(held, other[1])
    assert not set(kept) & set(held) and sorted({*kept, *held}) == list(range(512))


def test_the_split_is_recorded_and_a_resume_with_another_is_refused(tmp_path):
    _fit(epochs=1, workdir=tmp_path)
    config = ckpt.read_config(tmp_path / train.CHECKPOINT)
    _, held = validation_split(len(SPIRALS.train_x), 0.25, seed=0)
    assert config["val_split"] == 0.25 and config["val_examples"] == 128
    assert config["val_sha256"] == hashlib.sha256(held.astype(np.int64).tobytes()).hexdigest()
    with pytest.raises(train.CheckpointError, match=r"val_split=0\.25 there but 0\.3 here"):
        _fit(epochs=2, workdir=tmp_path, resume=True, val_split=0.3)


def test_val_metrics_each_epoch_and_test_metrics_once_at_the_end(straight):
    result, workdir = straight
    records = _records(workdir)
    *epochs, final = records
    assert [r["epoch"] for r in epochs] == list(range(1, len(epochs) + 1))
    assert all({"val_loss", "val_accuracy", "train_loss"} <= set(r) for r in epochs)
    assert not any(k.startswith("test_") for r in epochs for k in r)
    assert final == result.final and final["final"] is True and final["kept_epoch"] == BEST_EPOCH
    # the test metrics are those of the kept (best) parameters, evaluated as fit evaluates
    want = train.evaluate(MODEL, result.best.params, result.best.model_state, SPIRALS.test_x, SPIRALS.test_y)
    assert {k: final[f"test_{k}"] for k in want} == want
    # and the validation set is the hold-out: its loss at the best epoch is that of the best parameters on it
    _, held = validation_split(len(SPIRALS.train_x), 0.25, seed=0)
    val = train.evaluate(
        MODEL, result.best.params, result.best.model_state, SPIRALS.train_x[held], SPIRALS.train_y[held]
    )
    assert val["loss"] == epochs[BEST_EPOCH - 1]["val_loss"]


def test_keep_best_keeps_the_lowest_validation_loss_and_the_checkpoint_the_latest(straight):
    result, workdir = straight
    losses = [r["val_loss"] for r in result.history]
    assert int(np.argmin(losses)) + 1 == BEST_EPOCH and losses[-1] > min(losses)  # the last epoch is worse
    assert int(result.best.step) == BEST_EPOCH * STEPS
    assert not leaves_equal(result.best.params, result.state.params)
    saved = train.load_checkpoint(workdir / train.CHECKPOINT, result.state)[0]
    assert leaves_equal(saved, result.state)  # the resume checkpoint: the latest state
    best, _ = train.load_checkpoint(workdir / BEST, _without_opt(result.state))
    assert leaves_equal(best, result.best)
    # selection does not change training: keep last (without patience) trains the same steps
    last = _fit(epochs=len(result.history), keep="last")
    assert last.best is None and last.final["kept_epoch"] == len(result.history)
    assert leaves_equal(last.state, result.state)


def test_patience_stops_after_that_many_epochs_without_improvement(straight):
    result, workdir = straight
    assert [r["epoch"] for r in result.history] == list(range(1, BEST_EPOCH + 4))  # epochs 7, 8, 9 no better
    assert int(result.state.step) == (BEST_EPOCH + 3) * STEPS
    before, lines = _records(workdir), []
    again = _fit(patience=3, workdir=workdir, resume=True, log=lines.append)  # a stopped run stays stopped
    assert int(again.state.step) == int(result.state.step) and again.final == result.final
    assert f"early stop after epoch {BEST_EPOCH + 3}: no lower validation loss for 3 epoch(s)" in lines
    assert _records(workdir) == before  # metrics.jsonl: the same records, the final one once
    assert [r.get("final", False) for r in before].count(True) == 1


@pytest.mark.parametrize(
    "at,said,lose_best",
    [
        (STEPS * 7 + 5, "interrupted at epoch 8 step 89", False),  # mid-epoch, after the best: best.msgpack read
        (STEPS * BEST_EPOCH, f"interrupted after epoch {BEST_EPOCH}", True),  # the best epoch's end: as if killed
    ],  # before best.msgpack was written: the checkpoint is the best epoch's state
    ids=["mid-epoch", "best-epoch-end"],
)
def test_resume_with_keep_best_and_patience_matches_the_uninterrupted_run(
    tmp_path, monkeypatch, straight, at, said, lose_best
):
    result, workdir = straight
    _signal_at_step(monkeypatch, at, signal.SIGINT)
    with pytest.raises(train.TrainingInterrupted, match=said):
        _fit(patience=3, workdir=tmp_path)
    monkeypatch.undo()
    if lose_best:
        (tmp_path / BEST).unlink()
    resumed = _fit(patience=3, workdir=tmp_path, resume=True)
    assert leaves_equal(resumed.state, result.state) and leaves_equal(resumed.best, result.best)
    assert resumed.final == result.final and _records(tmp_path) == _records(workdir)
    assert (tmp_path / BEST).read_bytes() == (workdir / BEST).read_bytes()


@pytest.mark.parametrize("damage", ["missing", "another step"])
def test_a_best_file_that_does_not_fit_the_checkpoint_is_refused_in_one_line(tmp_path, straight, damage):
    result, workdir = straight
    run = tmp_path / "run"
    shutil.copytree(workdir, run)
    if damage == "missing":
        (run / BEST).unlink()
        said = f"{run / BEST} is missing: it holds the parameters of the best epoch (step 72), which keep best"
    else:
        ckpt.save_checkpoint(run / BEST, result.best.replace(step=result.best.step + 1), {})
        said = f"{run / BEST} holds the state of step 73, but the checkpoint's best validation loss is that of step 72"
    with pytest.raises(train.CheckpointError, match=re.escape(said)) as caught:
        _fit(patience=3, workdir=run, resume=True)
    assert len(str(caught.value).splitlines()) == 1


def test_the_cli_keeps_the_best_for_load_and_evaluate(cli, tmp_path, capsys):  # noqa: F811
    workdir = tmp_path / "run"
    args = ["--model", "mlp", "--dataset", "spirals", "--epochs", "10", "--lr", "0.3", "--no-progress"]
    selection = ["--val-split", "0.25", "--keep", "best", "--patience", "3", "--workdir", str(workdir)]
    code, out, err = cli(*args, *selection)
    assert code == 0, err
    records = train.read_metrics(workdir / train.METRICS)
    final = records[-1]
    kept = final["kept_epoch"]
    assert final["final"] and kept < records[-2]["epoch"]  # the CLI's own run also ends worse than its best
    assert f"kept the parameters of epoch {kept} (best): test loss" in out
    trained = jaxnets.load(workdir)
    best, _ = train.load_checkpoint(workdir / BEST, _without_opt(_template()))
    latest, _ = train.load_checkpoint(workdir / train.CHECKPOINT, _template())
    assert int(best.step) == records[kept - 1]["step"] and leaves_equal(trained.params, best.params)
    assert not leaves_equal(trained.params, latest.params)
    record = json.loads((workdir / "config.json").read_text())["config"]
    assert (record["val_split"], record["keep"], record["patience"]) == (0.25, "best", 3)
    code = evaluate_cli.main(["--workdir", str(workdir), "--json"])  # the kept parameters' test metrics, exactly
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out) == {k: v for k, v in final.items() if k.startswith("test_")}, err


def test_normalisation_statistics_leave_the_hold_out_out(cli, tmp_path):  # noqa: F811
    workdir = tmp_path / "run"
    args = ["--model", "mlp", "--dataset", "spirals", "--epochs", "1", "--normalisation", "standard", "--no-progress"]
    code, _, err = cli(*args, "--val-split", "0.25", "--seed", "3", "--workdir", str(workdir))
    assert code == 0, err
    saved = json.loads((workdir / "config.json").read_text())["model"]["preprocessing"]
    raw = data.load_raw("spirals")
    kept = validation_split(len(raw.train_x), 0.25, 3)[0]
    np.testing.assert_allclose(saved["mean"], raw.train_x[kept].mean(0), rtol=1e-6)
    np.testing.assert_allclose(saved["std"], raw.train_x[kept].std(0), rtol=1e-6)
    assert not np.allclose(saved["mean"], raw.train_x.mean(0), rtol=1e-6)  # (the hold-out moves the statistics)


def _template() -> train.TrainState:
    return train.create_train_state(MODEL, train.make_optimizer("adam", 0.3), np.zeros(2, np.uint32))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--val-split", "0"], "--val-split must be a fraction in (0, 1); got 0.0"),
        (["--val-split", "1"], "--val-split must be a fraction in (0, 1); got 1.0"),
        (
            ["--val-split", "0.99"],
            "--val-split 0.99 of the 512 training examples leaves 5, fewer than a batch of 32: choose another fraction",
        ),
        (["--keep", "best"], "--keep best selects on the validation loss: it needs --val-split (e.g. 0.1)"),
        (["--patience", "2"], "--patience 2 selects on the validation loss: it needs --val-split (e.g. 0.1)"),
        (["--val-split", "0.2", "--patience", "0"], "--patience must be a whole number >= 1; got 0"),
        (["--val-split", "0.2", "--keep", "first"], "--keep must be one of last, best; got 'first'"),
    ],
)
def test_bad_selection_flags_are_one_line_errors(cli, tmp_path, args, message):  # noqa: F811
    code, _, err = cli("--model", "mlp", "--dataset", "spirals", "--epochs", "1", *args, "--workdir", str(tmp_path))
    assert code == 2 and one_line(err) == f"train.py: error: {message}"


@pytest.mark.parametrize(
    "kw,param,message",
    [
        ({"val_split": 1.0}, "val_split", r"val_split must be a fraction in \(0, 1\); got 1.0"),
        ({"val_split": None}, "keep", "keep best selects on the validation loss: it needs `val_split`"),
        ({"val_split": None, "keep": "last", "patience": 1}, "patience", "patience 1 selects on the validation loss"),
        ({"val_split": 0.95}, "val_split", "val_split 0.95 of the 512 training examples leaves 26, fewer than a batch"),
    ],
)
def test_bad_selection_parameters_in_the_library(kw, param, message):
    with pytest.raises(train.ParameterError, match=message) as caught:
        _fit(epochs=1, **kw)
    assert caught.value.param == param
