"""Lesion study of a residual network and its plain twin (Veit, Wilber & Belongie 2016) on MNIST:

    python bench/resnet_lesion.py [--depth 20] [--epochs 1] [--train-size 60000] [--test-size 10000]

Trains ``cifar_resnet(depth)`` (option A shortcuts) and the plain network of the same layers without shortcuts
(``shortcut=None``) with Adam, then prints the test error of each with no block deleted and with each single block
that keeps the shape deleted (``deleted=[block]``: the block made the identity, the trained parameters unchanged).
Veit et al.'s finding: deleting a residual block barely changes the error, deleting a layer of a plain net destroys
it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optax

from jaxnets import data, models, train

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
NETWORKS = {"residual": "A", "plain": None}


def lesion_errors(build: Callable[..., models.Model], params, state, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Test error (%) of the network ``build(deleted=...)`` with its trained ``params`` and ``state``, intact
    (``'none'``) and with each deletable block deleted alone."""
    intact = build()
    errors = {}
    for block in ("none", *models.deletable_blocks(intact)):
        model = intact if block == "none" else build(deleted=[block])
        errors[block] = 100 * (1 - train.evaluate(model, params, state, x, y, batch_size=500)["accuracy"])
    return errors


def study(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    depth: int = 20,
    widths: tuple[int, int, int] = (16, 32, 64),
    epochs: int = 1,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, float]]:
    """Train the residual and the plain network and return ``{'residual': lesion_errors, 'plain': ...}`` with
    each network's training time under ``'seconds'``."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    results = {}
    for name, shortcut in NETWORKS.items():

        def build(deleted=(), shortcut=shortcut):
            shape = tuple(train_x.shape[1:])
            return models.cifar_resnet(depth, shape, num_classes, shortcut=shortcut, widths=widths, deleted=deleted)

        t0 = time.perf_counter()
        result = train.fit(
            build(),
            train_x,
            train_y,
            optimizer=optax.adam(lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=False,
            log=lambda _: None,
        )
        seconds = time.perf_counter() - t0
        results[name] = lesion_errors(build, result.state.params, result.state.model_state, test_x, test_y)
        results[name]["seconds"] = seconds
        log(f"{name}{depth}: trained in {seconds:.0f} s, test error {results[name]['none']:.2f}%")
    return results


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table: a row per deleted block, a column per network."""
    names = list(results)
    blocks = [b for b in results[names[0]] if b != "seconds"]
    lines = ["| deleted block | " + " | ".join(f"{n} test error %" for n in names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    for block in blocks:
        lines.append(f"| {block} | " + " | ".join(f"{results[n][block]:.2f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=20, help="6n + 2 (20, 32, ...)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int, default=60000, help="first N training images")
    p.add_argument("--test-size", type=int, default=10000, help="first N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR)
    args = p.parse_args(argv)
    ds = data.load("mnist", manual_dir=args.manual_dir, progress=False)
    results = study(
        ds.train_x[: args.train_size],
        ds.train_y[: args.train_size],
        ds.test_x[: args.test_size],
        ds.test_y[: args.test_size],
        depth=args.depth,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
