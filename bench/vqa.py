"""Visual question answering, measured: Antol et al.'s LSTM Q + norm I baseline (``vqa_lstm_cnn``) on easy-VQA, and
Santoro et al.'s relation network against the CNN + MLP baseline on Sort-of-CLEVR, relational and non-relational
test accuracy side by side with the paper's (RN above 94% on both; CNN + MLP as good on non-relational questions but
63% on relational ones):

    python bench/vqa.py                        # both parts; --only easy_vqa | sort_of_clevr
    python bench/vqa.py --only sort_of_clevr --images 2000 --g-width 64 --models relation_network
    python bench/vqa.py --quick                # a smoke run (tiny sets, one epoch), not the figures

Both train through ``train.fit`` with Adam; easy-VQA on its 38,575 training questions (9,673 test), Sort-of-CLEVR on
``--images`` generated training images (20 questions each; the reference has 9,800) and its 200 test images (4,000
questions). Prints a Markdown table, and with ``--json`` one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import common
import jax
import optax

from jaxnets.data import easy_vqa, sort_of_clevr_dataset
from jaxnets.models import cnn_mlp, relation_network, vqa_lstm_cnn

PAPER = {  # Santoro et al. 2017, section 5.1 (Sort-of-CLEVR)
    "relation_network": {"relational": ">94%", "nonrelational": ">94%"},
    "cnn_mlp": {"relational": "63%", "nonrelational": ">94%"},
}


def _subset(ds, n: int | None):
    """The first ``n`` training examples of ``ds`` (all with None)."""
    if n is None:
        return ds.train_x, ds.train_y
    return jax.tree.map(lambda a: a[:n], ds.train_x), ds.train_y[:n]


def _train(model, ds, epochs: int, batch_size: int, lr: float, seed: int, n: int | None = None) -> dict[str, Any]:
    """Adam (cosine-decayed ``lr``) for ``epochs``; the final test metrics, seconds and load averages."""
    x, y = _subset(ds, n)
    steps = epochs * (len(y) // batch_size)
    load = os.getloadavg()[0]
    result, seconds = common.timed_fit(
        model,
        type(ds)(ds.name, x, y, ds.test_x, ds.test_y, ds.num_classes),
        optax.adam(optax.cosine_decay_schedule(lr, steps)),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        eval_batch_size=500,
        log=lambda line: print(f"{model.name}: {line}", file=sys.stderr, flush=True),
    )
    last = result.history[-1]
    return {
        "model": model.name,
        "dataset": ds.name,
        **{k.removeprefix("test_"): round(float(v), 4) for k, v in last.items() if k.startswith("test_")},
        "train_examples": len(y),
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "train_seconds": round(seconds, 1),
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],
    }


def easy(args) -> list[dict[str, Any]]:
    """vqa_lstm_cnn on easy-VQA (word ids of the training vocabulary, 13 answers)."""
    ds = easy_vqa()
    model = vqa_lstm_cnn(ds.input_shape, ds.num_classes, vocab_size=len(ds.vocab))
    n = 2000 if args.quick else None
    return [_train(model, ds, 1 if args.quick else args.easy_epochs, 64, 1e-3, args.seed, n)]


def clevr(args) -> list[dict[str, Any]]:
    """cnn_mlp and relation_network on the same Sort-of-CLEVR images, the same steps."""
    ds = sort_of_clevr_dataset(20 if args.quick else args.images, 10 if args.quick else 200, seed=args.seed)
    g = (args.g_width,) * 4
    rows = []
    builders = {
        "cnn_mlp": lambda: cnn_mlp(ds.input_shape, ds.num_classes),
        "relation_network": lambda: relation_network(ds.input_shape, ds.num_classes, g_widths=g),
    }
    for model in (builders[name]() for name in args.models):
        row = _train(model, ds, 1 if args.quick else args.clevr_epochs, 64, args.clevr_lr, args.seed)
        rows.append({**row, "images": args.images, "g_widths": list(g) if model.name == "relation_network" else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["easy_vqa", "sort_of_clevr"])
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny sets, one epoch")
    p.add_argument("--easy-epochs", type=int, default=2)
    p.add_argument("--images", type=int, default=9800, help="Sort-of-CLEVR training images (20 questions each)")
    p.add_argument("--clevr-epochs", type=int, default=1)
    p.add_argument("--clevr-lr", type=float, default=1e-3)
    p.add_argument("--g-width", type=int, default=256, help="units of each of g_theta's 4 layers")
    p.add_argument(
        "--models", nargs="+", default=["cnn_mlp", "relation_network"], choices=["cnn_mlp", "relation_network"]
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    rows = []
    if args.only in (None, "easy_vqa"):
        rows += easy(args)
    if args.only in (None, "sort_of_clevr"):
        rows += clevr(args)
    print(
        "| model | dataset | test accuracy | relational | non-relational | paper (rel. / non-rel.) "
        "| examples x epochs |"
    )
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        rel, non = r.get("relational_accuracy"), r.get("nonrelational_accuracy")
        paper = PAPER.get(r["model"])
        print(
            f"| `{r['model']}` | {r['dataset']} | {100 * r['accuracy']:.2f}% "
            f"| {'' if rel is None else f'{100 * rel:.2f}%'} | {'' if non is None else f'{100 * non:.2f}%'} "
            f"| {'' if paper is None else paper['relational'] + ' / ' + paper['nonrelational']} "
            f"| {r['train_examples']} x {r['epochs']} |"
        )
    if args.json:
        for r in rows:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
