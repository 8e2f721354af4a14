"""``jaxnets-rl``: one-line errors naming flags, and a tiny run that writes its record and resumes."""

from __future__ import annotations

import json

import pytest

from jaxnets.cli.rl import main


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--agent", "a2c"], "unknown agent 'a2c'"),
        (["--env", "pong"], "unknown environment 'pong'"),
        (["--option", "no_such=1"], "no_such"),
    ],
)
def test_bad_names_and_options_are_one_line_errors(argv, said, capsys, tmp_path):
    assert main([*argv, "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and len(err.splitlines()) == 1, err


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
