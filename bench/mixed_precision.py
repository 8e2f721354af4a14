"""The training step in float32 against bfloat16 compute (``train.mixed_precision``), interleaved, on this machine.

    python bench/mixed_precision.py [--models lenet5_modern mlp] [--steps 20] [--rounds 3]

Each model's real step (``train.make_train_step``, batch 128, SGD with momentum, random MNIST-shaped inputs) is
timed as ``common.measure`` does (median of 7 repeats of ``--steps`` steps, disturbed repeats retried), the dtypes
in a rotated order each round; the figure is the median over rounds. bfloat16 is a GPU/TPU feature: XLA:CPU has no
bfloat16 matrix units on most CPUs and converts, so expect it slower here. Prints one line per model and dtype and
the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

from jaxnets import train

DTYPES = ("float32", "bfloat16")


def runner(name: str, dtype: str):
    """One training step of model ``name`` computing in ``dtype`` on a fixed batch."""
    model = train.mixed_precision(common.build_jaxnets(name), dtype)
    step = train.make_train_step(model, common.sgd())
    x = jax.random.normal(jax.random.key(1), (common.BATCH, *model.input_shape))
    y = jax.random.randint(jax.random.key(2), (common.BATCH,), 0, 10)
    state = [train.create_train_state(model, common.sgd(), jax.random.key(0))]

    def run():
        state[0], metrics = step(state[0], x, y)
        return metrics

    return run


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["lenet5_modern", "mlp"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for name in args.models:
        runs = {dtype: runner(name, dtype) for dtype in DTYPES}
        times: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}
        for r in range(args.rounds):
            for dtype in DTYPES[r % 2 :] + DTYPES[: r % 2]:
                times[dtype].append(common.measure(runs[dtype], iters=args.steps)["seconds"])
        results[name] = {dtype: statistics.median(t) for dtype, t in times.items()}
        for dtype, seconds in results[name].items():
            print(f"{name:14s} {dtype:9s} {1e3 * seconds:7.2f} ms/step  {common.BATCH / seconds:8.0f} img/s")
        print(f"{name:14s} bfloat16 / float32 time: {results[name]['bfloat16'] / results[name]['float32']:.2f}x")
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} cores, {jax.devices()}")
    return results


if __name__ == "__main__":
    main()
