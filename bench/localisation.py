"""Weakly supervised localisation on single-digit MNIST canvases (64 x 64, digits 20-45 pixels):

    python bench/localisation.py [--epochs 5] [--train 20000] [--thresholds 0.2 0.4] [--workdir runs/cam-bench]

Trains ``cam_cnn`` on the image labels only (Adam), then boxes each test digit from its class activation map (CAM,
Zhou et al. 2016) and from Grad-CAM (Selvaraju et al. 2017), thresholded at 20% of the map's maximum (the paper's;
``--thresholds`` scores others too, the first is the headline), box of the largest connected region. Prints test
accuracy, "loc" (IoU >= 0.5 with the true box, map of the true class) and "top-1 loc" (also classified correctly),
and the training time with the load average it ran under. With ``--workdir``, also ``class_maps.png`` there (the
true class's CAM of 10 test canvases, its box in white, the true box dashed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import data, models, train, viz

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--train", type=int, default=20000, help="training canvases used (of 20,000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.2], help="fractions of the map's maximum")
    p.add_argument("--workdir", default=None, help="write class_maps.png here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR)
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = p.parse_args(argv)

    ds = data.load("mnist_canvas_single", normalisation="unit", manual_dir=args.manual_dir, progress=False)
    assert isinstance(ds, data.CanvasDataset)
    model = models.build("cam_cnn", ds.input_shape, ds.num_classes)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = train.fit(
        model,
        ds.train_x[: args.train],
        ds.train_y[: args.train],
        optimizer=optax.adam(args.lr),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=False,
        log=lambda line: print(line, file=sys.stderr),
    )
    seconds = time.perf_counter() - start
    params, state = result.state.params, result.state.model_state
    boxes, labels = ds.test_canvases.boxes[:, 0], ds.test_canvases.labels[:, 0]
    figures: dict = {"epochs": args.epochs, "train": args.train, "train_seconds": round(seconds, 1)}
    figures["load_average"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    for method in models.CLASS_MAPS:
        for t in args.thresholds:
            scores = models.localisation_accuracy(model, params, state, ds.test_x, boxes, labels, method, t)
            figures[f"{method}@{t}"] = {k: round(v, 4) for k, v in scores.items()}
    if args.workdir:
        images, classes = ds.test_x[:10], labels[:10]
        maps = np.asarray(models.class_activation_map(model, params, state, jnp.asarray(images), jnp.asarray(classes)))
        found = np.stack([models.box_from_map(m, args.thresholds[0]) for m in maps])
        viz.save_class_maps(
            Path(args.workdir) / viz.CLASS_MAPS,
            images,
            np.maximum(maps, 0.0),
            found,
            boxes[:10],
            captions=[str(c) for c in classes],
            title=f"cam_cnn: CAM of the true class, box at {args.thresholds[0]:.0%} of the maximum",
        )
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"cam_cnn on mnist_canvas_single: {args.train} canvases x {args.epochs} epochs in {seconds:.0f} s "
        f"(load average {figures['load_average'][0]} at start, {figures['load_average'][1]} at end)"
    )
    for key in (k for k in figures if "@" in k):
        s = figures[key]
        print(
            f"{key:13s} test accuracy {100 * s['accuracy']:.2f}%  loc {100 * s['loc']:.2f}%  "
            f"top-1 loc {100 * s['top1_loc']:.2f}%  ({len(labels)} test canvases, IoU >= 0.5)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
