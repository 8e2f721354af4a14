"""``jaxnets-predict --workdir W FILE...`` (also ``python -m jaxnets.cli.predict``): the most likely classes of
images (PNG/JPEG) or ``.npy`` arrays under a trained run's model (``jaxnets.load``), without loading a dataset."""

from __future__ import annotations

import argparse
import sys

from jaxnets.cli._common import check_platforms, fail, invocation, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.predict", "jaxnets-predict", "jaxnets-predict")  # module, console script, fallback


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line's parser."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Print the top classes, with their probabilities, of each "
        "example in FILEs under the model trained in a workdir (jaxnets-train). Images are "
        "converted to the model's channels and resized to its dataset's height and width; "
        ".npy arrays hold one example or a batch, as the dataset stores them (uint8 pixels).",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="a .png, .jpg, .jpeg or .npy file")
    p.add_argument(
        "--workdir",
        required=True,
        metavar="DIR",
        help="the run's folder (weights.safetensors, or checkpoint.msgpack with config.json)",
    )
    p.add_argument("--top", type=int, default=3, metavar="K", help="classes shown per example (default 3)")
    p.add_argument(
        "--invert",
        action="store_true",
        help="images as 255 - pixels (a dark digit drawn on white paper, for MNIST's light digits on black)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Print ``FILE[i]: class (probability), ...`` per example; a bad workdir or file is one line on stderr and exit
    status 2."""
    prog = prog_name(invocation(*COMMAND))
    args = parser(prog).parse_args(argv)
    if args.top < 1:
        return fail(prog, f"--top must be >= 1; got {args.top}")
    from jaxnets.train import load, read_examples

    try:
        check_platforms()
        trained = load(args.workdir)
        if trained.preprocessing is None:
            raise ValueError(f"the model in {args.workdir} reads token ids, not images or arrays: use jaxnets-sample")
        batches = [(path, read_examples(path, trained.preprocessing, args.invert)) for path in args.files]
        names = trained.class_names
        lines = []
        for path, raw in batches:
            probabilities = trained.probabilities(raw)
            for i, p in enumerate(probabilities):
                top = p.argsort()[::-1][: args.top]
                label = f"{path}[{i}]" if len(probabilities) > 1 else str(path)
                shown = ", ".join(f"{names[c] if names else c} ({p[c]:.4f})" for c in top)
                lines.append(f"{label}: {shown}")
    except ValueError as e:
        return fail(prog, to_flags(one_line(e), ("workdir", "top", "invert")))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
