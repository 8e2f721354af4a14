"""Stacked denoising autoencoders (Vincent, Larochelle, Lajoie, Bengio & Manzagol 2010) against RBM pretraining
(Hinton, Osindero & Teh 2006) and random initialisation, on MNIST:

    nice -n 10 python bench/sdae.py [--hidden 500,500,500] [--pretrain-epochs 1] [--epochs 5] [--train-size 60000]
    (pretraining SGD + momentum 0.5: RBMs at --rbm-lr 0.1 by CD-1, DAEs at --dae-lr 0.1; fine-tuning SGD at --lr 0.05
    with --momentum 0.9, batch 100)

The same deep sigmoid MLP (``mlp(hidden, activation='sigmoid')``) starts from (a) its random LeCun-normal
initialisation, (b) a greedy stack of RBMs (``train.pretrain_stack(layer='rbm')``, CD-1) and (c) a greedy stack of
denoising autoencoders (``layer='dae'``, masking noise ``--level``, Bernoulli cross-entropy), each layer trained on
the codes of the one below without labels; the output layer is random in all three. Each is then fine-tuned with
the same budget of SGD with momentum; prints the test error after each fine-tuning epoch, next to Vincent et al.'s
Table 3 (3 hidden layers of up to 1000 units, hyper-parameters chosen on a validation set, pretrained and fine-tuned
for many epochs, no augmentation: SDAE-3 with 25% masking noise 1.28% test error, DBN-3 (RBM pretraining) 1.24%,
SAA-3 (plain autoencoders) 1.40%).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import common
import numpy as np
import optax

from jaxnets import data, models, train

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
# Vincent et al. (2010), Table 3, MNIST test error (%) of their 3-hidden-layer networks: DBN-3 and SDAE-3.
REFERENCE = {"RBM stack": 1.24, "SDAE stack": 1.28}


def compare(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    hidden: Sequence[int] = (500, 500, 500),
    pretrain_epochs: int = 1,
    rbm_lr: float = 0.1,
    dae_lr: float = 0.1,
    level: float = 0.25,
    epochs: int = 5,
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 100,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Fine-tune the sigmoid MLP ``hidden`` from each initialisation (``'random'``, ``'RBM stack'``,
    ``'SDAE stack'``) on images in [0, 1]; returns per initialisation the test error (%) after each epoch and the
    seconds spent pretraining and fine-tuning."""
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    model = models.build("mlp", tuple(train_x.shape[1:]), num_classes, hidden=tuple(hidden), activation="sigmoid")
    options = {"epochs": pretrain_epochs, "batch_size": batch_size, "seed": seed, "log": log}
    starts: dict[str, tuple[models.Model, float]] = {"random": (model, 0.0)}
    for name, layer, rate in (("RBM stack", "rbm", rbm_lr), ("SDAE stack", "dae", dae_lr)):
        t0 = time.perf_counter()
        stack = train.pretrain_stack(hidden, train_x, layer=layer, lr=rate, level=level, **options)
        starts[name] = (models.with_initial_params(model, stack), time.perf_counter() - t0)
    results: dict[str, dict] = {}
    for name, (start, pretrain_seconds) in starts.items():
        t0 = time.perf_counter()
        result = train.fit(
            start,
            train_x,
            train_y,
            test_x,
            test_y,
            optimizer=optax.sgd(lr, momentum=momentum or None),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress=False,
            log=lambda _: None,
        )
        errors = [100 * (1 - r["test_accuracy"]) for r in result.history]
        results[name] = {
            "test_error": errors,
            "pretrain_seconds": round(pretrain_seconds, 1),
            "finetune_seconds": round(time.perf_counter() - t0, 1),
        }
        log(f"{name}: test error per epoch {', '.join(f'{e:.2f}%' for e in errors)}")
    return results


def table(results: dict[str, dict]) -> str:
    """Markdown: test error after each fine-tuning epoch per initialisation, then Vincent et al.'s figure."""
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for e in range(len(results[names[0]]["test_error"])):
        lines.append(
            f"| test error %, epoch {e + 1} | " + " | ".join(f"{results[n]['test_error'][e]:.2f}" for n in names) + " |"
        )
    lines.append(
        "| Vincent et al. 2010, Table 3 | "
        + " | ".join(f"{REFERENCE[n]:.2f}" if n in REFERENCE else "" for n in names)
        + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="500,500,500", help="hidden layer widths (default 500,500,500)")
    p.add_argument("--pretrain-epochs", type=int, default=1, help="epochs per pretrained layer (default 1)")
    p.add_argument("--rbm-lr", type=float, default=0.1, help="RBM pretraining SGD rate, momentum 0.5")
    p.add_argument("--dae-lr", type=float, default=0.1, help="DAE pretraining SGD rate, momentum 0.5")
    p.add_argument("--level", type=float, default=0.25, help="DAE masking noise: share of inputs zeroed")
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs of SGD (default 5)")
    p.add_argument("--lr", type=float, default=0.05, help="fine-tuning learning rate (default 0.05)")
    p.add_argument("--momentum", type=float, default=0.9, help="fine-tuning momentum (default 0.9)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--train-size", type=int, default=60000, help="first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--manual-dir", default=MNIST_DIR, help="folder with the four MNIST .gz files")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    args = p.parse_args(argv)
    ds = data.load("mnist", normalisation="unit", manual_dir=args.manual_dir, progress=False)
    hidden = tuple(int(v) for v in args.hidden.split(","))
    results = compare(
        ds.train_x[: args.train_size],
        ds.train_y[: args.train_size],
        ds.test_x,
        ds.test_y,
        hidden=hidden,
        pretrain_epochs=args.pretrain_epochs,
        rbm_lr=args.rbm_lr,
        dae_lr=args.dae_lr,
        level=args.level,
        epochs=args.epochs,
        lr=args.lr,
        momentum=args.momentum,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    setting = f"{len(ds.train_x[: args.train_size]):,} training images, MNIST test set"
    print(common.command_line(__file__, argv, setting))
    print(table(results))
    if args.json:
        print(json.dumps({"config": vars(args), **results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
