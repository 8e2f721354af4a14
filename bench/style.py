"""Texture synthesis with random filters (Ustyuzhaninov, Brendel, Gatys & Bethge 2016), the offline demonstration
of jaxnets' neural-style machinery: ImageNet-trained VGG-19 weights are not available offline, so the features
are one layer of untrained random convolutions (sizes 3, 5, 7, 11; 128 filters each; ReLU), and the pixels of a
noise image are optimised (L-BFGS, optax.lbfgs) to match their Gram matrices on a crop of matplotlib's sample photo.

    python bench/style.py --out runs/style            # --size 64 --steps 300; --quick for a smoke run

Writes texture.png (source, initial noise, synthesis) and prints the style loss before/after as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from matplotlib import cbook
from PIL import Image

from jaxnets import nn, train, viz
from jaxnets.models import random_filter_features, random_filters, synthesise_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/style")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    size, steps, features = (32, 30, 32) if args.quick else (args.size, args.steps, 128)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        photo = Image.open(f).convert("RGB")
    # a 128x128 patch of dark uniform and white collar, resized
    crop = photo.crop((120, 380, 248, 508)).resize((size, size), Image.BICUBIC)
    source = jnp.asarray(np.asarray(crop, np.float32) / 255)[None]
    bank = random_filters(jax.random.key(0), sizes=(3, 5, 7, 11), features=features)
    layers = tuple(bank)
    init = jax.random.uniform(jax.random.key(1), source.shape)
    with nn.conv_strategy("xla"):
        image, history = synthesise_image(
            lambda x: random_filter_features(bank, x),
            init,
            style=source,
            style_layers=layers,
            style_weight=1e3,
            steps=steps,
            optimizer=optax.lbfgs(),
        )
    image = jnp.clip(image, 0, 1)
    viz.save_image_rows(
        out / "texture.png",
        [np.stack([source[0], init[0], image[0]])],
        ["source, noise, synthesis"],
        title="texture synthesis with random filters",
    )
    record = {
        "part": "texture",
        "size": size,
        "steps": steps,
        "filters": f"4 x {features}",
        "loss_first": float(history[0]),
        "loss_last": float(history[-1]),
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(record))
    train.append_metrics(out / "metrics.jsonl", record)


if __name__ == "__main__":
    main()
