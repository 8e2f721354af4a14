"""Issue 22: no epoch's record lost on resume, every stop signal handled, every label checked. Each case failed before
its fix: the record of an epoch whose metrics line was not written (a kill or a full disk right after its checkpoint);
a second Ctrl-C while the first one's checkpoint or curves were being written; SIGTERM (no save, exit -15); resuming a
decaying schedule over another number of epochs; a damaged metrics.jsonl silently replaced; class labels out of range.
The soak test kills a run at several seeded random moments and resumes it each time."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import optax
import pytest
from helpers_train import REPO, dropout_mlp, leaves_equal, offline_env, python
from test_reliability import RUN, cli, losses, one_line, saved_state, start  # noqa: F401 (cli: a fixture)

import jaxnets
from jaxnets import data, train
from jaxnets.train import loop, rundir

SPIRALS = data.load("spirals")
TIMING = ("seconds", "images_per_second", "elapsed")


def _fit(epochs=4, **kw):
    kw.setdefault("optimizer", optax.adam(1e-2))
    return train.fit(
        dropout_mlp(),
        SPIRALS.train_x,
        SPIRALS.train_y,
        SPIRALS.test_x,
        SPIRALS.test_y,
        epochs=epochs,
        batch_size=32,
        progress=False,
        **{"log": lambda line: None, **kw},
    )


def _records(workdir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in train.read_metrics(workdir / train.METRICS)]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """4 epochs of 16 steps without a fault: the result and its workdir."""
    workdir = tmp_path_factory.mktemp("straight")
    return _fit(workdir=workdir), workdir


# --- 1. an epoch's record travels inside its checkpoint -------------------------------------------------------------


@pytest.mark.parametrize("epoch", [2, 4], ids=["mid-run", "last epoch"])
def test_an_epoch_whose_metrics_line_was_not_written_gets_it_on_resume(tmp_path, monkeypatch, straight, epoch):
    """The disk fills while metrics.jsonl is written, right after epoch ``epoch``'s checkpoint: resume writes the
    missing line (at the last epoch: trains nothing, still writes it)."""
    real, calls = train.metrics.append_metrics, []

    def full(path, record):
        calls.append(record["epoch"])
        if record["epoch"] == epoch:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, record)

    monkeypatch.setattr(train.metrics, "append_metrics", full)
    with pytest.raises(
        train.CheckpointWriteError,
        match=r"could not write .*metrics.jsonl \(No space left on "
        r"device\).*then continue with --resume",
    ):
        _fit(workdir=tmp_path)
    monkeypatch.undo()
    assert [r["epoch"] for r in _records(tmp_path)] == list(range(1, epoch))
    lines = []
    resumed = _fit(workdir=tmp_path, resume=True, log=lines.append)
    assert any(f"the record of epoch {epoch} was lost when the run stopped; rewritten" in line for line in lines)
    assert _records(tmp_path) == _records(straight[1])
    assert leaves_equal(resumed.state, straight[0].state)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]


# --- 2. a second Ctrl-C (or SIGTERM) while the first one's save is under way -------------------------------------


def _signal_at_step(monkeypatch, at: int, signum: int = signal.SIGINT) -> None:
    """The compiled step of the next fit sends ``signum`` to this process right after its ``at``-th call."""
    make, calls = loop.indexed_train_step, [0]

    def counting(*args):
        step = make(*args)

        def counted(*a):
            out = step(*a)
            calls[0] += 1
            if calls[0] == at:
                signal.raise_signal(signum)
            return out

        return counted

    monkeypatch.setattr(loop, "indexed_train_step", counting)


@pytest.mark.parametrize(
    "during,at,said",
    [
        ("checkpoint", 20, "interrupted at epoch 2 step 20"),  # mid-epoch: the step's checkpoint is written on Ctrl-C
        ("curves", 32, "interrupted after epoch 2"),  # at an epoch's end: its checkpoint, line and curves first
    ],
)
def test_a_second_ctrl_c_does_not_break_the_save(tmp_path, monkeypatch, straight, during, at, said):
    _signal_at_step(monkeypatch, at)
    target = (train.checkpoint, "save_checkpoint") if during == "checkpoint" else (jaxnets.viz, "plot_curves")
    real, calls = getattr(*target), []

    def interrupted_again(*args, **kwargs):  # (the first call is epoch 1's; the second, the one after Ctrl-C)
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(*target, interrupted_again)
    with pytest.raises(train.TrainingInterrupted, match=said) as caught:
        _fit(workdir=tmp_path)
    monkeypatch.undo()
    assert caught.value.saved == tmp_path / train.CHECKPOINT and caught.value.exit_code == 130
    assert int(saved_state_of(tmp_path).step) == at
    resumed = _fit(workdir=tmp_path, resume=True)
    assert leaves_equal(resumed.state, straight[0].state) and _records(tmp_path) == _records(straight[1])


def saved_state_of(workdir: Path) -> train.TrainState:
    template = train.create_train_state(dropout_mlp(), optax.adam(1e-2), np.zeros(2, np.uint32))
    return train.load_checkpoint(workdir / train.CHECKPOINT, template)[0]


def test_sigterm_saves_the_step_like_ctrl_c_and_resume_matches(tmp_path, monkeypatch, straight):
    _signal_at_step(monkeypatch, 20, signal.SIGTERM)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(
        train.TrainingInterrupted,
        match=r"stopped by SIGTERM at epoch 2 step 20; checkpoint saved "
        r"in",
    ) as caught:
        _fit(workdir=tmp_path)
    monkeypatch.undo()
    assert caught.value.exit_code == 143 and caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == handler  # put back
    assert int(saved_state_of(tmp_path).step) == 20
    resumed = _fit(workdir=tmp_path, resume=True)
    assert leaves_equal(resumed.state, straight[0].state) and _records(tmp_path) == _records(straight[1])


@pytest.mark.slow
def test_sigterm_to_the_cli_saves_says_how_to_resume_and_exits_143(cli, tmp_path):  # noqa: F811
    workdir = tmp_path / "run"
    proc, go = start(tmp_path, "step", 40, workdir)  # epoch 3, 8 of its 16 steps done
    proc.send_signal(signal.SIGTERM)
    go.touch()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and one_line(err).startswith(
        f"stopped by SIGTERM at epoch 3 step 40; checkpoint saved in {workdir}: resume with `"
    )
    assert int(saved_state(workdir).step) == 40


# --- 3. --resume with another number of epochs under a decaying schedule ---------------------------------------------


def test_resuming_a_cosine_schedule_over_other_epochs_is_refused(tmp_path, cli):  # noqa: F811
    config = {"schedule": "cosine"}
    _fit(epochs=1, workdir=tmp_path / "lib", config=config)
    with pytest.raises(
        train.CheckpointError,
        match=r"a run of 1 epochs whose cosine schedule spans them all: it "
        r"resumes only with epochs=1",
    ):
        _fit(epochs=3, workdir=tmp_path / "lib", resume=True, config=config)
    _fit(epochs=3, workdir=tmp_path / "constant", config={"schedule": "constant"})  # a constant one may go on
    _fit(epochs=4, workdir=tmp_path / "constant", resume=True, config={"schedule": "constant"})
    code, _, err = cli(*RUN, "--epochs", "1", "--schedule", "cosine", "--workdir", str(tmp_path / "cli"))
    assert code == 0, err
    code, _, err = cli(*RUN, "--epochs", "2", "--schedule", "cosine", "--workdir", str(tmp_path / "cli"), "--resume")
    assert code == 2 and "cosine schedule spans them all" in one_line(err)


# --- 4. a damaged metrics.jsonl is kept aside, with a warning ------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "edited", "deleted"])
def test_a_damaged_metrics_file_is_kept_aside_and_rebuilt_from_the_checkpoint(tmp_path, straight, damage):
    _fit(epochs=3, workdir=tmp_path)
    path = tmp_path / train.METRICS
    original = path.read_text()
    bad = {
        "truncated": original[: len(original) // 3],
        "edited": original.replace('"epoch": 2', '"epoch": 7'),
        "deleted": None,
    }[damage]
    if bad is None:
        path.unlink()
    else:
        path.write_text(bad)
    lines = []
    _fit(epochs=4, workdir=tmp_path, resume=True, log=lines.append)
    warning = next(line for line in lines if line.startswith("warning: "))
    if bad is None:
        assert "metrics.jsonl was missing; rewritten from the checkpoint's record of 3 epoch(s)" in warning
    else:
        assert f"kept it as {path}.damaged and rewrote it from the checkpoint" in warning
        assert Path(f"{path}.damaged").read_text() == bad
    assert _records(tmp_path) == _records(straight[1])


# --- 5. class labels out of range ------------------------------------------------------------------------------------


@pytest.mark.parametrize("split,index,label", [("train_y", 5, -1), ("train_y", 300, 2), ("test_y", 0, 7)])
def test_labels_out_of_range_are_refused_before_compiling(monkeypatch, split, index, label):
    monkeypatch.setattr(loop, "indexed_train_step", lambda *a: pytest.fail("compiled a step"))
    labels = {"train_y": SPIRALS.train_y.copy(), "test_y": SPIRALS.test_y.copy()}
    labels[split][index] = label
    with pytest.raises(
        ValueError,
        match=rf"^{split}\[{index}\] is {label}, not a class of mlp \(0 to 1, 2 "
        r"classes\); 1 label\(s\) out of range$",
    ):
        train.fit(
            dropout_mlp(),
            SPIRALS.train_x,
            labels["train_y"],
            SPIRALS.test_x,
            labels["test_y"],
            optimizer=optax.sgd(0.1),
            batch_size=32,
            log=print,
        )
    one_unit = jaxnets.models.mlp(input_shape=(2,), num_classes=2, hidden=(4,), head="sigmoid")  # 1 unit, 2 classes
    with pytest.raises(ValueError, match=r"not a class of mlp \(0 to 1, 2 classes\)"):
        train.fit(
            one_unit,
            SPIRALS.train_x,
            labels["train_y"],
            SPIRALS.test_x,
            labels["test_y"],
            optimizer=optax.sgd(0.1),
            batch_size=32,
            log=print,
        )


def test_the_cli_refuses_labels_out_of_range_in_one_line(cli, tmp_path, monkeypatch):  # noqa: F811
    y = SPIRALS.train_y.copy()
    y[3] = -1
    bad = data.Dataset("badlabels", SPIRALS.train_x, y, SPIRALS.test_x, SPIRALS.test_y, 2)
    monkeypatch.setattr(data, "load_raw", lambda name, **_: bad)
    code, _, err = cli("--model", "mlp", "--dataset", "badlabels", "--epochs", "1", "--workdir", str(tmp_path))
    assert code == 2 and "train_y[3] is -1, not a class of mlp (0 to 1, 2 classes)" in one_line(err)
    assert not (tmp_path / train.CHECKPOINT).exists()


# --- the soak test: killed at several random moments, resumed each time ----------------------------------------------

# The CLI in a subprocess that SIGKILLs itself at a chosen moment: after its `at`-th step, inside its `at`-th
# checkpoint write (half the temp file written), or right after its `at`-th epoch checkpoint (before the epoch's
# metrics line).
SOAK = textwrap.dedent("""
    import os, signal, sys
    import jax
    where, at = sys.argv[1], int(sys.argv[2])
    sys.argv = ["train.py", *sys.argv[3:]]
    calls = [0]

    def tick():
        calls[0] += 1
        if calls[0] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    from jaxnets.train import checkpoint, loop, metrics
    if where == "step":
        make = loop.indexed_train_step

        def counting(*args):
            step = make(*args)

            def counted(*a):
                out = jax.block_until_ready(step(*a))
                tick()
                return out
            return counted
        loop.indexed_train_step = counting
    elif where == "save":
        replace = os.replace

        def killed_replace(src, dst, *a, **k):
            if str(dst).endswith("checkpoint.msgpack"):
                os.truncate(src, os.path.getsize(src) // 2)
                tick()
            return replace(src, dst, *a, **k)
        os.replace = killed_replace
    else:
        append = metrics.append_metrics

        def killed_append(path, record):
            tick()
            append(path, record)
        metrics.append_metrics = killed_append
    from jaxnets.cli.train import main
    sys.exit(main())
""")


@pytest.mark.slow
def test_soak_killed_at_random_moments_then_resumed_ends_as_the_uninterrupted_run(tmp_path, cli):  # noqa: F811
    code, _, err = cli(*RUN, "--workdir", str(tmp_path / "straight"))
    assert code == 0, err
    rng = np.random.default_rng(22)
    kills = [
        ("step", int(rng.integers(1, 30))),
        ("metrics", 1),
        ("save", 1),
        ("step", int(rng.integers(1, 30))),
        ("metrics", 2),
    ]
    workdir, resume, killed = tmp_path / "soak", [], 0
    for where, at in kills:
        proc = subprocess.run(
            [python(), "-c", SOAK, where, str(at), *RUN, "--workdir", str(workdir), *resume],
            cwd=REPO,
            env=offline_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode in (-9, 0), proc.stderr[-2000:]
        killed += proc.returncode == -9
        resume = ["--resume"]
        if proc.returncode == 0:
            break
    assert killed == len(kills)  # (each kill lands before the run's end)
    code, _, err = cli(*RUN, "--workdir", str(workdir), "--resume")
    assert code == 0, err
    assert leaves_equal(saved_state(workdir), saved_state(tmp_path / "straight"))
    assert _records(workdir) == _records(tmp_path / "straight") and losses(workdir) == losses(tmp_path / "straight")
    assert not list(workdir.glob("*.tmp")) and not list(workdir.glob("*.damaged*"))


def test_rundir_names_a_free_place_for_a_damaged_file(tmp_path):
    (tmp_path / "m.damaged").write_text("x")
    assert rundir._free_name(tmp_path / "m.damaged") == tmp_path / "m.damaged.1"
