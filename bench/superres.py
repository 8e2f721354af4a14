"""Super-resolution: ``srcnn`` and ``espcn`` trained at x2 and x3 on MNIST canvases and on patches of scikit-image's
sample photographs, test PSNR and SSIM of bicubic interpolation and of each model, and training time:

    python bench/superres.py [--data canvas photos] [--scales 2 3] [--models srcnn espcn] [--epochs 3 12] [--json]

Canvases: the datasets ``mnist_canvas_sr`` (x2) and ``mnist_canvas_sr3`` (x3), 64x64 canvases of 1-4 digits made
from the MNIST training digits (``--train-count``: the first N of the 20k) and tested on all 2k test canvases (test
digits). Photographs (when scikit-image is installed: ``pip install 'jaxnets[photos]'``): luminance (Y of YCbCr, as
SRCNN) of ``data.TRAIN_PHOTOGRAPHS``, cut into ``--patch`` x ``--patch`` sub-images at ``--stride`` (SRCNN: 33 at
14; at most ``--max-patches`` of them, drawn with the seed) for training, and the whole held-out images
``data.TEST_PHOTOGRAPHS`` for testing. Low-resolution images are made by ``data.superres_pairs`` (bicubic, antialiased);
both models take them (SRCNN's bicubic enlargement is its fixed first layer). ``--border`` pixels at each edge of
every high-resolution image are left out of the training loss (``SuperResolution(scale, border)``: the papers'
unpadded convolutions score only the centre of a sub-image) and of the scores: PSNR and SSIM on [0, 1] pixels, per
test image, then averaged. Adam with a cosine schedule (``--lr``), batch ``--batch-size``, MSE, as ``train.py``'s
defaults for these models; ``--epochs``: one count for every model, or one per model in the order of ``--models``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import data, models, nn, train

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
CANVAS_SETS = {scale: name for name, scale in data.SUPERRES_DATASETS.items()}


def quality(
    model: models.Model | None, params, state, low: np.ndarray, high: np.ndarray, border: int, batch: int = 100
) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over images ``high`` of the model's enlargement of ``low`` (bicubic's for ``model``
    None), ``border`` pixels shaved off each edge."""
    rows, cols = slice(border, high.shape[1] - border), slice(border, high.shape[2] - border)
    scores = []
    for i in range(0, len(low), batch):
        x = jnp.asarray(low[i : i + batch])
        out = nn.bicubic_resize(x, *high.shape[1:3]) if model is None else models.upscale(model, params, state, x)
        y = jnp.asarray(high[i : i + batch])
        out, y = out[:, rows, cols], y[:, rows, cols]
        scores.append(np.stack([np.asarray(models.psnr(out, y)), np.asarray(models.ssim(out, y))], 1))
    psnr, ssim = np.concatenate(scores).mean(0)
    return float(psnr), float(ssim)


def photo_sets(scale: int, patch: int, stride: int, max_patches: int, seed: int):
    """(training pairs of photograph patches, [test pairs of each whole held-out photograph])."""
    patches = data.patches(data.photographs(data.TRAIN_PHOTOGRAPHS), patch, stride)
    if len(patches) > max_patches:
        patches = patches[np.sort(np.random.default_rng(seed).choice(len(patches), max_patches, replace=False))]
    tests = [data.superres_pairs(image[None], scale) for image in data.photographs(data.TEST_PHOTOGRAPHS)]
    return data.superres_pairs(patches, scale), tests


def run(
    name: str,
    scale: int,
    train_pairs: tuple[np.ndarray, np.ndarray],
    tests: list[tuple[np.ndarray, np.ndarray]],
    epochs: int,
    args: argparse.Namespace,
) -> dict[str, float]:
    """Train model ``name`` (x ``scale``) on (low, high) ``train_pairs`` for ``epochs``; its and bicubic's mean test
    PSNR and SSIM over the images of ``tests`` (a list of (low, high) batches), and its training time (compiling
    included)."""
    low, high = train_pairs
    model = models.build(name, low.shape[1:], scale=scale)
    model = dataclasses.replace(model, objective=models.SuperResolution(scale, args.border))
    steps = epochs * (len(low) // args.batch_size)
    optimizer = optax.adam(optax.cosine_decay_schedule(args.lr, steps))
    start = time.perf_counter()
    result = train.fit(
        model,
        low,
        high,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=False,
    )
    seconds = time.perf_counter() - start
    params, state = result.state.params, result.state.model_state
    row: dict[str, float] = {"train_seconds": round(seconds, 1), "train_count": len(low), "epochs": epochs}
    for key, m in (("bicubic", None), (name, model)):
        scores = np.array([quality(m, params, state, lo, hi, args.border) for lo, hi in tests])
        weights = np.array([len(lo) for lo, _ in tests])
        row[f"{key}_psnr"], row[f"{key}_ssim"] = (float(v) for v in weights @ scores / weights.sum())
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["canvas", "photos"], choices=["canvas", "photos"])
    p.add_argument("--scales", nargs="+", type=int, default=[2, 3], choices=sorted(CANVAS_SETS))
    p.add_argument("--models", nargs="+", default=["srcnn", "espcn"], choices=["srcnn", "espcn"])
    p.add_argument("--epochs", nargs="+", type=int, default=[3], help="one count, or one per model")
    p.add_argument("--train-count", type=int, default=None, help="train on the first N training canvases")
    p.add_argument("--patch", type=int, default=48, help="side of the photographs' training sub-images")
    p.add_argument("--stride", type=int, default=24)
    p.add_argument("--border", type=int, default=8, help="edge pixels left out of the loss and the scores")
    p.add_argument("--max-patches", type=int, default=10_000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if len(args.epochs) not in (1, len(args.models)):
        p.error(f"--epochs takes one count or one per model ({len(args.models)})")
    counts = args.epochs * len(args.models) if len(args.epochs) == 1 else args.epochs
    epochs = dict(zip(args.models, counts, strict=True))
    rows: dict[str, dict[str, float]] = {}
    for source in args.data:
        for scale in args.scales:
            if source == "canvas":
                ds = data.load(CANVAS_SETS[scale], normalisation="unit", manual_dir=args.manual_dir, progress=False)
                count = args.train_count or len(ds.train_x)
                train_pairs, tests = (ds.train_x[:count], ds.train_y[:count]), [(ds.test_x, ds.test_y)]
            else:
                try:
                    pairs, photos = photo_sets(scale, args.patch, args.stride, args.max_patches, args.seed)
                except ImportError as error:
                    print(f"photographs skipped: {error}")
                    break
                train_pairs, tests = (pairs.low, pairs.high), [(t.low, t.high) for t in photos]
            for name in args.models:
                rows[f"{source} x{scale} {name}"] = run(name, scale, train_pairs, tests, epochs[name], args)
    print(
        "| data | scale | model | bicubic PSNR (dB) | model PSNR (dB) | gain (dB) | bicubic SSIM | model SSIM "
        "| train images x epochs | training time (s) |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, r in rows.items():
        source, scale, name = key.split()
        print(
            f"| {source} | {scale} | `{name}` | {r['bicubic_psnr']:.2f} | {r[f'{name}_psnr']:.2f} "
            f"| {r[f'{name}_psnr'] - r['bicubic_psnr']:+.2f} | {r['bicubic_ssim']:.4f} | {r[f'{name}_ssim']:.4f} "
            f"| {r['train_count']} x {r['epochs']} | {r['train_seconds']:.0f} |"
        )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
