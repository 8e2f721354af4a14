"""``jaxnets-sample`` (also ``python -m jaxnets.cli.sample``): text from a char_lstm trained on ``--dataset
text:FILE``::

    jaxnets-sample --workdir runs/char_lstm-text-README.md --prompt "The " --length 300 --temperature 0.8
"""

from __future__ import annotations

import argparse
import sys

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
    p.add_argument("--length", type=int, default=300, help="characters to generate (default 300)")
    p.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="softmax temperature, a finite number >= 0; 0 = greedy (default 0.8)",
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = p.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
