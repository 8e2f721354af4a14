"""Wall time from process start to the first epoch at >= 99% MNIST test accuracy: ``train.py``'s default command
against a PyTorch reference script on the same IDX files (bench/torch_reference.py, same architecture), each run as
a fresh process, interleaved, medians and their ratio printed.

    python bench/time_to_99.py [--runs 3] [--torch-recipe onecycle --torch-epochs 4] [--train-args "--epochs 4"]

The clock starts when the process is launched (Python start-up and imports included) and stops when the epoch's
record appears: jaxnets' ``metrics.jsonl`` line in its workdir, PyTorch's JSON line on stdout; the process is then
killed. Take it on a quiet machine: every other process shares the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(REPO.parent / "shared/data/mnist"))


def _watch(cmd: list[str], records, target: float, timeout: float) -> dict[str, object]:
    """Launch ``cmd``, poll ``records()`` (the epoch records so far) until one reaches ``target``; kill the child."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen: list[dict] = []
    try:
        while time.perf_counter() - t0 < timeout:
            seen = records(child)
            hit = next((r for r in seen if r.get("test_accuracy", 0) >= target), None)
            if hit is not None:
                return {"seconds": round(time.perf_counter() - t0, 2), "epoch": hit["epoch"], "curve": _curve(seen)}
            if child.poll() is not None and records(child) == seen:  # exited, and nothing more to read
                break
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    return {"seconds": None, "epoch": None, "curve": _curve(seen)}


def _curve(records: list[dict]) -> list[float]:
    return [round(r["test_accuracy"], 4) for r in records if "test_accuracy" in r]


def run_jaxnets(train_args: list[str], manual_dir: str, target: float, timeout: float) -> dict[str, object]:
    """``python train.py --manual-dir DIR --workdir TMP --no-progress [train_args]``, watched via metrics.jsonl."""
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "run" / "metrics.jsonl"
        cmd = [
            sys.executable,
            "train.py",
            "--manual-dir",
            manual_dir,
            "--workdir",
            str(metrics.parent),
            "--no-progress",
        ]

        def records(_child) -> list[dict]:
            try:
                lines = metrics.read_text().splitlines()
            except FileNotFoundError:
                return []
            return [json.loads(line) for line in lines if line.endswith("}")]

        return _watch(cmd + train_args, records, target, timeout)


def run_torch(recipe: str, epochs: int, manual_dir: str, target: float, timeout: float) -> dict[str, object]:
    """bench/torch_reference.py with ``recipe`` over ``epochs`` epochs, watched via its stdout."""
    cmd = [sys.executable, "bench/torch_reference.py", "--manual-dir", manual_dir, "--recipe", recipe]
    got: list[dict] = []

    def records(child) -> list[dict]:
        if child.poll() is None and not _readable(child.stdout):
            return got
        line = child.stdout.readline()
        if line.startswith("{"):
            got.append(json.loads(line))
        return got

    return _watch([*cmd, "--epochs", str(epochs)], records, target, timeout)


def _readable(stream) -> bool:
    import select

    return bool(select.select([stream], [], [], 0)[0])


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each, interleaved")
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--manual-dir", default=MNIST_DIR)
    ap.add_argument("--train-args", default="", help="extra train.py flags (default: none, the default command)")
    ap.add_argument("--torch-recipe", default="onecycle", help="bench/torch_reference.py --recipe")
    ap.add_argument("--torch-epochs", type=int, default=4, help="the PyTorch schedule's length in epochs")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a run counts as not reaching it")
    args = ap.parse_args(argv)
    if not Path(args.manual_dir, "train-images-idx3-ubyte.gz").exists():
        print(f"skipped: no MNIST files in {args.manual_dir}")
        return {}
    runs: dict[str, list[dict]] = {"jaxnets": [], "torch": []}
    load = [os.getloadavg()[0]]
    for i in range(args.runs):
        order = ("jaxnets", "torch") if i % 2 == 0 else ("torch", "jaxnets")
        for who in order:
            if who == "jaxnets":
                r = run_jaxnets(shlex.split(args.train_args), args.manual_dir, args.target, args.timeout)
            else:
                r = run_torch(args.torch_recipe, args.torch_epochs, args.manual_dir, args.target, args.timeout)
            runs[who].append(r)
            print(f"run {i + 1} {who}: {r}", flush=True)
    load.append(os.getloadavg()[0])
    result: dict[str, object] = {"target": args.target, "runs": runs, "load_before_after": load}
    med = {}
    for who, rs in runs.items():
        times = [r["seconds"] for r in rs if r["seconds"] is not None]
        med[who] = statistics.median(times) if len(times) == len(rs) else None
    result["median_seconds"] = med
    if med["jaxnets"] and med["torch"]:
        result["jaxnets_over_torch"] = round(med["jaxnets"] / med["torch"], 3)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}))
    return result


if __name__ == "__main__":
    main()
