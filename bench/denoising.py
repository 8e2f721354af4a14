"""Reconstruction error of trained autoencoders on clean and on corrupted MNIST test images:

    python bench/denoising.py runs/autoencoder-mnist runs/dae-mnist [--level 0.25] [--kind mask]

Each argument is a ``train.py`` workdir of an autoencoder (``autoencoder``, ``dae``, ``conv_autoencoder``,
``conv_dae``, ``vae``, ``rbm``). The corrupted inputs are the test images with each pixel zeroed with probability
``--level`` (``--kind gaussian``: N(0, level^2) noise added), drawn once from a fixed key; the target is always the
clean image. Figures per image: Bernoulli cross-entropy (nats) and squared error of the reconstruction.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import data, losses, models
from jaxnets.train import CHECKPOINT, create_train_state, load_checkpoint, make_optimizer, read_config

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def load_run(workdir: str | Path):
    """The model, trained parameters and model state of a ``train.py`` run."""
    path = Path(workdir) / CHECKPOINT
    config = read_config(path)
    model = models.build(config["model"], input_shape=tuple(config["input_shape"]))
    optimizer = make_optimizer(
        config["optimizer"], config["lr"], config["momentum"], config["weight_decay"], config["schedule"], total_steps=1
    )  # the optimiser state's structure, to restore into
    state, _ = load_checkpoint(path, create_train_state(model, optimizer, jax.random.PRNGKey(0)))
    return model, state.params, state.model_state


def errors(model, params, state, inputs: np.ndarray, targets: np.ndarray, batch: int = 1000) -> dict[str, float]:
    """Mean per-image cross-entropy and squared error of the reconstructions of ``inputs`` against ``targets``."""

    @jax.jit
    def sums(x, t):
        logits, _ = model.apply(params, state, x)
        return jnp.sum(losses.bernoulli_nll(logits, t)), jnp.sum(losses.squared_error(logits, t))

    totals = np.zeros(2)
    for i in range(0, len(inputs), batch):
        totals += np.asarray(sums(jnp.asarray(inputs[i : i + batch]), jnp.asarray(targets[i : i + batch])))
    return {"cross_entropy": totals[0] / len(inputs), "squared_error": totals[1] / len(inputs)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workdirs", nargs="+", help="train.py workdirs of autoencoders")
    p.add_argument("--kind", default="mask", choices=models.CORRUPTIONS)
    p.add_argument("--level", type=float, default=0.25)
    p.add_argument("--manual-dir", default=MNIST_DIR)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    ds = data.load("mnist", normalisation="unit", manual_dir=args.manual_dir)
    clean = ds.test_x
    noisy = np.asarray(jnp.clip(models.corrupt(jnp.asarray(clean), jax.random.PRNGKey(0), args.kind, args.level), 0, 1))
    rows = {}
    print(
        f"| run | model | clean: cross-entropy | clean: squared error | {args.kind} {args.level}: cross-entropy "
        f"| {args.kind} {args.level}: squared error |\n| --- | --- | ---: | ---: | ---: | ---: |"
    )
    for workdir in args.workdirs:
        model, params, state = load_run(workdir)
        rows[workdir] = {
            "model": model.name,
            "clean": errors(model, params, state, clean, clean),
            "corrupted": errors(model, params, state, noisy, clean),
        }
        r = rows[workdir]
        print(
            f"| {workdir} | `{model.name}` | {r['clean']['cross_entropy']:.2f} | {r['clean']['squared_error']:.2f} "
            f"| {r['corrupted']['cross_entropy']:.2f} | {r['corrupted']['squared_error']:.2f} |"
        )
    if args.json:
        print(json.dumps({"kind": args.kind, "level": args.level, "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
