"""Handwriting-style generation (Graves 2013) on Hershey glyph strokes: the mixture of bivariate Gaussians (K = 20)
against a single Gaussian head (K = 1), same LSTMs, same data; test NLL per point (nats; offsets and pen-up) and
glyphs sampled at a few biases.

    python bench/handwriting.py --out runs/handwriting              # ~10 min on 2 loaded CPU cores
    python bench/handwriting.py --quick --out /tmp/handwriting      # a smoke run

Data: ``data.hershey_strokes(samples)`` (36 glyphs A-Z 0-9 of the futural font, jittered; split by sample: the last
10% of each glyph's copies are the test set). Writes strokes_K20.png / strokes_K1.png and metrics.jsonl to --out and
prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common
import jax
import optax

from jaxnets import data, models, viz

BIASES = (0.0, 0.5, 2.0)


def run(components: int, ds: data.StrokeDataset, args: argparse.Namespace, out: Path) -> dict:
    """Train one head through ``train.fit`` (Adam, clipping at global norm 1, cosine decay); its test metrics."""
    model = models.handwriting(
        ds.input_shape, ds.num_classes, hidden=args.hidden, layers=args.layers, components=components
    )
    steps = len(ds.train_x) // args.batch_size * args.epochs
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(args.lr, steps)))
    result, seconds = common.timed_fit(
        model,
        ds,
        optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    last = result.history[-1]
    glyphs = [ds.chars.index(c) for c in args.chars]
    rows, valids, titles = [], [], []
    for i, bias in enumerate(BIASES):
        key = jax.random.fold_in(jax.random.key(args.seed), i)
        strokes, valid = models.sample_strokes(model, result.state.params, glyphs, key, bias)
        rows.append(strokes)
        valids.append(valid)
        titles += [f"{c} b={bias:g}" for c in args.chars]
    figure = viz.plot_strokes(
        out / f"strokes_K{components}.png",
        jax.numpy.concatenate(rows),
        jax.numpy.concatenate(valids),
        titles,
        columns=len(args.chars),
    )
    return {
        "components": components,
        "test_nll_per_point": round(last["test_nll_per_point"], 4),
        "test_offset_nll_per_point": round(last["test_offset_nll_per_point"], 4),
        "train_loss": round(last["train_loss"], 4),
        "epochs": args.epochs,
        "hidden": args.hidden,
        "layers": args.layers,
        "train_sequences": len(ds.train_x),
        "test_sequences": len(ds.test_x),
        "seconds": round(seconds, 1),
        "figure": str(figure),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/handwriting")
    p.add_argument("--quick", action="store_true", help="a smoke run: 2 epochs of a small model on less data")
    p.add_argument("--components", type=int, nargs="+", default=[20, 1])
    p.add_argument("--samples", type=int, default=100, help="jittered copies of each glyph (90%% train)")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--chars", default="AKRS38")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.samples, args.hidden, args.epochs = 20, 32, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = data.hershey_strokes(samples=args.samples, seed=args.seed)
    for components in args.components:
        record = run(components, ds, args, out)
        print(json.dumps(record), flush=True)
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
