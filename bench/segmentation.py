"""Semantic segmentation of MNIST canvases: ``unet`` and ``fcn`` trained on ``mnist_canvas``, test mean IoU (over the
11 classes, from dataset-level counts), pixel accuracy and training time:

    python bench/segmentation.py [--models unet fcn] [--epochs 10] [--train-count 20000] [--batch-norm] [--json]

The canvases are the dataset's (20k train canvases from the MNIST training digits, 2k test canvases from the test
digits, 64x64, 1-4 digits); ``--train-count`` trains on the first N of them. Adam 1e-3, batch 32, cosine schedule,
pixels in [0, 1] (the models' train.py defaults); ``--batch-norm`` builds the U-Net with batch normalisation after
each 3x3 convolution. The test set is scored after every epoch (logged to stderr). Target (issue 16): unet >= 0.85
mean IoU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import common
import optax

from jaxnets import data, models

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def run(
    name: str, ds: data.Dataset, epochs: int, batch_size: int, lr: float, seed: int, **options: Any
) -> dict[str, Any]:
    """Train model ``name`` (builder ``options``) on ``ds``; its test metrics, training time (seconds, compiling and
    the per-epoch test passes included) and the load average at its start and end."""
    model = models.build(name, ds.input_shape, ds.num_classes, **options)
    load = os.getloadavg()[0]
    steps = epochs * (len(ds.train_x) // batch_size)
    optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps))
    result, seconds = common.timed_fit(
        model,
        ds,
        optimizer,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        eval_batch_size=250,
        log=lambda line: print(f"{name}: {line}", file=sys.stderr, flush=True),
    )
    last = result.history[-1]
    return {
        "mean_iou": last["test_mean_iou"],
        "pixel_accuracy": last["test_pixel_accuracy"],
        "train_seconds": round(seconds, 1),
        "epochs": epochs,
        "train_count": len(ds.train_x),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["unet", "fcn"], choices=["unet", "fcn"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-count", type=int, default=None, help="train on the first N training canvases")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-norm", action="store_true", help="unet with batch norm after each 3x3 convolution")
    p.add_argument("--manual-dir", default=MNIST_DIR)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    ds = data.load("mnist_canvas", normalisation="unit", manual_dir=args.manual_dir, progress=False)
    if args.train_count is not None:
        ds = data.Dataset(
            ds.name,
            ds.train_x[: args.train_count],
            ds.train_y[: args.train_count],
            ds.test_x,
            ds.test_y,
            ds.num_classes,
        )
    options = {"unet": {"batch_norm": True} if args.batch_norm else {}, "fcn": {}}
    rows = {
        name: run(name, ds, args.epochs, args.batch_size, args.lr, args.seed, **options[name]) for name in args.models
    }
    print("| model | mean IoU | pixel accuracy | train canvases x epochs | training time (s) | load average |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, r in rows.items():
        print(
            f"| `{name}` | {r['mean_iou']:.3f} | {100 * r['pixel_accuracy']:.2f}% | {r['train_count']} x {r['epochs']} "
            f"| {r['train_seconds']:.0f} | {r['load_average'][0]}-{r['load_average'][1]} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
