"""``jaxnets-summary MODEL [--input-shape H,W,C] [--num-classes N] [--depth D] [--model-arg NAME=VALUE]`` (also
``python -m jaxnets.cli.summary``): each layer of a registered model, its output shape and parameters."""

from __future__ import annotations

import argparse
import sys

from jaxnets.cli._common import check_platforms, fail, invocation, model_arg, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.summary", "jaxnets-summary", "jaxnets-summary")  # module, console script, fallback


def main(argv: list[str] | None = None) -> int:
    """Print the table; a bad model, shape or option is one line on stderr and exit status 2."""
    from jaxnets import model_summary, models
    from jaxnets.train import build_model

    prog = prog_name(invocation(*COMMAND))
    p = argparse.ArgumentParser(
        prog=prog,
        description="Print each layer of a registered model: nested name, output "
        "shape, parameters; and the total. Nothing is allocated (jax.eval_shape).",
    )
    p.add_argument("model", help=f"model name, one of: {', '.join(models.REGISTRY)}")
    p.add_argument(
        "--input-shape", help="per-example input shape, comma-separated, e.g. 224,224,3 (default: the model's own)"
    )
    p.add_argument("--num-classes", type=int, help="number of classes (default: the model's own)")
    p.add_argument("--depth", type=int, help="list nested layers down to this depth only (1: top level)")
    p.add_argument(
        "--model-arg",
        action="append",
        type=model_arg,
        default=[],
        metavar="NAME=VALUE",
        help="an option of the model's builder (e.g. batch_norm=true for vgg*); repeatable",
    )
    args = p.parse_args(argv)
    try:
        shape = tuple(int(d) for d in args.input_shape.split(",")) if args.input_shape else None
    except ValueError:
        return fail(prog, f"--input-shape must be comma-separated integers like 224,224,3; got {args.input_shape!r}")
    try:
        check_platforms()
        model = build_model(args.model, shape, args.num_classes, dict(args.model_arg))
        text = model_summary(model, depth=args.depth)
    except ValueError as e:
        params = ("input_shape", "num_classes", "depth", "model_args")
        return fail(
            prog, to_flags(one_line(e), params, renamed={"model_args": "model_arg"}, param=getattr(e, "param", None))
        )
    try:
        print(text)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
