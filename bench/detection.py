"""Digit detection on MNIST canvases (64 x 64, 1-4 digits of 20-45 pixels, overlaps allowed):

    python bench/detection.py [--epochs 10] [--train 20000] [--workdir runs/yolo-bench]
    python bench/detection.py --overfit 256 --epochs 40 --batch-size 32   # loss and decoding agree: mAP -> 1

Trains ``yolo`` (8 x 8 grid, 2 boxes per cell, YOLO v1's loss; Adam) through ``train.fit`` on
``mnist_canvas_detection``, then prints the VOC mAP@0.5 of the test canvases (all-point interpolation), exactly by
``models.mean_average_precision`` on ``models.detect``'s outputs (per-class NMS at IoU 0.5, scores above 0.01, at most
16 per image), the per-class APs, fit's binned mAP (``test_map``) and the training time with the load average it ran
under. With ``--workdir``, also ``detections.png`` there. ``--overfit N`` trains on the first N training canvases
and scores those same canvases instead of the test set.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

from jaxnets import data, models, train, viz

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train", type=int, default=20000, help="training canvases used (of 20,000, or of --canvases)")
    p.add_argument(
        "--canvases",
        type=int,
        default=None,
        help="train on this many canvases made from the MNIST training digits (data.mnist_canvases, seed 2; the "
        "dataset's are seeds 0 and 1) instead of the dataset's 20,000; the test canvases stay the dataset's",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overfit", type=int, default=None, help="train and score the first N training canvases")
    p.add_argument("--workdir", default=None, help="write detections.png here")
    p.add_argument("--manual-dir", default=MNIST_DIR)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = p.parse_args(argv)

    ds = data.load("mnist_canvas_detection", normalisation="unit", manual_dir=args.manual_dir, progress=False)
    if args.canvases is not None:
        mnist = data.load_raw("mnist", manual_dir=args.manual_dir, progress=False)
        more = data.mnist_canvases(mnist.train_x, mnist.train_y, args.canvases, seed=2)
        ds = dataclasses.replace(ds, train_x=more.images, train_y={"boxes": more.boxes, "labels": more.labels})
        args.train = args.canvases
    if args.overfit is not None:
        args.train = args.overfit
        first = jax.tree.map(lambda a: a[: args.overfit], (ds.train_x, ds.train_y))
        ds = dataclasses.replace(ds, test_x=first[0], test_y=first[1])
    model = models.build("yolo", ds.input_shape, ds.num_classes)
    train_y = jax.tree.map(lambda a: a[: args.train], ds.train_y)
    steps = args.epochs * (min(args.train, len(ds.train_x)) // args.batch_size)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = train.fit(
        model,
        ds.train_x[: args.train],
        train_y,
        ds.test_x,
        ds.test_y,
        optimizer=optax.adam(optax.cosine_decay_schedule(args.lr, steps)),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=False,
        log=lambda line: print(line, file=sys.stderr),
    )
    seconds = time.perf_counter() - start
    params, state = result.state.params, result.state.model_state
    detections = [models.detect(model, params, state, ds.test_x[i : i + 500]) for i in range(0, len(ds.test_x), 500)]
    detections = models.Detections(*(np.concatenate(parts) for parts in zip(*detections, strict=True)))
    exact, aps = models.mean_average_precision(detections, ds.test_y["boxes"], ds.test_y["labels"], ds.num_classes)
    figures = {
        "epochs": args.epochs,
        "train": args.train,
        "train_seconds": round(seconds, 1),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
        "map50": round(exact, 4),
        "fit_test_map": round(result.history[-1]["test_map"], 4),
        "ap50_per_class": [round(float(a), 3) for a in aps],
    }
    if args.workdir:
        images = ds.test_x[:12]
        viz.save_detections(
            Path(args.workdir) / viz.DETECTIONS,
            images,
            models.detect(model, params, state, images, score_threshold=0.3),
            ds.test_y["boxes"],
            ds.test_y["labels"],
            title="yolo: score > 0.3",
        )
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"yolo on mnist_canvas_detection: {args.train} canvases x {args.epochs} epochs in {seconds:.0f} s "
        f"(load average {figures['load_average'][0]} at start, {figures['load_average'][1]} at end)"
    )
    scored = f"the {args.overfit} training canvases'" if args.overfit else "test"
    print(f"{scored} mAP@0.5 {exact:.4f} (VOC all-point, exact); fit's binned test_map {figures['fit_test_map']:.4f}")
    print("AP@0.5 per class: " + ", ".join(f"{c}: {a:.3f}" for c, a in enumerate(aps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
