"""Image captioning on shapes_captions: Show and Tell (Vinyals et al. 2015) against Show, Attend and Tell (Xu et al.
2015, soft attention), same CNN, same data, trained through ``train.fit``; held-out BLEU-1..4 of greedy and beam
search captions (all true captions of a scene as references) and the rate of exact canonical captions.

    python bench/captioning.py --out runs/captioning            # ~17 min on 2 loaded CPU cores
    python bench/captioning.py --quick --out /tmp/captioning    # a smoke run

Data: ``data.shapes_captions`` (seeded scenes of 1-4 shapes; test scenes are new draws of the same grammar). Writes
captions_<model>.png and metrics.jsonl to --out and prints one JSON line per model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common
import numpy as np
import optax

from jaxnets import viz
from jaxnets.data.captions import CaptionDataset, decode_caption, shapes_captions
from jaxnets.models import beam_search, bleu, greedy_decode, show_attend_tell, show_tell

BUILDERS = {"show_tell": show_tell, "show_attend_tell": show_attend_tell}


def scores(model, params, state, ds: CaptionDataset, beam: int) -> dict:
    """Greedy and beam-search captions of the test images: corpus BLEU-1..4 against all true captions, exact match
    with the canonical caption, the rate of true captions (any reference) and the mean length in words."""
    out = {}
    truth = [decode_caption(c, ds.vocab) for c in ds.test_y]
    for kind in ("greedy", f"beam{beam}"):
        tokens = []
        for start in range(0, len(ds.test_x), 250):
            x = ds.test_x[start : start + 250]
            if kind == "greedy":
                tokens.append(np.asarray(greedy_decode(model, params, state, x)))
            else:
                tokens.append(np.asarray(beam_search(model, params, state, x, beam=beam)[0]))
        hyps = [decode_caption(c, ds.vocab) for c in np.concatenate(tokens)]
        b = bleu(ds.test_references, hyps)
        out[kind] = {
            **{f"bleu{n + 1}": round(100 * v, 1) for n, v in enumerate(b)},
            "exact": round(100 * float(np.mean([h == t for h, t in zip(hyps, truth, strict=True)])), 1),
            "true": round(100 * float(np.mean([h in r for h, r in zip(hyps, ds.test_references, strict=True)])), 1),
            "words": round(float(np.mean([len(h.split()) for h in hyps])), 2),
        }
    out["truth_words"] = round(float(np.mean([len(t.split()) for t in truth])), 2)
    return out


def run(name: str, ds: CaptionDataset, args: argparse.Namespace, out: Path) -> dict:
    """Train one model through ``train.fit`` (Adam, clipping at global norm 5, cosine decay); its test figures."""
    model = BUILDERS[name](ds.input_shape, ds.num_classes, embed=args.embed, hidden=args.hidden)
    steps = len(ds.train_x) // args.batch_size * args.epochs
    optimizer = optax.chain(optax.clip_by_global_norm(5.0), optax.adam(optax.cosine_decay_schedule(args.lr, steps)))
    result, seconds = common.timed_fit(model, ds, optimizer, epochs=args.epochs, batch_size=args.batch_size)
    params, state = result.state.params, result.state.model_state
    last = result.history[-1]
    figure = viz.save_captions(
        out / f"captions_{name}.png", model, params, state, ds.test_x[:6], ds.test_y[:6], ds.vocab
    )
    return {
        "model": name,
        "test_nll": round(last["test_nll"], 4),
        "test_token_accuracy": round(100 * last["test_accuracy"], 2),
        "train_loss": round(last["train_loss"], 4),
        **scores(model, params, state, ds, args.beam),
        "epochs": args.epochs,
        "train_images": len(ds.train_x),
        "test_images": len(ds.test_x),
        "seconds": round(seconds, 1),
        "figure": str(figure),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/captioning")
    p.add_argument("--quick", action="store_true", help="a smoke run: 1 epoch on 512 scenes")
    p.add_argument("--models", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    p.add_argument("--train", type=int, default=5_000, help="the first scenes of shapes_captions' 10k")
    p.add_argument("--test", type=int, default=1_000)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--beam", type=int, default=3)
    args = p.parse_args()
    if args.quick:
        args.train, args.test, args.epochs = 512, 128, 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = shapes_captions(args.train, args.test)
    for name in args.models:
        record = run(name, ds, args, out)
        print(json.dumps(record), flush=True)
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
