"""Shared helpers of the data/train/CLI tests: small models, a closed local port, the shared MNIST folder."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import jax

from jaxnets import nn
from jaxnets.models import Model, mlp

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("JAXNETS_TEST_MNIST", REPO.parent / "shared" / "data" / "mnist"))


def closed_port() -> int:
    """A local TCP port with nothing listening (bound, then released), so a probe of it fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env(**extra: str) -> dict[str, str]:
    """Environment for a subprocess that must not reach any network: the download probe points at a closed port."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAXNETS_MANUAL_DIR", "TFDS_DATA_DIR")}
    env.update(JAXNETS_DOWNLOAD_PROBE=f"127.0.0.1:{closed_port()}", JAX_PLATFORMS="cpu", **extra)
    return env


def in_process_cli(capsys, monkeypatch):
    """``call(main, *args) -> (exit code, stdout, stderr)``: a command's ``main`` run in this process, offline (no
    manual dir, the download probe at a closed port); for the ``cli`` fixtures."""
    monkeypatch.delenv("JAXNETS_MANUAL_DIR", raising=False)
    monkeypatch.setenv("JAXNETS_DOWNLOAD_PROBE", f"127.0.0.1:{closed_port()}")

    def call(main, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:  # argparse's own usage errors
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


def one_line(err: str) -> str:
    """The single line a failure prints on stderr (asserting there is exactly one, and no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def python() -> str:
    return sys.executable


def dropout_mlp() -> Model:
    """A 2D classifier with dropout (needs per-step keys)."""
    return mlp(input_shape=(2,), num_classes=2, hidden=(16,), dropout=0.1)


def batchnorm_net() -> Model:
    """A 2D classifier with batch norm (its running statistics are model state)."""
    layer = nn.serial(nn.dense(16, name="h"), nn.batch_norm(name="bn"), nn.activation("relu"), nn.dense(2, name="out"))
    return Model("bn_net", layer, (2,))


def leaves_equal(a, b) -> bool:
    """Bitwise equality of two pytrees of arrays."""
    same = jax.tree.map(lambda u, v: bool((jax.device_get(u) == jax.device_get(v)).all()), a, b)
    return all(jax.tree.leaves(same))
