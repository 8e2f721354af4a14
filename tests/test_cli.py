"""The command line: help and listings, one-line errors for bad flags, fast offline failure, a tiny real run."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from helpers_train import REPO, offline_env, python


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python(), "train.py", *args],
        cwd=REPO,
        env=env or offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_explains_every_flag():
    out = cli("--help")
    assert out.returncode == 0
    for flag in (
        "--model",
        "--dataset",
        "--epochs",
        "--batch-size",
        "--optimizer",
        "--lr",
        "--momentum",
        "--weight-decay",
        "--seed",
        "--workdir",
        "--resume",
        "--manual-dir",
        "--data-dir",
        "--list-models",
        "--list-datasets",
    ):
        assert flag in out.stdout, flag


def test_list_models_and_datasets():
    models = cli("--list-models")
    assert models.returncode == 0 and "lenet5_modern" in models.stdout and "perceptron" in models.stdout
    datasets = cli("--list-datasets")
    assert datasets.returncode == 0
    for name in ("xor", "spirals", "mnist", "fashion_mnist", "cifar10"):
        assert name in datasets.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "vgg99"], "unknown model 'vgg99'"),
        (["--optimizer", "lbfgs", "--dataset", "xor"], "unknown optimizer 'lbfgs'"),
        (["--dataset", "no_such_dataset_xyz"], "unknown dataset 'no_such_dataset_xyz'"),
        (["--model", "lenet5", "--dataset", "xor"], "model lenet5 cannot take dataset xor"),
        (["--dataset", "xor", "--epochs", "0"], "epochs and batch size must be >= 1"),
        (["--epochs", "ten"], "invalid int value"),
    ],
)
def test_bad_flags_give_one_line_and_a_nonzero_exit(tmp_path, args, message):
    out = cli(*args, "--workdir", str(tmp_path), "--data-dir", str(tmp_path / "tfds"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert message in out.stderr.strip().splitlines()[-1]
    if "invalid int" not in message:  # argparse's own errors come after its usage lines
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_offline_without_data_fails_fast_in_one_line(tmp_path):
    # Fast: no network wait (a download attempt retries for minutes). Alone it takes ~5 s, most of it importing JAX;
    # the bound leaves room for a loaded machine (it took over 10 s at load 7 on 2 cores).
    start = time.perf_counter()
    out = cli("--data-dir", str(tmp_path / "empty"), "--workdir", str(tmp_path / "run"), timeout=60)
    seconds = time.perf_counter() - start
    assert out.returncode != 0 and seconds < 25, (seconds, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "mnist is not prepared in" in lines[0] and "--manual-dir DIR holding" in lines[0]
    assert "train-images-idx3-ubyte.gz" in lines[0]
    assert "JAXNETS_MANUAL_DIR" in lines[0]


def test_tiny_run_writes_metrics_and_curves_and_resumes(tmp_path):
    args = ("--model", "mlp", "--dataset", "spirals", "--epochs", "3", "--workdir", str(tmp_path), "--no-progress")
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    assert "512 examples, batch 32 -> 16 iterations per epoch" in out.stdout and "epoch 3/3" in out.stdout
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and (tmp_path / "curves.png").exists()
    again = cli(*args)  # same workdir without --resume: refuses, keeps the checkpoint
    assert again.returncode != 0 and "--resume" in again.stderr and "Traceback" not in again.stderr
    more = cli(*args[:4], "--epochs", "4", *args[6:], "--resume")
    assert more.returncode == 0 and "resumed" in more.stdout and "epoch 4/4" in more.stdout, more.stderr
    other = cli("--model", "logistic", *args[2:], "--resume")
    assert other.returncode != 0 and "another config" in other.stderr and len(other.stderr.strip().splitlines()) == 1
