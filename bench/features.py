"""Hand-designed against learned features on MNIST (LeCun, Bottou, Bengio & Haffner 1998, section I):

    nice -n 10 python bench/features.py [--epochs 3] [--train-size 60000] [--filters c1_filters.npz]

Histogram-of-oriented-gradients descriptors (``data.features.hog_features``: 9 orientation bins, 4x4-pixel cells,
2x2-cell blocks, L2-Hys; 1,296 numbers per digit, standardised with the training set's mean and deviation) and raw
pixels (in [0, 1]) each feed softmax regression (``logistic``) and an MLP (``mlp``, 300-100 ReLU), against
LeNet-5 (``lenet5_modern``), which learns its feature extractor end to end from the pixels. All are trained by
``train.fit`` with the same budget (Adam, batch 128, ``--epochs`` epochs). Prints a markdown table of test error and
trained parameters with the command and date; ``--filters`` saves the hand-designed filters
(``oriented_gradient_filters``) and LeNet-5's learned C1 filters to an .npz for a figure.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import common
import numpy as np
import optax

from jaxnets import data, models, train
from jaxnets._summary import num_params
from jaxnets.data import hog_features, oriented_gradient_filters

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
HOG = {"orientations": 9, "pixels_per_cell": (4, 4), "cells_per_block": (2, 2), "block_norm": "L2-Hys"}
# (row name, features, model name): the feature sets are "pixels" (images) and "hog" (descriptors)
RUNS = (
    ("pixels -> logistic", "pixels", "logistic"),
    ("HOG -> logistic", "hog", "logistic"),
    ("pixels -> MLP 300-100", "pixels", "mlp"),
    ("HOG -> MLP 300-100", "hog", "mlp"),
    ("pixels -> LeNet-5 (learned features)", "pixels", "lenet5_modern"),
)


def hog_inputs(train_x: np.ndarray, test_x: np.ndarray, **options) -> tuple[np.ndarray, np.ndarray]:
    """HOG descriptors of the training and test images, standardised per feature with the training statistics."""
    options = {**HOG, **options}
    f_train, f_test = hog_features(train_x, **options), hog_features(test_x, **options)
    mean, std = f_train.mean(0), f_train.std(0) + 1e-6
    return (f_train - mean) / std, (f_test - mean) / std


def compare(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    runs: tuple[tuple[str, str, str], ...] = RUNS,
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    hog: dict | None = None,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray]]:
    """Train each ``(row, features, model)`` of ``runs`` on images ``(n, h, w, 1)`` in [0, 1] and their HOG
    descriptors; returns ``{row: {'error': test error %, 'params': trained parameters, 'features': input size}}``
    and the filters ``{'hand': oriented_gradient_filters(), 'learned': LeNet-5's C1 kernels}`` (the latter when a
    LeNet-5 was trained)."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    inputs = {"pixels": (train_x, test_x)}
    if any(kind == "hog" for _, kind, _ in runs):
        t0 = time.perf_counter()
        inputs["hog"] = hog_inputs(train_x, test_x, **(hog or {}))
        log(f"HOG descriptors: {inputs['hog'][0].shape[1]} per image ({time.perf_counter() - t0:.1f} s)")
    results: dict[str, dict[str, float]] = {}
    filters = {"hand": oriented_gradient_filters((hog or HOG).get("orientations", 9))}
    for row, kind, name in runs:
        x, tx = inputs[kind]
        model = models.build(name, tuple(x.shape[1:]), num_classes)
        t0 = time.perf_counter()
        result = train.fit(
            model,
            x,
            train_y,
            tx,
            test_y,
            optimizer=optax.adam(lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=False,
            log=lambda _: None,
        )
        error = 100 * (1 - result.history[-1]["test_accuracy"])
        results[row] = {"error": error, "params": num_params(model), "features": int(np.prod(x.shape[1:]))}
        log(f"{row}: test error {error:.2f}% ({time.perf_counter() - t0:.0f} s)")
        if name.startswith("lenet5"):
            filters["learned"] = np.asarray(result.state.params["C1"]["w"])[:, :, 0, :]
    return results, filters


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown: a row per (features, classifier), its input size, trained parameters and test error."""
    lines = ["| features -> classifier | inputs | trained parameters | test error % |", "|---|---:|---:|---:|"]
    for row, r in results.items():
        lines.append(f"| {row} | {r['features']:,} | {r['params']:,} | {r['error']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="epochs of Adam for every classifier (default 3)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int, default=60000, help="first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR, help="folder with the four MNIST .gz files")
    p.add_argument("--filters", help="save the hand-designed and learned filters to this .npz")
    args = p.parse_args(argv)
    ds = data.load("mnist", normalisation="unit", manual_dir=args.manual_dir, progress=False)
    results, filters = compare(
        ds.train_x[: args.train_size],
        ds.train_y[: args.train_size],
        ds.test_x,
        ds.test_y,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    setting = f"{len(ds.train_x[: args.train_size]):,} training images, MNIST test set"
    print(common.command_line(__file__, argv, setting))
    print(table(results))
    if args.filters:
        np.savez(args.filters, **filters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
