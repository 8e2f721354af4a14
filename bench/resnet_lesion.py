"""Analyses of a residual network and its plain twin on MNIST: lesions (Veit, Wilber & Belongie 2016), gradient
norms per block at initialisation and a depth study (He, Zhang, Ren & Sun 2015):

    python bench/resnet_lesion.py [--depth 20] [--epochs 1] [--train-size 60000] [--test-size 10000] [--draws 5]
    python bench/resnet_lesion.py --study depth [--depths 8,20,32] [--widths 8,16,32] [--epochs 3] [--curves F.json]

``--study lesion`` (the default) trains ``cifar_resnet(depth)`` (option A shortcuts) and the plain network of the
same layers without shortcuts (``shortcut=None``) with Adam, then prints the test error of each with no block deleted,
with each single block that keeps the shape deleted (``deleted=[block]``: the block made the identity, the trained
parameters unchanged) and with k = 2, 3, 4 such blocks deleted at random (mean over ``--draws`` draws). Veit et al.'s
finding: deleting residual blocks degrades the error smoothly, deleting a layer of a plain net destroys it.

``--study depth`` builds both networks at each of ``--depths``, prints the L2 norm of the loss gradient per block at
initialisation (batch statistics, on the first 500 training images; ``models.block_norms`` of
``analysis.layer_gradient_norms``), then trains each and prints its training loss and test error per epoch (He et
al.'s Figure 1 and 6: the deeper plain network trains worse, the deeper residual one does not).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import analysis, data, models, train
from jaxnets.models import block_norms

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
NETWORKS = {"residual": "A", "plain": None}
GRAD_EXAMPLES = 500


def _error(model: models.Model, params, state, x: np.ndarray, y: np.ndarray) -> float:
    return 100 * (1 - train.evaluate(model, params, state, x, y, batch_size=500)["accuracy"])


def lesion_errors(
    build: Callable[..., models.Model],
    params,
    state,
    x: np.ndarray,
    y: np.ndarray,
    *,
    ks: Sequence[int] = (2, 3, 4),
    draws: int = 5,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Test error (%) of the network ``build(deleted=...)`` with its trained ``params`` and ``state``, intact
    (``'none'``), with each deletable block deleted alone, and with ``k`` of them deleted at random for each of
    ``ks`` (``'k=2 random'``: the mean over ``draws`` draws of distinct blocks; a ``k`` above the number of
    deletable blocks is skipped)."""
    intact = build()
    blocks = models.deletable_blocks(intact)
    errors = {"none": _error(intact, params, state, x, y)}
    for block in blocks:
        errors[block] = _error(build(deleted=[block]), params, state, x, y)
    rng = np.random.default_rng(seed)
    for k in ks:
        if k > len(blocks):
            continue
        draws_k = [sorted(rng.choice(len(blocks), k, replace=False)) for _ in range(draws)]
        each = [_error(build(deleted=[blocks[i] for i in d]), params, state, x, y) for d in draws_k]
        errors[f"k={k} random"] = float(np.mean(each))
        log(f"  {k} blocks deleted at random: " + ", ".join(f"{e:.1f}%" for e in each))
    return errors


def _fit(model: models.Model, train_x, train_y, test_x=None, test_y=None, **options) -> train.FitResult:
    options = {"epochs": 1, "batch_size": 128, "seed": 0, "lr": 1e-3, **options}
    return train.fit(
        model,
        train_x,
        train_y,
        test_x,
        test_y,
        optimizer=optax.adam(options.pop("lr")),
        progress=False,
        log=lambda _: None,
        **options,
    )


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
    ks: Sequence[int] = (2, 3, 4),
    draws: int = 5,
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
        result = _fit(build(), train_x, train_y, epochs=epochs, batch_size=batch_size, seed=seed, lr=lr)
        seconds = time.perf_counter() - t0
        log(f"{name}{depth}: trained in {seconds:.0f} s")
        params, state = result.state.params, result.state.model_state
        results[name] = lesion_errors(build, params, state, test_x, test_y, ks=ks, draws=draws, seed=seed, log=log)
        results[name]["seconds"] = seconds
        log(f"{name}{depth}: test error {results[name]['none']:.2f}%")
    return results


def block_gradient_norms(model: models.Model, x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, float]:
    """The L2 norm of the loss gradient per block (``block_norms``) at the parameters ``fit(seed=seed)``
    starts from, with batch statistics (as in training)."""
    start = train.create_train_state(model, optax.adam(1e-3), jax.random.PRNGKey(seed))
    norms = analysis.layer_gradient_norms(
        model, start.params, start.model_state, jnp.asarray(x), jnp.asarray(y), train=True
    )
    return block_norms(norms)


def depth_study(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    depths: Sequence[int] = (8, 20, 32),
    widths: tuple[int, int, int] = (8, 16, 32),
    epochs: int = 3,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """For each depth and network (``'plain20'``, ``'resnet20'``, ...): the gradient norm per block at
    initialisation (``'gradient_norms'``), then the training loss and test error (%) after each epoch of Adam."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    shape = tuple(train_x.shape[1:])
    results: dict[str, dict] = {}
    for depth in depths:
        for shortcut in NETWORKS.values():
            model = models.cifar_resnet(depth, shape, num_classes, shortcut=shortcut, widths=widths)
            norms = block_gradient_norms(model, train_x[:GRAD_EXAMPLES], train_y[:GRAD_EXAMPLES], seed)
            t0 = time.perf_counter()
            result = _fit(model, train_x, train_y, test_x, test_y, epochs=epochs, batch_size=batch_size, lr=lr)
            results[model.name] = {
                "gradient_norms": norms,
                "train_loss": [r["train_loss"] for r in result.history],
                "test_error": [100 * (1 - r["test_accuracy"]) for r in result.history],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            r = results[model.name]
            log(
                f"{model.name}: first/last block gradient {_first_over_last(norms):.3g}; train loss per epoch "
                + ", ".join(f"{v:.4f}" for v in r["train_loss"])
                + "; test error "
                + ", ".join(f"{v:.2f}%" for v in r["test_error"])
                + f" ({r['seconds']} s)"
            )
    return results


def _first_over_last(norms: dict[str, float]) -> float:
    blocks = [b for b in norms if b.startswith("layer")]
    return norms[blocks[0]] / norms[blocks[-1]]


def table(results: dict[str, dict[str, float]]) -> str:
    """Markdown table: a row per deleted block (or number deleted at random), a column per network."""
    names = list(results)
    blocks = [b for b in results[names[0]] if b != "seconds"]
    lines = ["| deleted block | " + " | ".join(f"{n} test error %" for n in names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    for block in blocks:
        lines.append(f"| {block} | " + " | ".join(f"{results[n][block]:.2f}" for n in names) + " |")
    return "\n".join(lines)


def depth_table(results: dict[str, dict]) -> str:
    """Markdown: gradient norm per block at initialisation (a column per network), then the training loss and
    test error after the last epoch, and the first block's gradient over the last block's."""
    names = list(results)
    rows = list(max((results[n]["gradient_norms"] for n in names), key=len))  # the deepest network's blocks
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---:|" * len(names)]
    for row in rows:
        cells = [results[n]["gradient_norms"].get(row) for n in names]
        lines.append(f"| grad norm `{row}` | " + " | ".join("" if c is None else f"{c:.3g}" for c in cells) + " |")
    ratio = [f"{_first_over_last(results[n]['gradient_norms']):.3g}" for n in names]
    lines.append("| first / last block | " + " | ".join(ratio) + " |")
    for key, label in (("train_loss", "final training loss"), ("test_error", "final test error %")):
        lines.append(f"| {label} | " + " | ".join(f"{results[n][key][-1]:.4g}" for n in names) + " |")
    return "\n".join(lines)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", choices=("lesion", "depth"), default="lesion")
    p.add_argument("--depth", type=int, default=20, help="lesion study: 6n + 2 (20, 32, ...)")
    p.add_argument("--depths", type=_ints, default=(8, 20, 32), help="depth study: comma-separated depths")
    p.add_argument("--widths", type=_ints, default=None, help="maps per stage (lesion: 16,32,64; depth: 8,16,32)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int, default=60000, help="first N training images")
    p.add_argument("--test-size", type=int, default=10000, help="first N test images")
    p.add_argument("--draws", type=int, default=5, help="lesion study: random draws per number of deleted blocks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--curves", help="depth study: write the results (curves, gradient norms) to this JSON file")
    p.add_argument("--manual-dir", default=MNIST_DIR)
    args = p.parse_args(argv)
    ds = data.load("mnist", manual_dir=args.manual_dir, progress=False)
    splits = (
        ds.train_x[: args.train_size],
        ds.train_y[: args.train_size],
        ds.test_x[: args.test_size],
        ds.test_y[: args.test_size],
    )
    options = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed}
    if args.study == "lesion":
        widths = args.widths or (16, 32, 64)
        print(table(study(*splits, depth=args.depth, widths=widths, draws=args.draws, **options)))
    else:
        results = depth_study(*splits, depths=args.depths, widths=args.widths or (8, 16, 32), **options)
        print(depth_table(results))
        if args.curves:
            Path(args.curves).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
