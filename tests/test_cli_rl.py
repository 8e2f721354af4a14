"""``jaxnets-rl``: one-line errors naming flags (a busy workdir, a corrupt checkpoint too), and a tiny run that writes
its record and resumes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxnets.cli.rl import main
from jaxnets.train import safety


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--agent", "a2c"], "unknown agent 'a2c'"),
        (["--env", "pong"], "unknown environment 'pong'"),
        (["--option", "no_such=1"], "no_such"),
        (["--option", "hidden=8"], "hidden must be a sequence of positive layer widths, e.g. [64, 64]; got 8"),
    ],
)
def test_bad_names_and_options_are_one_line_errors(argv, said, capsys, tmp_path):
    assert main([*argv, "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err


def test_a_busy_workdir_is_refused_in_one_line(capsys, tmp_path):
    with safety.lock_workdir(tmp_path):
        assert main(["--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"workdir {tmp_path} is in use by another run (pid {os.getpid()})" in err, err
    assert "--workdir" in err and len(err.splitlines()) == 1, err


def test_a_corrupt_checkpoint_is_named_in_one_line(capsys, tmp_path):
    (tmp_path / "checkpoint.msgpack").write_bytes(b"\x00 not a checkpoint")
    assert main(["--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"checkpoint {tmp_path / 'checkpoint.msgpack'} is corrupt" in err, err
    assert "--overwrite" in err and len(err.splitlines()) == 1, err
    assert (tmp_path / "checkpoint.msgpack").read_bytes() == b"\x00 not a checkpoint"  # left untouched


@pytest.mark.long
@pytest.mark.slow
def test_a_tiny_reinforce_run_writes_metrics_and_resumes(capsys, tmp_path):
    argv = [
        "--agent",
        "reinforce",
        "--total-steps",
        "4000",
        "--option",
        "num_envs=2",
        "--seeds",
        "0",
        "1",
        "--workdir",
        str(tmp_path),
    ]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(first["eval_return"]) == 2
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert lines and {json.loads(line)["seed"] for line in lines} == {0, 1}
    assert main(argv) == 0  # everything done: resumes at the end, trains nothing more, evaluates the same
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == first
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == lines


def test_a_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(capsys, tmp_path, monkeypatch):
    from jaxnets.rl import _run

    saves = []

    def save_or_fill(path, *args):
        if saves:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        saves.append(path)
        return save_runner(path, *args)

    save_runner = _run.save_runner
    monkeypatch.setattr(_run, "save_runner", save_or_fill)
    argv = ["--agent", "reinforce", "--total-steps", "4000", "--option", "num_envs=2", "--workdir", str(tmp_path)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "could not write the checkpoint of update 2 to" in err and "(No space left on device)" in err, err
    assert f"the last good checkpoint, {tmp_path / 'checkpoint.msgpack'} (update 1), is intact" in err, err
    assert err.endswith("then run the same command again to continue"), err
    assert [json.loads(line)["update"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1]


@pytest.mark.long
@pytest.mark.slow  # three processes, each importing JAX and compiling a tiny DQN
def test_sigterm_then_the_same_command_ends_as_the_uninterrupted_run(tmp_path):
    def command(workdir):
        return [
            sys.executable,
            "-m",
            "jaxnets.cli.rl",
            *("--agent", "dqn", "--total-steps", "20000", "--seeds", "0", "1", "--workdir", str(workdir)),
            *("--option", "num_envs=2", "--option", "buffer_size=16", "--option", "batch_size=4"),
            *("--option", "learning_starts=8", "--option", "hidden=[8]"),
        ]

    straight = subprocess.run(command(tmp_path / "straight"), capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    proc = subprocess.Popen(command(tmp_path / "stopped"), stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "stopped" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # while training: it ends the chunk, checkpoints it and exits 143
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err
    assert "interrupted after update" in err and "run the same command to continue" in err, err
    assert len(metrics.read_text().splitlines()) < len(
        (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    )
    resumed = subprocess.run(command(tmp_path / "stopped"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == straight.stdout
    assert metrics.read_text() == (tmp_path / "straight" / "metrics.jsonl").read_text()
    assert (tmp_path / "stopped" / "checkpoint.msgpack").read_bytes() == (
        tmp_path / "straight" / "checkpoint.msgpack"
    ).read_bytes()
