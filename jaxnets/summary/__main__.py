"""``python -m jaxnets.summary MODEL [--input-shape H,W,C] [--num-classes N] [--depth D]``: a model's layers."""

from __future__ import annotations

import argparse
import sys

from jaxnets import models
from jaxnets.summary import model_summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxnets.summary",
                                description="Print each layer of a registered model: nested name, output shape, "
                                            "parameters; and the total. Nothing is allocated (jax.eval_shape).")
    p.add_argument("model", help=f"model name, one of: {', '.join(models.REGISTRY)}")
    p.add_argument("--input-shape", help="per-example input shape, comma-separated, e.g. 224,224,3 "
                   "(default: the model's own)")
    p.add_argument("--num-classes", type=int, help="number of classes (default: the model's own)")
    p.add_argument("--depth", type=int, help="list nested layers down to this depth only (1: top level)")
    args = p.parse_args(argv)
    try:
        shape = tuple(int(d) for d in args.input_shape.split(",")) if args.input_shape else None
    except ValueError:
        p.error(f"--input-shape must be comma-separated integers like 224,224,3; got {args.input_shape!r}")
    try:
        model = models.build(args.model, shape, args.num_classes)
        text = model_summary(model, depth=args.depth)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        print(text)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
