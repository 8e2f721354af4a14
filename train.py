#!/usr/bin/env python3
"""Train a jaxnets model: flags -> TrainConfig -> jaxnets.train.run. See `python train.py --help`."""

from __future__ import annotations

import argparse
import shlex
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
    p.add_argument("--dataset", default="mnist", help="dataset: embedded (xor, spirals), a TFDS name "
                   "(see --list-datasets), or text:FILE (characters of a UTF-8 file, for char_lstm); default mnist")
    p.add_argument("--epochs", type=int, help="passes over the training set (default: per model)")
    p.add_argument("--batch-size", type=int, help="examples per step; the last partial batch is dropped (default 128)")
    p.add_argument("--optimizer", help="sgd, momentum, nesterov, adagrad, rmsprop, adam or lamb (Adam with "
                   "layer-wise relative steps) (default: per model)")
    p.add_argument("--lr", type=float, help="(peak) learning rate (default: per model)")
    p.add_argument("--momentum", type=float, help="momentum of the momentum/nesterov optimizers (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay added to the gradients (default 0)")
    p.add_argument("--schedule", help="learning-rate schedule: constant, or cosine decay to 0 (default: per model)")
    p.add_argument("--normalisation", help="standard (mean 0, std 1), lenet1998 (background -0.1, foreground 1.175), "
                   "unit ([0, 1]) or none (default: lenet1998 for lenet5, unit for the autoencoders and the rbm, "
                   "standard otherwise)")
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
    p.add_argument("--debug", action="store_true", help="on an error, show the Python traceback instead of one line")
    g = p.add_argument_group("several devices and hosts", "Every visible device is used: each batch (--batch-size "
                             "is the global batch, a multiple of the device count) is split over them. For several "
                             "processes (hosts), start train.py on each with the same flags plus these; under Slurm "
                             "(srun), Open MPI (mpirun) or on a Cloud TPU pod they are detected.")
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, which the others connect to")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the run")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1 (0 writes the workdir)")
    g.add_argument("--shard-params", action="store_true", help="split the large parameter and optimiser-state "
                   "arrays over the devices instead of replicating them (FSDP-like: less memory per device, more "
                   "communication)")
    g.add_argument("--distributed", choices=("auto", "on", "off"), default="auto",
                   help="join the others with jax.distributed: auto (when the flags above are given or a launcher is "
                   "detected), on (always: let JAX detect the cluster), off (never)")
    p.add_argument("--list-models", action="store_true", help="list the models and exit")
    p.add_argument("--list-datasets", action="store_true", help="list the datasets and exit")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, then list or train. Errors become one line on stderr (a traceback with --debug) and exit status 2
    (bad usage or input: flags, data files, the workdir's checkpoint) or 1 (a failure during the run); Ctrl-C saves
    a checkpoint and exits with 130."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    from jaxnets import models
    from jaxnets.data import DATASETS

    if args.list_models or args.list_datasets:
        table = models.REGISTRY if args.list_models else {k: (None, v) for k, v in DATASETS.items()}
        for name, (_, description) in table.items():
            print(f"{name:<18}{description}")
        return 0
    from jaxnets.data import DataUnavailable
    from jaxnets.train import CheckpointError, TrainConfig, run, safety
    from jaxnets.train.distributed import initialize

    try:  # before any other JAX computation
        joined = initialize(args.coordinator, args.num_processes, args.process_id, args.distributed)
    except ValueError as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    if joined:
        print(joined, flush=True)
    cluster = ("coordinator", "num_processes", "process_id", "distributed", "shard_params")
    options = {k: v for k, v in vars(args).items()
               if k not in ("list_models", "list_datasets", "no_progress", "debug", *cluster)}
    try:
        run(TrainConfig(**options), progress=not args.no_progress, shard_params=args.shard_params,
            log=print if not joined or joined.startswith("process 0 ") else lambda line: None)
    except safety.TrainingInterrupted as e:  # Ctrl-C: the step finished, its checkpoint saved
        print(f"{e}: resume with `{_resume_command(argv)}`" if e.saved else str(e), file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # before training started, or a second Ctrl-C
        print(f"interrupted; any checkpoint saved before is intact: resume with `{_resume_command(argv)}`",
              file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        usage = (ValueError, DataUnavailable, CheckpointError)  # (safety.WorkdirError is a ValueError)
        known = (*usage, safety.TrainingDiverged, safety.CheckpointWriteError, safety.WorkdirBusy, OSError)
        text = " ".join(str(e).split()) or type(e).__name__
        if not isinstance(e, known):
            text = f"unexpected {type(e).__name__}: {text[:500]} (run with --debug for the traceback)"
        print(f"train.py: error: {text}", file=sys.stderr)
        return 2 if isinstance(e, usage) else 1
    return 0


def _resume_command(argv: list[str]) -> str:
    """The command line that continues this run: the same flags with --resume (and without --overwrite)."""
    args = [a for a in argv if a != "--overwrite"]
    return shlex.join(["python", "train.py", *args, *([] if "--resume" in args else ["--resume"])])


if __name__ == "__main__":
    sys.exit(main())
