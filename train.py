"""`python train.py ...` is `jaxnets-train ...`: the command lives in jaxnets/cli/train.py (see --help)."""

from jaxnets.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
