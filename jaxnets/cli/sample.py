"""``jaxnets-sample`` (also ``python -m jaxnets.cli.sample``): text from a char_lstm trained on ``--dataset
text:FILE``::

    jaxnets-sample --workdir runs/char_lstm-text-README.md --prompt "The " --length 300 --temperature 0.8

A run trained with ``--tokens jamo`` is sampled jamo by jamo and printed recomposed into Hangul syllables.

A handwriting run (``--model handwriting --dataset hershey``) draws one glyph per character of the prompt as pen
strokes to a PNG, with Graves' sampling ``--bias``::

    jaxnets-sample --workdir runs/handwriting-hershey --prompt ABC123 --bias 1 --out strokes.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxnets.cli._common import check_platforms, fail, invocation, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.sample", "jaxnets-sample", "jaxnets-sample")  # module, console script, fallback
PARAMS = ("workdir", "prompt", "length", "temperature", "seed")  # the flags, named as the library's parameters


def main(argv: list[str] | None = None) -> int:
    """Sample and print the prompt and its continuation. Errors (bad flags, JAX_PLATFORMS, no usable run in
    --workdir, a prompt outside the vocabulary): one line on stderr, exit status 2."""
    prog = prog_name(invocation(*COMMAND))
    p = argparse.ArgumentParser(
        prog=prog, description="Sample text from a char_lstm trained by jaxnets-train on --dataset text:FILE."
    )
    p.add_argument("--workdir", required=True, help="the run's folder (holding checkpoint.msgpack)")
    p.add_argument("--prompt", help="text to continue (default: a newline, or the vocabulary's first character)")
    p.add_argument(
        "--length",
        type=int,
        default=300,
        help="tokens to generate: characters, or jamo for a run on jamo (default 300)",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="softmax temperature, a finite number >= 0; 0 = greedy (default 0.8)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--bias", type=float, default=0.5, help="handwriting: sampling bias b >= 0 (Graves 2013; 0.5)")
    p.add_argument("--out", help="handwriting: the PNG to draw the strokes to (default WORKDIR/strokes.png)")
    args = p.parse_args(argv)
    if _handwriting_run(args.workdir):
        try:
            check_platforms()
            path = _draw_strokes(args.workdir, args.prompt, args.bias, args.seed, args.out)
        except ValueError as e:  # (models.sample_strokes' message on the bias starts with its name)
            return fail(prog, to_flags(one_line(e), PARAMS, param="bias"))
        sys.stdout.write(f"wrote {path}\n")
        return 0
    import jax

    from jaxnets.train import CheckpointError, load_text_run, sample_text
    from jaxnets.train.sampling import check_temperature

    try:
        check_temperature(args.temperature)
        check_platforms()
        model, params, state, vocab = load_text_run(args.workdir)
        prompt = args.prompt if args.prompt is not None else ("\n" if "\n" in vocab else vocab[0])
        text = sample_text(
            model, params, state, vocab, prompt, args.length, jax.random.PRNGKey(args.seed), args.temperature
        )
    except (ValueError, CheckpointError) as e:
        return fail(prog, to_flags(one_line(e), PARAMS, param=getattr(e, "param", None)))
    sys.stdout.write(prompt + text + "\n")
    return 0


def _handwriting_run(workdir: str) -> bool:
    """Whether ``workdir`` holds a run of the handwriting model (as its config.json says)."""
    from jaxnets.train.config import RUN_RECORD

    try:
        return json.loads((Path(workdir) / RUN_RECORD).read_text(encoding="utf-8"))["config"]["model"] == "handwriting"
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _draw_strokes(workdir: str, prompt: str | None, bias: float, seed: int, out: str | None) -> Path:
    """One glyph per character of ``prompt`` (default: every glyph of the dataset) sampled from a handwriting run
    and drawn to ``out`` (default WORKDIR/strokes.png)."""
    import jax

    from jaxnets import models, viz
    from jaxnets.data.strokes import CHARS
    from jaxnets.data.text import encode
    from jaxnets.train import load

    trained = load(workdir)
    if trained.record["num_classes"] != len(CHARS):
        raise ValueError(f"{workdir}: a model of {trained.record['num_classes']} glyphs, not hershey's {len(CHARS)}")
    text = CHARS if prompt is None else prompt
    key = jax.random.key(seed)
    strokes, valid = models.sample_strokes(trained.model, trained.params, encode(text, CHARS), key, bias)
    titles = [f"{c} (b={bias:g})" for c in text]
    return viz.plot_strokes(out or Path(workdir) / "strokes.png", strokes, valid, titles, columns=12)


if __name__ == "__main__":
    sys.exit(main())
