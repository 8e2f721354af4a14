"""Start-up of ``train.py``: the wall time from launching the default MNIST command to the end of its first training
step (waited on), the median of several runs, each in a fresh workdir; run 0 also prepares MNIST from the manual dir
(cold) and is reported apart.

    python bench/startup.py [--runs 6] [--manual-dir ../shared/data/mnist]

The child is ``train.py``'s main with ``loop.indexed_train_step`` wrapped to print when its first call's outputs are
ready; the command is ``python train.py --manual-dir DIR --epochs 1 --workdir W``. Take it on a quiet machine."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(REPO.parent / "shared/data/mnist"))
CHILD = r"""
import sys, time
import jax
from jaxnets.train import loop
compile_step = loop.indexed_train_step
def timed(*a, **k):
    step, first = compile_step(*a, **k), []
    def call(*args):
        out = step(*args)
        if not first:
            jax.block_until_ready(out)
            first.append(time.time())
            print(f"FIRST_STEP {first[0]}", file=sys.stderr, flush=True)
        return out
    return call
loop.indexed_train_step = timed
from jaxnets.cli.train import main
raise SystemExit(main(sys.argv[1:]))
"""


def first_step_seconds(args: list[str], env: dict[str, str]) -> float:
    """Seconds from launching the child to the end of its first training step (the child is then stopped)."""
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("FIRST_STEP"):
            proc.kill()
            proc.wait()
            return float(line.split()[1]) - t0
    raise SystemExit(f"train.py ended (exit {proc.wait()}) before its first training step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--manual-dir", default=MNIST_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TFDS_DATA_DIR": str(Path(tmp) / "tfds")}  # a new data dir: run 0 prepares MNIST
        times = []
        for i in range(args.runs + 1):
            workdir = Path(tmp) / "run"
            shutil.rmtree(workdir, ignore_errors=True)
            load = os.getloadavg()[0]
            cmd = ["--manual-dir", args.manual_dir, "--epochs", "1", "--workdir", str(workdir), "--no-progress"]
            times.append(first_step_seconds(cmd, env))
            print(f"run {i}{' (prepares MNIST)' if i == 0 else ''}: {times[-1]:.2f} s, load {load:.1f}", flush=True)
    warm = times[1:]
    print(
        f"start-up to the first step: median {statistics.median(warm):.2f} s over {len(warm)} runs "
        f"({min(warm):.2f}-{max(warm):.2f}); with MNIST prepared first {times[0]:.2f} s"
    )


if __name__ == "__main__":
    main()
