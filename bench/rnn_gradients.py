#!/usr/bin/env python3
"""Vanishing gradients through time: how much of the gradient of the loss at the end of a sequence reaches its early
steps, for the plain tanh RNN, the LSTM and the GRU (``jaxnets.models.gradient_norms_over_time``).

    python bench/rnn_gradients.py                       # random initialisation, T = 50 steps of 8 N(0, 1) features
    python bench/rnn_gradients.py --manual-dir ../shared/data/mnist --trained runs/rnn-mnist runs/lstm-mnist

    python bench/rnn_gradients.py --memory 10 20 50      # can each cell learn to remember the first of T steps?

The first prints, per cell, the mean over examples of ||d loss / d x_t|| at a few steps t and the ratio of step 1 to
step T, as the geometric mean over seeds (each seed: new weights, inputs and labels). The second measures the
classifiers trained by ``train.py --model rnn|lstm|gru`` on 1,000 MNIST test digits (rows 1..28). The third trains
each cell on a task that needs the gradient to reach step 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

import jaxnets
from jaxnets.models import gradient_norms_over_time, sequence_classifier

CELLS = {
    "rnn (tanh)": dict(cell="rnn"),
    "gru": dict(cell="gru"),
    "lstm (forget bias 0)": dict(cell=jaxnets.nn.lstm_cell(forget_bias=0.0)),
    "lstm (forget bias 1, the default)": dict(cell="lstm"),
    "lstm (forget bias 3)": dict(cell=jaxnets.nn.lstm_cell(forget_bias=3.0)),
}


def _row(name: str, g: np.ndarray, steps: list[int]) -> str:
    cells = " | ".join(f"{g[t - 1]:.2e}" for t in steps)
    return f"| {name} | {cells} | {g[0] / g[-1]:.1e} |"


def at_init(steps: int, features: int, hidden: int, batch: int, seeds: int) -> list[str]:
    show = sorted({1, 10, steps // 2, steps})
    lines = [
        f"Random initialisation, T = {steps}, {features} N(0, 1) inputs per step, {hidden} units, batch {batch}, "
        f"10 random labels; geometric mean over {seeds} seeds:",
        "",
        "| cell | " + " | ".join(f"t = {t}" for t in show) + f" | t = 1 / t = {steps} |",
        "| --- |" + " ---: |" * (len(show) + 1),
    ]
    for name, kw in CELLS.items():
        logs = []
        for seed in range(seeds):
            model = sequence_classifier((steps, features), 10, hidden=hidden, **kw)
            params, state = model.init(jax.random.key(seed))
            x = jax.random.normal(jax.random.key(1000 + seed), (batch, steps, features))
            y = jax.random.randint(jax.random.key(2000 + seed), (batch,), 0, 10)
            logs.append(np.log(gradient_norms_over_time(model, params, state, x, y)))
        lines.append(_row(name, np.exp(np.mean(logs, axis=0)), show))
    return lines


def trained(workdirs: list[str], manual_dir: str | None, n: int = 1000) -> list[str]:
    from jaxnets import data
    from jaxnets.train import CHECKPOINT, read_config

    ds = data.load("mnist", manual_dir=manual_dir)
    x, y = ds.test_x[:n], ds.test_y[:n]
    show = [1, 7, 14, 21, 28]
    lines = [
        f"Trained on MNIST (train.py defaults), {n} test digits, gradient of each digit's loss w.r.t. row t:",
        "",
        "| run | " + " | ".join(f"row {t}" for t in show) + " | row 1 / row 28 |",
        "| --- |" + " ---: |" * (len(show) + 1),
    ]
    for workdir in workdirs:
        run = jaxnets.load(workdir)
        config = read_config(Path(workdir) / CHECKPOINT)
        g = gradient_norms_over_time(run.model, run.params, run.state, x, y)
        lines.append(_row(f"{config['model']} ({config['epochs']} epochs)", g, show))
    return lines


def memory(lengths: list[int], epochs: int = 10, hidden: int = 32) -> list[str]:
    """What vanishing gradients mean for learning: the class is the sign of the first of T steps (the others are
    N(0, 1) noise); 2,000 training and 1,000 test sequences, Adam 3e-3, batch 32."""
    import optax

    from jaxnets import train

    names = ("rnn", "lstm", "gru")
    lines = [
        f"Remembering the first step: test accuracy after {epochs} epochs ({epochs * 62} steps), {hidden} units, "
        "chance 50%:",
        "",
        "| steps T | " + " | ".join(names) + " |",
        "| ---: |" + " ---: |" * len(names),
    ]
    for steps in lengths:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3000, steps, 2)).astype(np.float32)
        y = (x[:, 0, 0] > 0).astype(np.int32)
        accs = []
        for cell in names:
            model = sequence_classifier((steps, 2), 2, cell=cell, hidden=hidden)
            result = train.fit(
                model,
                x[:2000],
                y[:2000],
                x[2000:],
                y[2000:],
                optimizer=optax.adam(3e-3),
                epochs=epochs,
                batch_size=32,
                progress=False,
                log=lambda s: None,
            )
            accs.append(f"{100 * result.history[-1]['test_accuracy']:.1f}%")
        lines.append(f"| {steps} | " + " | ".join(accs) + " |")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--trained", nargs="*", help="workdirs of train.py runs of rnn/lstm/gru on MNIST")
    p.add_argument("--manual-dir", help="MNIST's original files (for --trained)")
    p.add_argument("--memory", type=int, nargs="*", help="train on the remember-the-first-step task of these lengths")
    args = p.parse_args()
    if args.memory:
        lines = memory(args.memory)
    elif args.trained:
        lines = trained(args.trained, args.manual_dir)
    else:
        lines = at_init(args.steps, args.features, args.hidden, args.batch, args.seeds)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
