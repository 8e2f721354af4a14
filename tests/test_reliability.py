"""Issue 5: every bad input answered in one line (exit 2), every fault survived (exit 1, or 130 for Ctrl-C), nothing
saved is lost. CLI cases call train.py's ``main`` in this process (same code path, no start-up cost); the kill and
Ctrl-C cases run it in a subprocess that the test kills at a chosen step or inside a checkpoint write."""

from __future__ import annotations

import errno
import functools
import importlib.util
import os
import re
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers_train import (
    MNIST_DIR,
    REPO,
    dropout_mlp,
    in_process_cli,
    leaves_equal,
    offline_env,
    one_line,
    python,
)

import jaxnets
from jaxnets import data, train
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import safety

SPIRALS = data.load("spirals")
# The run every fault test interrupts: 6 epochs of 16 steps (the spirals' defaults otherwise: adam 0.01, batch 32).
RUN = ["--model", "mlp", "--dataset", "spirals", "--epochs", "6", "--no-progress"]


def _load_main():
    spec = importlib.util.spec_from_file_location("train_cli", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


MAIN = _load_main()


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args) -> (exit code, stdout, stderr)``: train.py's main in this process, offline."""
    return functools.partial(in_process_cli(capsys, monkeypatch), MAIN)


def template() -> train.TrainState:
    """A fresh state of RUN's model and optimiser, to load its checkpoints into."""
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    return train.create_train_state(model, train.make_optimizer("adam", 0.01), jax.random.PRNGKey(0))


def saved_state(workdir: Path) -> train.TrainState:
    return train.load_checkpoint(workdir / train.CHECKPOINT, template())[0]


def losses(workdir: Path) -> list[tuple[int, float]]:
    return [(r["epoch"], r["train_loss"], r["test_loss"]) for r in train.read_metrics(workdir / train.METRICS)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """RUN from start to end without a fault, in this process: its workdir (checkpoint and metrics)."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    assert MAIN([*RUN, "--workdir", str(workdir)]) == 0
    return workdir


# --- bad input: one line on stderr, exit status 2, before any training -------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "lenet"], "unknown model 'lenet' (did you mean lenet5"),
        (["--model", "MLP", "--dataset", "xor"], "unknown model 'MLP' (did you mean mlp or cnn_mlp?); choose one of"),
        (["--optimizer", "adm", "--dataset", "xor"], "unknown optimizer 'adm' (did you mean adam"),
        (["--dataset", "minst"], "unknown dataset 'minst' (did you mean mnist"),
        (["--dataset", "fashion-mnist"], "unknown dataset 'fashion-mnist' (did you mean fashion_mnist?)"),
        (
            ["--schedule", "cosin", "--dataset", "xor"],
            "unknown schedule 'cosin' (did you mean cosine?); choose one of constant, cosine",
        ),
    ],
)
def test_unknown_names_list_the_valid_ones_and_suggest_the_closest(cli, tmp_path, args, message):
    code, _, err = cli(*args, "--workdir", str(tmp_path / "run"), "--data-dir", str(tmp_path / "tfds"))
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_unknown_names_in_the_library_suggest_the_closest():
    with pytest.raises(ValueError, match=r"unknown model 'lenet5modern' \(did you mean lenet5_modern"):
        jaxnets.build("lenet5modern")
    with pytest.raises(
        ValueError,
        match=r"unknown optimizer 'nesterow' \(did you mean nesterov\?\); choose one of "
        r"sgd, momentum",
    ):
        train.make_optimizer("nesterow", 0.1)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar_10' \(did you mean cifar10"):
        data.load("cifar_10")
    with pytest.raises(ValueError, match=r"unknown normalisation 'unit1' \(did you mean unit"):
        train.TrainConfig(normalisation="unit1").resolved()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lr", "0"], "--lr must be a finite number > 0; got 0.0"),
        (["--lr", "-0.1"], "--lr must be a finite number > 0; got -0.1"),
        (["--lr", "nan"], "--lr must be a finite number > 0; got nan"),
        (["--lr", "inf"], "--lr must be a finite number > 0; got inf"),
        (["--momentum", "1.5"], "--momentum must be a finite number in [0, 1); got 1.5"),
        (["--epochs", "0"], "epochs and batch size must be >= 1; got 0,"),
        (["--epochs", "-3"], "epochs and batch size must be >= 1; got -3,"),
        (["--batch-size", "0"], "epochs and batch size must be >= 1; got 6, 0"),
        (["--batch-size", "-32"], "epochs and batch size must be >= 1; got 6, -32"),
        (
            ["--batch-size", "513"],
            "--batch-size 513 is larger than the 512 training examples of spirals: use at most 512",
        ),
    ],
)
def test_bad_numbers_are_refused_in_one_line_with_what_is_accepted(cli, tmp_path, args, message):
    code, _, err = cli(*RUN, *args, "--workdir", str(tmp_path))
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / train.CHECKPOINT).exists()


@pytest.mark.parametrize("value", ["inf", "nan", "2.5", "ten"])
def test_non_integer_epochs_and_batch_sizes_are_usage_errors(cli, value):
    for flag in ("--epochs", "--batch-size"):
        code, _, err = cli(*RUN, flag, value)
        assert code == 2 and f"argument {flag}: invalid int value: '{value}'" in err.strip().splitlines()[-1]


def test_bad_numbers_in_the_library():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    x, y = SPIRALS.train_x, SPIRALS.train_y
    for kw, match in [
        ({"batch_size": 513}, "batch size 513 is larger than the 512 training examples"),
        ({"batch_size": 0}, "must be whole numbers >= 1"),
        ({"epochs": 0}, "must be whole numbers"),
        ({"epochs": 2.5}, "must be whole numbers"),
    ]:
        with pytest.raises(ValueError, match=match):
            train.fit(model, x, y, optimizer=optax.sgd(0.1), **{"epochs": 1, "batch_size": 32, **kw}, log=print)
    for lr in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="need finite lr > 0"):
            train.make_optimizer("sgd", lr)


# --- a model given the wrong input ----------------------------------------------------------------------------------


def test_a_model_given_input_of_the_wrong_shape_says_both_shapes_before_compiling(monkeypatch):
    model = jaxnets.build("lenet5")  # the 1998 LeNet-5, for 32x32 grey images
    rgb = np.zeros((64, 32, 32, 3), np.float32)
    monkeypatch.setattr(train.loop, "indexed_train_step", lambda *a: pytest.fail("compiled a step"))
    with pytest.raises(
        ValueError,
        match=r"lenet5 expects examples of shape \(32, 32, 1\); train_x holds examples of "
        r"shape \(32, 32, 3\)",
    ):
        train.fit(model, rgb, np.zeros(64, np.int32), optimizer=optax.sgd(0.1), batch_size=32, log=print)
    with pytest.raises(ValueError, match=r"test_x holds examples of shape \(28, 28, 1\)"):
        train.fit(
            model,
            rgb[..., :1],
            np.zeros(64, np.int32),
            np.zeros((8, 28, 28, 1)),
            np.zeros(8, np.int32),
            optimizer=optax.sgd(0.1),
            batch_size=32,
            log=print,
        )
    params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    for shape in [(2, 32, 32, 3), (2, 28, 28, 1), (32, 32, 1)]:  # channels, size, rank
        with pytest.raises(
            ValueError,
            match=rf"lenet5 expects input of shape \(batch, 32, 32, 1\); got "
            rf"\({', '.join(map(str, shape))}\)",
        ):
            jax.eval_shape(model.apply, params, state, jax.ShapeDtypeStruct(shape, jnp.float32))


def test_a_dataset_the_model_cannot_take_is_refused_before_compiling(cli, tmp_path):
    grid = data.Dataset(
        "grid",
        np.zeros((8, 4, 4, 4, 1), np.uint8),
        np.zeros(8, np.int32),
        np.zeros((8, 4, 4, 4, 1), np.uint8),
        np.zeros(8, np.int32),
        10,
    )
    with pytest.raises(
        ValueError,
        match=r"model lenet5_modern cannot take dataset grid \(examples of shape "
        r"\(4, 4, 4, 1\), 10 classes\)",
    ):
        train.build_for("lenet5_modern", grid)
    code, _, err = cli("--model", "small_cnn", "--dataset", "spirals", "--workdir", str(tmp_path))
    assert code == 2 and "model small_cnn cannot take dataset spirals (examples of shape (2,)" in one_line(err)


# --- library misuse -------------------------------------------------------------------------------------------------


def test_params_of_another_model_are_refused_naming_the_first_mismatch():
    lenet = jaxnets.build("lenet5_modern")
    params, state = jax.eval_shape(lenet.init, jax.random.PRNGKey(0))  # (shapes are all the check looks at)
    x = jnp.zeros((2, 28, 28, 1))
    mlp = jaxnets.build("mlp", input_shape=(28, 28, 1), num_classes=10)
    mlp_params, mlp_state = jax.eval_shape(mlp.init, jax.random.PRNGKey(0))
    with pytest.raises(
        ValueError,
        match=r"lenet5_modern: the params given are not this model's: they lack "
        r"params\['C1'\]\['b'\] of shape \(6,\) and hold params\['hidden1'\]",
    ):
        jax.jit(lambda p: lenet.apply(p, state, x)).lower(mlp_params)  # caught while tracing, before compiling
    wide = jaxnets.build("mlp", input_shape=(28, 28, 1), num_classes=10, hidden=(64, 100))
    with pytest.raises(
        ValueError,
        match=r"mlp: params\['hidden1'\]\['b'\] has shape \(300,\) but mlp expects "
        r"\(64,\)",
    ):
        wide.apply(mlp_params, mlp_state, x)  # eagerly too, before any computation
    assert jax.eval_shape(lenet.apply, params, state, x)[0].shape == (2, 10)


def test_dropout_without_a_key_in_training_and_float_labels_are_refused():
    model = dropout_mlp()
    params, state = model.init(jax.random.PRNGKey(0))
    x = jnp.asarray(SPIRALS.train_x[:8])
    with pytest.raises(ValueError, match=r"dropout needs a PRNG key .*key="):
        model.apply(params, state, x, train=True)
    assert model.apply(params, state, x)[0].shape == (8, 2)  # evaluation needs no key
    with pytest.raises(
        ValueError,
        match=r"mlp: labels must be integer class indices \(a softmax classifier\); "
        r"got float32 labels",
    ):
        model.metrics(params, state, x, jnp.zeros(8, jnp.float32))
    with pytest.raises(ValueError, match=r"labels must have shape \(batch,\) = \(8,\).*got \(8, 2\)"):
        model.metrics(params, state, x, jnp.zeros((8, 2), jnp.int32))  # one-hot instead of indices
    with pytest.raises(ValueError, match=r"train_y must hold integer class indices; got float64"):
        train.fit(
            model, SPIRALS.train_x, SPIRALS.train_y.astype(float), optimizer=optax.sgd(0.1), batch_size=32, log=print
        )


# --- data that is not there, or not right ---------------------------------------------------------------------------


def test_unprepared_data_without_network_or_with_a_file_missing_fails_fast(cli, tmp_path):
    start = time.perf_counter()
    code, _, err = cli("--data-dir", str(tmp_path / "tfds"), "--workdir", str(tmp_path / "run"))
    assert code == 2 and "unreachable; no manual dir was given): pass --manual-dir DIR holding" in one_line(err)
    (tmp_path / "man").mkdir()
    code, _, err = cli(
        "--manual-dir", str(tmp_path / "man"), "--data-dir", str(tmp_path / "tfds"), "--workdir", str(tmp_path / "run")
    )
    line = one_line(err)
    assert code == 2 and time.perf_counter() - start < 20
    assert f"{tmp_path / 'man'} lacks t10k-images-idx3-ubyte.gz" in line and "--manual-dir DIR holding" in line


needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists(), reason=f"the MNIST files are not in {MNIST_DIR}"
)


@needs_mnist
@pytest.mark.parametrize(
    "damage,why",
    [
        (
            "truncate",
            r"it has 2,271 bytes where TFDS expects 4,542 bytes with SHA-256 f7ae60f92e00ec6d\.\.\. \(it is "
            r"truncated\)",
        ),
        ("other file", r"it has 28,881 bytes where TFDS expects 4,542 bytes .*\(it is damaged, or another file"),
        (
            "garbage",
            r"it has 4,542 bytes with SHA-256 [0-9a-f]{16}\.\.\. where TFDS expects 4,542 bytes with SHA-256 "
            r"f7ae60f92e00ec6d\.\.\. \(it is damaged",
        ),
    ],
)
def test_a_manual_dir_with_a_bad_file_explains_it_and_prepares_nothing(cli, tmp_path, damage, why):
    manual = tmp_path / "man"
    manual.mkdir()
    for f in MNIST_DIR.iterdir():  # the big files by link, the damaged one copied (never touching the originals)
        (manual / f.name).symlink_to(f)
    bad = manual / "t10k-labels-idx1-ubyte.gz"
    original = (MNIST_DIR / bad.name).read_bytes()
    bad.unlink()
    bad.write_bytes(
        {
            "truncate": original[: len(original) // 2],
            "other file": (MNIST_DIR / "train-labels-idx1-ubyte.gz").read_bytes(),
            "garbage": bytes(len(original)),
        }[damage]
    )
    with pytest.raises(
        data.DataUnavailable,
        match=rf"{re.escape(str(bad))} is not the file mnist needs: {why}.*put "
        r"the original from https://\S+/t10k-labels-idx1-ubyte.gz there",
    ):
        data.load("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual))
    assert not (tmp_path / "tfds" / "mnist").exists() or not any((tmp_path / "tfds" / "mnist").rglob("*.tfrecord*"))
    code, _, err = cli(
        "--manual-dir", str(manual), "--data-dir", str(tmp_path / "tfds"), "--workdir", str(tmp_path / "run")
    )
    assert code == 2 and "is not the file mnist needs" in one_line(err)
    assert (MNIST_DIR / bad.name).read_bytes() == original


# --- the workdir and its checkpoint ---------------------------------------------------------------------------------


def test_resume_without_a_checkpoint_is_refused(cli, tmp_path):
    code, _, err = cli(*RUN, "--workdir", str(tmp_path / "typo"), "--resume")
    assert code == 2 and f"--resume: {tmp_path / 'typo'} holds no checkpoint (checkpoint.msgpack)" in one_line(err)
    with pytest.raises(train.CheckpointError, match="holds no checkpoint"):
        train.fit(
            dropout_mlp(),
            SPIRALS.train_x,
            SPIRALS.train_y,
            optimizer=optax.sgd(0.1),
            batch_size=32,
            workdir=tmp_path / "typo",
            resume=True,
            log=print,
        )


def test_resume_from_another_model_or_shape_is_refused_and_leaves_the_files(cli, tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    workdir.mkdir()
    for f in (train.CHECKPOINT, train.METRICS):
        (workdir / f).write_bytes((uninterrupted / f).read_bytes())
    before = {f.name: f.read_bytes() for f in workdir.iterdir()}
    code, _, err = cli(*RUN[:-1], "--model", "logistic", "--workdir", str(workdir), "--resume")
    assert code == 2 and "model='mlp' there but 'logistic" in one_line(err)
    code, _, err = cli(*RUN, "--dataset", "xor", "--workdir", str(workdir), "--resume")
    assert code == 2 and "dataset='spirals' there but 'xor' here" in one_line(err)
    assert {f.name: f.read_bytes() for f in workdir.iterdir() if f.name != ".lock"} == before
    other = jaxnets.build("mlp", input_shape=(3,), num_classes=2)  # same model, another input shape
    with pytest.raises(train.CheckpointError, match=r"input_shape=\[2\] there but \[3\] here"):
        train.fit(
            other,
            np.zeros((64, 3), np.float32),
            np.zeros(64, np.int32),
            optimizer=optax.adam(0.01),
            batch_size=32,
            workdir=workdir,
            resume=True,
            config={"dataset": "spirals"},
            log=print,
        )
    with pytest.raises(
        train.CheckpointError,
        match=r"holds arrays of other shapes than this model/optimizer: "
        r"\.params\['hidden1'\]\['w'\] is \(2, 300\) there, \(3, 300\)",
    ):
        opt = train.make_optimizer("adam", 0.01)
        train.load_checkpoint(workdir / train.CHECKPOINT, train.create_train_state(other, opt, jax.random.PRNGKey(0)))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped byte", "empty"])
def test_a_corrupt_checkpoint_is_named_and_left_untouched(cli, tmp_path, uninterrupted, damage):
    workdir = tmp_path / "run"
    workdir.mkdir()
    good = (uninterrupted / train.CHECKPOINT).read_bytes()
    middle = len(good) // 2
    bad = {
        "truncated": good[:middle],
        "garbage": os.urandom(len(good)),
        "empty": b"",
        "flipped byte": good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1 :],
    }[damage]
    (workdir / train.CHECKPOINT).write_bytes(bad)
    (workdir / train.METRICS).write_bytes((uninterrupted / train.METRICS).read_bytes())
    code, _, err = cli(*RUN, "--workdir", str(workdir), "--resume")
    assert code == 2 and (
        f"checkpoint {workdir / train.CHECKPOINT} is corrupt (" in one_line(err)
        and "it was left untouched; use --overwrite to start afresh or another --workdir" in err
    )
    assert (workdir / train.CHECKPOINT).read_bytes() == bad
    assert (workdir / train.METRICS).read_bytes() == (uninterrupted / train.METRICS).read_bytes()
    if damage == "flipped byte":  # the one a plain parser would miss: the SHA-256 catches it
        assert "do not match their SHA-256 checksum" in err
        code, out, err = cli(*RUN, "--epochs", "1", "--workdir", str(workdir), "--overwrite")  # as suggested
        assert code == 0 and "epoch 1/1" in out, err


def test_a_workdir_that_cannot_be_written_fails_before_training(cli, tmp_path):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    code, out, err = cli(*RUN, "--workdir", str(tmp_path / "file.txt" / "sub"))
    assert (
        code == 2
        and f"workdir {tmp_path / 'file.txt' / 'sub'} cannot be created or written (Not a directory" in one_line(err)
        and "choose another --workdir" in err
    )
    assert "examples" not in out  # nothing loaded or trained
    if os.geteuid() == 0:
        return  # root writes into read-only folders: the chmod half of this test cannot fail here
    locked = tmp_path / "read-only"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = cli(*RUN, "--workdir", str(locked))
        assert code == 2 and f"workdir {locked} cannot be created or written (Permission denied" in one_line(err)
    finally:
        locked.chmod(0o755)


class _DiskFillsUp:
    """Stands in for ``os`` in jaxnets.train.checkpoint: after ``saves`` good checkpoint writes, a third of the next
    one reaches the temp file, then the write fails with ENOSPC."""

    def __init__(self, saves: int):
        self.saves = saves

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        self.saves -= 1
        if self.saves >= 0:
            return f

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                f.write(data[: len(data) // 3])
                f.flush()
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return Full()


def test_a_disk_that_fills_while_saving_keeps_the_previous_checkpoint(cli, tmp_path, uninterrupted, monkeypatch):
    monkeypatch.setattr(ckpt, "os", _DiskFillsUp(saves=2))
    code, _, err = cli(*RUN, "--workdir", str(tmp_path))
    monkeypatch.undo()
    line = one_line(err)
    assert code == 1 and line.startswith(
        f"train.py: error: could not write the checkpoint of epoch 3 to "
        f"{tmp_path / train.CHECKPOINT} (No space left on device): the last good "
        f"checkpoint, {tmp_path / train.CHECKPOINT} (epoch 2, step 32), is intact"
    )
    assert "then continue with --resume" in line
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        train.CHECKPOINT,
        "config.json",
        train.CURVES,
        train.METRICS,
        train.WEIGHTS,
    ]  # (the half-written temp: gone)
    assert int(saved_state(tmp_path).step) == 32 and [r[0] for r in losses(tmp_path)] == [1, 2]
    code, _, err = cli(*RUN, "--workdir", str(tmp_path), "--resume")  # space freed: it continues, ends the same
    assert code == 0, err
    assert leaves_equal(saved_state(tmp_path), saved_state(uninterrupted))
    assert losses(tmp_path) == losses(uninterrupted)


# --- a loss that becomes NaN or infinite ----------------------------------------------------------------------------


def test_a_diverging_run_stops_at_the_first_bad_step_and_exits_1(cli, tmp_path):
    code, out, err = cli(*RUN, "--optimizer", "sgd", "--lr", "1e6", "--workdir", str(tmp_path))
    assert code == 1 and one_line(err) == (
        "train.py: error: the loss became nan at step 3 (epoch 1, step 3 of 16): training stopped there; no checkpoint "
        "of this run was written; try a lower learning rate"
    )
    assert not (tmp_path / train.CHECKPOINT).exists() and "epoch 1/6" not in out


def test_a_divergence_keeps_the_last_good_checkpoint_and_state(tmp_path):
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    # The learning rate explodes after the first epoch (16 steps): epoch 1 is saved, epoch 2 diverges.
    wild = optax.sgd(optax.piecewise_constant_schedule(0.01, {16: 1e8}))

    def run(optimizer, epochs, workdir):
        return train.fit(
            model,
            SPIRALS.train_x,
            SPIRALS.train_y,
            SPIRALS.test_x,
            SPIRALS.test_y,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=32,
            workdir=workdir,
            progress=False,
            log=lambda s: None,
        )

    one_epoch = run(optax.sgd(0.01), 1, tmp_path / "one")  # (the same first 16 steps)
    with pytest.raises(
        train.TrainingDiverged,
        match=r"the loss became (nan|inf) at step (1[7-9]|2\d) \(epoch 2, "
        r"step \d+ of 16\).*the last good checkpoint, .* \(epoch 1, step "
        r"16\), is kept",
    ) as caught:
        run(wild, 5, tmp_path / "wild")
    assert caught.value.epoch == 2 and 17 <= caught.value.step <= 32
    assert train.safety.all_finite(caught.value.state.params)  # the state given back is the last good one
    assert int(caught.value.state.step) == caught.value.step - 1
    state = train.create_train_state(model, wild, jax.random.PRNGKey(0))
    saved, _ = train.load_checkpoint(tmp_path / "wild" / train.CHECKPOINT, state)
    assert leaves_equal(saved.params, one_epoch.state.params) and int(saved.step) == 16
    assert [r["epoch"] for r in train.read_metrics(tmp_path / "wild" / train.METRICS)] == [1]


def test_a_step_with_a_non_finite_loss_is_not_committed():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    opt = optax.sgd(0.1)
    step = train.make_train_step(model, opt)
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    before = jax.device_get(state)
    x = jnp.asarray(SPIRALS.train_x[:32]).at[0, 0].set(jnp.nan)
    state, metrics = step(state, x, jnp.asarray(SPIRALS.train_y[:32]))
    assert jnp.isnan(metrics["loss"]) and int(state.step) == 0 and leaves_equal(state, before)
    state, metrics = step(state, jnp.asarray(SPIRALS.train_x[:32]), jnp.asarray(SPIRALS.train_y[:32]))
    assert jnp.isfinite(metrics["loss"]) and int(state.step) == 1


# --- two runs on one workdir ----------------------------------------------------------------------------------------


def test_a_second_run_on_a_busy_workdir_refuses_and_writes_nothing(cli, tmp_path):
    with safety.lock_workdir(tmp_path):  # another run holds it (here: this process, through another open file)
        code, _, err = cli(*RUN, "--workdir", str(tmp_path))
        assert code == 1 and one_line(err) == (
            f"train.py: error: workdir {tmp_path} is in use by another run (pid "
            f"{os.getpid()}): wait for it to end, or choose another --workdir"
        )
        with pytest.raises(train.WorkdirBusy, match="in use by another run"):
            train.fit(
                dropout_mlp(),
                SPIRALS.train_x,
                SPIRALS.train_y,
                optimizer=optax.sgd(0.1),
                batch_size=32,
                workdir=tmp_path,
                log=print,
            )
        assert sorted(p.name for p in tmp_path.iterdir()) == [safety.LOCK]
    code, _, err = cli(*RUN, "--epochs", "1", "--workdir", str(tmp_path))  # released: the next run may go
    assert code == 0, err


# --- killed or interrupted mid-run: resume continues to the uninterrupted result ------------------------------------

# train.py in a subprocess that stops at a chosen point (the `at`-th train step, or inside the `at`-th checkpoint
# write, after half the temp file is written), writes `marker`, and waits for `go` to appear; the test kills it there.
WRAPPER = textwrap.dedent("""
    import os, runpy, sys, time
    from pathlib import Path
    import jax
    where, at, marker, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    sys.argv = ["train.py", *sys.argv[5:]]

    def wait():
        marker.write_text(str(os.getpid()))
        while not go.exists():
            time.sleep(0.02)
        time.sleep(0.3)

    if where == "step":
        from jaxnets.train import loop
        make = loop.indexed_train_step

        def counting(*args, **kwargs):
            step, calls = make(*args, **kwargs), [0]

            def counted(*a):
                out = step(*a)
                calls[0] += 1
                if calls[0] == at:
                    jax.block_until_ready(out)
                    wait()
                return out
            return counted
        loop.indexed_train_step = counting
    else:
        replace, saves = os.replace, [0]

        def slow_replace(src, dst, *a, **k):
            if str(dst).endswith("checkpoint.msgpack"):
                saves[0] += 1
                if saves[0] == at:
                    os.truncate(src, os.path.getsize(src) // 2)  # killed mid-write: half the temp file is there
                    wait()
            return replace(src, dst, *a, **k)
        os.replace = slow_replace
    runpy.run_path("train.py", run_name="__main__")
""")


def start(tmp_path: Path, where: str, at: int, workdir: Path) -> tuple[subprocess.Popen, Path]:
    marker, go = tmp_path / "stopped", tmp_path / "go"
    proc = subprocess.Popen(
        [python(), "-c", WRAPPER, where, str(at), str(marker), str(go), *RUN, "--workdir", str(workdir)],
        cwd=REPO,
        env=offline_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run did not reach its stopping point: {proc.communicate()[1][-3000:]}")
        time.sleep(0.05)
    return proc, go


@pytest.mark.slow
@pytest.mark.parametrize("where,at,saved_epochs", [("step", 40, 2), ("save", 3, 2)], ids=["mid-epoch", "mid-write"])
def test_sigkill_then_resume_ends_with_the_uninterrupted_params(cli, tmp_path, uninterrupted, where, at, saved_epochs):
    workdir = tmp_path / "run"
    proc, _ = start(tmp_path, where, at, workdir)  # at step 40 = epoch 3, step 8; or in epoch 3's checkpoint write
    code, _, err = cli(*RUN, "--workdir", str(workdir), "--resume")  # meanwhile, a second run is refused
    assert code == 1 and f"is in use by another run (pid {proc.pid})" in one_line(err)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    tmp_files = list(workdir.glob("*.tmp"))
    assert len(tmp_files) == (1 if where == "save" else 0)
    assert int(saved_state(workdir).step) == 16 * saved_epochs  # the last complete checkpoint
    assert [r[0] for r in losses(workdir)] == list(range(1, saved_epochs + 1))
    code, out, err = cli(*RUN, "--workdir", str(workdir), "--resume")  # no stale lock, the temp file ignored
    assert code == 0 and f"resumed from {workdir / train.CHECKPOINT} at epoch {saved_epochs}" in out, err
    assert not list(workdir.glob("*.tmp"))
    assert leaves_equal(saved_state(workdir), saved_state(uninterrupted))
    assert losses(workdir) == losses(uninterrupted)


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_says_how_to_resume_and_resume_matches(cli, tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    proc, go = start(tmp_path, "step", 40, workdir)  # epoch 3, 8 of its 16 steps done
    proc.send_signal(signal.SIGINT)
    go.touch()
    _, err = proc.communicate(timeout=60)
    command = f"python train.py {' '.join(RUN)} --workdir {workdir} --resume"
    assert proc.returncode == 130 and one_line(err) == (
        f"interrupted at epoch 3 step 40; checkpoint saved in {workdir}: resume with `{command}`"
    )
    assert int(saved_state(workdir).step) == 40 and [r[0] for r in losses(workdir)] == [1, 2]
    code, out, err = cli(*command.split()[2:])
    assert (
        code == 0 and f"resumed from {workdir / train.CHECKPOINT} in epoch 3 at step 40 (8 of its 16 steps done)" in out
    ), err
    assert leaves_equal(saved_state(workdir), saved_state(uninterrupted))
    assert losses(workdir) == losses(uninterrupted)  # epoch 3's means too: its first 8 steps' metrics were saved


def test_ctrl_c_in_the_library_stops_cleanly_without_a_workdir():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    calls = []

    def log(line):  # the first epoch's report line: "press" Ctrl-C (the handler fit installed runs)
        calls.append(line)
        if line.startswith("epoch 1/"):
            signal.raise_signal(signal.SIGINT)

    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(
        train.TrainingInterrupted,
        match=r"interrupted after epoch 1; no workdir, so nothing was "
        r"saved",
    ) as caught:
        train.fit(
            model,
            SPIRALS.train_x,
            SPIRALS.train_y,
            optimizer=optax.adam(0.01),
            epochs=3,
            batch_size=32,
            progress=False,
            log=log,
        )
    assert int(caught.value.state.step) == 16 and caught.value.saved is None
    assert signal.getsignal(signal.SIGINT) == handler  # fit put the previous handler back
    assert isinstance(caught.value, KeyboardInterrupt)


def test_debug_lets_the_exception_and_its_traceback_through(cli, tmp_path):
    with pytest.raises(ValueError, match=r"--lr must be a finite number > 0; got nan"):
        MAIN([*RUN, "--lr", "nan", "--workdir", str(tmp_path), "--debug"])
    with pytest.raises(train.CheckpointError, match="holds no checkpoint"):
        MAIN([*RUN, "--workdir", str(tmp_path), "--resume", "--debug"])
