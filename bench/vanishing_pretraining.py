"""Vanishing gradients in a deep sigmoid network and the two classic answers, side by side on MNIST:

    python bench/vanishing_pretraining.py [--depth 6] [--hidden 500] [--pretrain-epochs 1] [--epochs 2] [--json]

(a) ``sigmoid``: a deep sigmoid MLP from random initialisation (LeCun normal, the library's default for sigmoid);
(b) ``sigmoid+rbm``: the same network initialised by greedy layer-wise RBM pretraining (Hinton, Osindero & Teh 2006:
    one RBM per hidden layer, CD-1, each on the hidden probabilities of the one below; the output layer random);
(c) ``relu``: the same shape with ReLU and He initialisation (Glorot, Bordes & Bengio 2011; He et al. 2015).

For each: the L2 norm of the loss gradient per layer at the start of fine-tuning (on the first 1,000 training
images), then test accuracy after each epoch of the same plain-SGD fine-tuning budget. Inputs are pixels in [0, 1]
(what the RBMs model). Pretraining uses the training images only, never their labels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxnets
from jaxnets import analysis, data, train
from jaxnets.models import with_initial_params
from jaxnets.train import pretrain_stack

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
GRAD_EXAMPLES = 1000


def compare(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    depth: int = 6,
    hidden: int | tuple[int, ...] = 500,
    pretrain_epochs: int = 1,
    pretrain_lr: float = 0.1,
    epochs: int = 2,
    lr: float = 0.1,
    batch_size: int = 100,
    seed: int = 0,
    stack: dict | None = None,
    log=print,
) -> dict[str, dict]:
    """Gradient norms per layer at initialisation and test accuracy per epoch of SGD fine-tuning, for the random
    sigmoid, RBM-pretrained sigmoid and ReLU networks (``depth`` hidden layers of ``hidden`` units, or the widths
    ``hidden`` if it is a tuple). ``stack``: pretrained parameters to use instead of pretraining here
    (``pretrain_stack``'s output)."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    shape = tuple(train_x.shape[1:])
    sizes = (hidden,) * depth if isinstance(hidden, int) else tuple(hidden)
    sigmoid = jaxnets.build("mlp", shape, num_classes, hidden=sizes, activation="sigmoid")
    relu = jaxnets.build("mlp", shape, num_classes, hidden=sizes, activation="relu")
    t0 = time.perf_counter()
    if stack is None:
        stack = pretrain_stack(
            sizes,
            train_x,
            epochs=pretrain_epochs,
            batch_size=batch_size,
            lr=pretrain_lr,
            momentum=0.5,
            seed=seed,
            log=log,
        )
    pretrain_seconds = time.perf_counter() - t0
    log(f"pretraining: {pretrain_seconds:.1f} s")
    models = {"sigmoid": sigmoid, "sigmoid+rbm": with_initial_params(sigmoid, stack), "relu": relu}
    gx, gy = jnp.asarray(train_x[:GRAD_EXAMPLES]), jnp.asarray(train_y[:GRAD_EXAMPLES])
    results: dict[str, dict] = {}
    for name, model in models.items():
        optimizer = optax.sgd(lr)
        # the parameters fit starts from: the same key split as fit's own
        start = train.create_train_state(model, optimizer, jax.random.PRNGKey(seed))
        norms = analysis.layer_gradient_norms(model, start.params, start.model_state, gx, gy)
        t0 = time.perf_counter()
        result = train.fit(
            model,
            train_x,
            train_y,
            test_x,
            test_y,
            optimizer=optimizer,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=False,
            log=lambda _: None,
        )
        results[name] = {
            "gradient_norms": norms,
            "test_accuracy": [r["test_accuracy"] for r in result.history],
            "train_loss": [r["train_loss"] for r in result.history],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log(
            f"{name}: test accuracy per epoch {', '.join(f'{100 * a:.2f}%' for a in results[name]['test_accuracy'])}"
            f" ({results[name]['seconds']} s)"
        )
    results["pretrain_seconds"] = round(pretrain_seconds, 1)
    return results


def table(results: dict[str, dict]) -> str:
    """Markdown: gradient norm per layer (input to output), then test accuracy per epoch, one column per network."""
    names = [k for k in results if isinstance(results[k], dict) and "gradient_norms" in results[k]]
    layers = list(results[names[0]]["gradient_norms"])
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "| --- |" + " ---: |" * len(names)]
    for layer in layers:
        lines.append(
            f"| grad norm `{layer}` | " + " | ".join(f"{results[n]['gradient_norms'][layer]:.2e}" for n in names) + " |"
        )
    ratio = [results[n]["gradient_norms"][layers[0]] / results[n]["gradient_norms"][layers[-2]] for n in names]
    lines.append(f"| `{layers[0]}` / `{layers[-2]}` | " + " | ".join(f"{r:.3g}" for r in ratio) + " |")
    for e in range(len(results[names[0]]["test_accuracy"])):
        lines.append(
            f"| test accuracy, epoch {e + 1} | "
            + " | ".join(f"{100 * results[n]['test_accuracy'][e]:.2f}%" for n in names)
            + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=6, help="hidden layers (default 6)")
    p.add_argument("--hidden", type=int, default=500, help="units per hidden layer (default 500)")
    p.add_argument("--pretrain-epochs", type=int, default=1, help="CD-1 epochs per RBM (default 1)")
    p.add_argument("--pretrain-lr", type=float, default=0.1, help="RBM learning rate, momentum 0.5 (default 0.1)")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of plain SGD (default 2)")
    p.add_argument("--lr", type=float, default=0.1, help="fine-tuning learning rate (default 0.1)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR, help="folder with the four MNIST .gz files")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    args = p.parse_args(argv)
    ds = data.load("mnist", normalisation="unit", manual_dir=args.manual_dir)
    results = compare(
        ds.train_x,
        ds.train_y,
        ds.test_x,
        ds.test_y,
        depth=args.depth,
        hidden=args.hidden,
        pretrain_epochs=args.pretrain_epochs,
        pretrain_lr=args.pretrain_lr,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(table(results))
    if args.json:
        print(json.dumps({"config": vars(args), **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
