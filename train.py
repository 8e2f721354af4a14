#!/usr/bin/env python3
"""Train a jaxnets model: flags -> TrainConfig -> jaxnets.train.run. See `python train.py --help`."""

from __future__ import annotations

import argparse
import sys

EPILOG = """Offline: pass --manual-dir (or set JAXNETS_MANUAL_DIR) to a folder holding the dataset's original files
(for mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz). Each epoch writes WORKDIR/checkpoint.msgpack, metrics.jsonl and curves.png.
Defaults of the flags left unset: {defaults}"""


def _defaults() -> str:
    """The per-model and per-dataset defaults, for --help."""
    from jaxnets.train.run import BASE, DATASET_DEFAULTS, MODEL_DEFAULTS

    def fmt(d: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in d.items())

    table = {"all": BASE, **MODEL_DEFAULTS, **DATASET_DEFAULTS}
    return "; ".join(f"{name}: {fmt(d)}" for name, d in table.items() if d)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line as a namespace."""
    p = argparse.ArgumentParser(description="Train a jaxnets model on a dataset and evaluate it after every epoch.",
                                epilog=EPILOG.format(defaults=_defaults()))
    p.add_argument("--model", default="lenet5_modern", help="model name (see --list-models); default lenet5_modern")
    p.add_argument("--dataset", default="mnist", help="dataset: embedded (xor, spirals) or a TFDS name "
                   "(see --list-datasets); default mnist")
    p.add_argument("--epochs", type=int, help="passes over the training set (default: per model)")
    p.add_argument("--batch-size", type=int, help="examples per step; the last partial batch is dropped (default 128)")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam or lamb (Adam with "
                   "layer-wise relative steps) (default: per model)")
    p.add_argument("--lr", type=float, help="(peak) learning rate (default: per model)")
    p.add_argument("--momentum", type=float, help="momentum of the momentum/nesterov optimizers (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay added to the gradients (default 0)")
    p.add_argument("--schedule", help="learning-rate schedule: constant, or cosine decay to 0 (default: per model)")
    p.add_argument("--normalisation", help="standard (mean 0, std 1), lenet1998 (background -0.1, foreground 1.175) "
                   "or none (default: lenet1998 for lenet5, standard otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random: init, shuffling, dropout")
    p.add_argument("--workdir", help="folder for checkpoint.msgpack, metrics.jsonl, curves.png "
                   "(default runs/MODEL-DATASET)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --workdir")
    p.add_argument("--overwrite", action="store_true", help="start afresh even if --workdir holds a checkpoint")
    p.add_argument("--manual-dir", help="folder holding the dataset's original files, for offline preparation "
                   "(or set JAXNETS_MANUAL_DIR)")
    p.add_argument("--data-dir", help="TFDS data dir for the prepared datasets (default: TFDS's own, "
                   "~/tensorflow_datasets)")
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    p.add_argument("--list-models", action="store_true", help="list the models and exit")
    p.add_argument("--list-datasets", action="store_true", help="list the datasets and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, then list or train; errors become one line on stderr and exit status 2 (usage) or 1."""
    args = parse(argv)
    from jaxnets import models
    from jaxnets.data import DATASETS

    if args.list_models or args.list_datasets:
        table = models.REGISTRY if args.list_models else {k: (None, v) for k, v in DATASETS.items()}
        for name, (_, description) in table.items():
            print(f"{name:<18}{description}")
        return 0
    from jaxnets.data import DataUnavailable
    from jaxnets.train import CheckpointError, TrainConfig, run

    options = {k: v for k, v in vars(args).items() if k not in ("list_models", "list_datasets", "no_progress")}
    try:
        run(TrainConfig(**options), progress=not args.no_progress)
    except KeyboardInterrupt:
        print("interrupted: resume with --resume", file=sys.stderr)
        return 130
    except (ValueError, DataUnavailable, CheckpointError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
