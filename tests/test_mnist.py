"""Real MNIST, offline from ../shared/data/mnist (skipped if absent): TFDS preparation from the manual dir, the
paper's normalisation and padding, and two epochs of modern LeNet-5 through train.py reaching >= 97%."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_train import MNIST_DIR, offline_env
from test_cli import cli

from jaxnets import data

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.skipif(
        not MNIST_DIR.is_dir(),
        reason=f"the MNIST files are not in {MNIST_DIR} (../shared/data/mnist);"
        " set JAXNETS_TEST_MNIST to a folder holding them",
    ),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A TFDS data dir with MNIST prepared offline from the manual dir (once for this module)."""
    return tmp_path_factory.mktemp("tfds")


def test_mnist_prepares_offline_from_the_manual_dir(data_dir, monkeypatch):
    monkeypatch.setenv("JAXNETS_DOWNLOAD_PROBE", offline_env()["JAXNETS_DOWNLOAD_PROBE"])
    ds = data.load("mnist", (32, 32, 1), "lenet1998", data_dir=str(data_dir), manual_dir=str(MNIST_DIR))
    assert ds.train_x.shape == (60000, 32, 32, 1) and ds.test_x.shape == (10000, 32, 32, 1)
    assert ds.num_classes == 10 and np.bincount(ds.test_y).tolist()[:2] == [980, 1135]
    assert float(ds.train_x.min()) == pytest.approx(-0.1) and float(ds.train_x.max()) == pytest.approx(1.175)
    assert (ds.train_x[:, :2] == ds.train_x.min()).all()  # the zero-padded border is background
    assert abs(float(ds.train_x.mean())) < 0.05  # the paper's scheme: mean roughly 0


def test_two_epochs_of_modern_lenet5_on_real_mnist(data_dir, tmp_path):
    out = cli(
        "--model",
        "lenet5_modern",
        "--dataset",
        "mnist",
        "--epochs",
        "2",
        "--workdir",
        str(tmp_path),
        "--data-dir",
        str(data_dir),
        "--no-progress",
        env=offline_env(JAXNETS_MANUAL_DIR=str(MNIST_DIR)),
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "60000 examples, batch 128 -> 468 iterations per epoch, last partial batch of 96 dropped" in out.stdout
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["epoch"] == 2 and record["step"] == 2 * 468
    assert record["test_accuracy"] >= 0.97, record
