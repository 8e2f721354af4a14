"""``jaxnets-train`` (also ``python train.py``, ``python -m jaxnets.cli.train``): flags -> ``TrainConfig`` ->
``jaxnets.train.run``. The config flags are made from ``TrainConfig``'s fields (their metadata holds the help);
the cluster flags and ``--config``, ``--print-config``, ``--no-progress``, ``--debug``, ``--list-*`` are the
command's own."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import types
import typing
from typing import Any

from jaxnets.cli._common import check_platforms, fail, flag, invocation, model_arg, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.train", "jaxnets-train", "python train.py")  # module, console script, fallback
EPILOG = """Offline: pass --manual-dir (or set JAXNETS_MANUAL_DIR) to a folder holding the dataset's original files
(for mnist: train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
t10k-labels-idx1-ubyte.gz). Each epoch writes WORKDIR/checkpoint.msgpack, metrics.jsonl and curves.png; config.json
records the run (its resolved config, versions and devices) and --config WORKDIR/config.json runs it again.
Defaults of the flags left unset: {defaults}"""
CLUSTER = ("coordinator", "num_processes", "process_id", "distributed", "shard_params")


def _defaults() -> str:
    """The per-model and per-dataset defaults, for --help."""
    from jaxnets.train.config import BASE, DATASET_DEFAULTS, MODEL_DEFAULTS

    def fmt(d: dict) -> str:
        return " ".join(f"{k}={v}" for k, v in d.items())

    table = {"all": BASE, **MODEL_DEFAULTS, **DATASET_DEFAULTS}
    return "; ".join(f"{name}: {fmt(d)}" for name, d in table.items() if d)


def _kind(annotation: Any) -> Any:
    """The type a field's flag parses: ``int | None`` -> int."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    return typing.get_origin(annotation) or annotation


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ``TrainConfig`` field, its help from the field's metadata. Unset flags stay out of the
    namespace (``argparse.SUPPRESS``), so that ``--config`` can fill them."""
    from jaxnets.train import TrainConfig
    from jaxnets.train.config import BASE

    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta, kind = f.metadata, _kind(hints[f.name])
        text = meta["help"]
        if "choices" in meta:
            text += f"; one of {', '.join(meta['choices'])}"
        if f.name in BASE:
            text += " (default: per model and dataset, listed below)"
        elif f.default is not None and kind not in (bool, dict):
            text += f" (default {f.default})"
        common: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        name = flag(meta.get("flag", f.name))
        if kind is bool:
            parser.add_argument(name, action="store_true", **common)
        elif kind is dict:
            parser.add_argument(name, action="append", type=model_arg, metavar=meta.get("metavar"), **common)
        else:
            parser.add_argument(name, type=kind, metavar=meta.get("metavar"), **common)


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line's parser."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a jaxnets model on a dataset and evaluate it after every epoch.",
        epilog=EPILOG.format(defaults=_defaults()),
    )
    add_config_flags(p)
    p.add_argument(
        "--config",
        metavar="FILE.json",
        help="run from a JSON file: a run's config.json, or an object "
        "of the fields above (by their names: batch_size, model_args, ...); flags given override it",
    )
    p.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    p.add_argument("--no-progress", action="store_true", help="no per-step progress bar")
    p.add_argument("--debug", action="store_true", help="on an error, show the Python traceback instead of one line")
    g = p.add_argument_group(
        "several devices and hosts",
        "Every visible device is used: each batch (--batch-size "
        "is the global batch, a multiple of the device count) is split over them. For several "
        "processes (hosts), start the command on each with the same flags plus these; under "
        "Slurm (srun), Open MPI (mpirun) or on a Cloud TPU pod they are detected.",
    )
    g.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, which the others connect to")
    g.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the run")
    g.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1 (0 writes the workdir)")
    g.add_argument(
        "--shard-params",
        action="store_true",
        help="split the large parameter and optimiser-state "
        "arrays over the devices instead of replicating them (FSDP-like: less memory per device, more "
        "communication)",
    )
    g.add_argument(
        "--distributed",
        choices=("auto", "on", "off"),
        default="auto",
        help="join the others with jax.distributed: auto (when the flags above are given or a launcher is "
        "detected), on (always: let JAX detect the cluster), off (never)",
    )
    p.add_argument("--list-models", action="store_true", help="list the models and exit")
    p.add_argument("--list-datasets", action="store_true", help="list the datasets and exit")
    return p


def parse(argv: list[str] | None = None, prog: str = "train.py") -> argparse.Namespace:
    """The command line as a namespace (the config flags only where given)."""
    return parser(prog).parse_args(argv)


def config_of(args: argparse.Namespace) -> Any:
    """The ``TrainConfig`` of the command line: ``--config``'s fields, then the flags given over them (model
    options merged, a flag's winning over the file's)."""
    from jaxnets.train import TrainConfig, load_config

    fields = load_config(args.config) if args.config else {}
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    model_args = {**fields.get("model_args", {}), **dict(given.pop("model_args", []))}
    return TrainConfig.from_dict({**fields, **given, "model_args": model_args})


def translate(error: BaseException) -> str:
    """A library error's message, on one line, naming flags instead of parameters."""
    from jaxnets.train import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    fields = dataclasses.fields(TrainConfig)
    renamed = {f.name: f.metadata["flag"] for f in fields if "flag" in f.metadata}
    return to_flags(
        one_line(error),
        [f.name for f in fields],
        [f.name for f in fields if hints[f.name] is bool],
        renamed,
        getattr(error, "param", None),
    )


def _translated(error: Exception) -> Exception:
    """``error`` (its traceback kept) with its message in the CLI's words, for --debug."""
    if error.args and isinstance(error.args[0], str):
        error.args = (translate(error), *error.args[1:])
    return error


def main(argv: list[str] | None = None) -> int:
    """Parse flags, then list, print the config, or train. Errors become one line on stderr (a traceback with
    --debug) and exit status 2 (bad usage or input: flags, JAX_PLATFORMS, data files, the workdir's checkpoint) or
    1 (a failure during the run); Ctrl-C (or SIGTERM) saves a checkpoint and exits with 130 (143)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = invocation(*COMMAND)
    prog = prog_name(command)
    args = parse(argv, prog)
    from jaxnets import models
    from jaxnets.data import DATASETS

    if args.list_models or args.list_datasets:
        table = models.REGISTRY if args.list_models else {k: (None, v) for k, v in DATASETS.items()}
        for name, (_, description) in table.items():
            print(f"{name:<18}{description}")
        return 0
    from jaxnets.data import DataUnavailable
    from jaxnets.train import CheckpointError, run, safety
    from jaxnets.train.distributed import initialize

    try:
        config = config_of(args)
        if args.print_config:
            print(json.dumps(config.resolved().to_dict(), indent=2))
            return 0
        joined = initialize(args.coordinator, args.num_processes, args.process_id, args.distributed)  # before JAX
        check_platforms()
    except ValueError as e:
        if args.debug:
            raise _translated(e) from None
        return fail(prog, translate(e))
    if joined:
        print(joined, flush=True)
    from jaxnets.accelerators import accelerator_warning

    warning = accelerator_warning()
    if warning:
        print(warning, file=sys.stderr)
    try:
        run(
            config,
            progress=not args.no_progress,
            shard_params=args.shard_params,
            log=print if not joined or joined.startswith("process 0 ") else lambda line: None,
        )
    except safety.TrainingInterrupted as e:  # Ctrl-C or SIGTERM: the step finished, its checkpoint saved
        print(
            f"{translate(e)}: resume with `{resume_command(command, argv)}`" if e.saved else translate(e),
            file=sys.stderr,
        )
        return getattr(e, "exit_code", 130)
    except KeyboardInterrupt:  # before training started
        print(
            f"interrupted; any checkpoint saved before is intact: resume with `{resume_command(command, argv)}`",
            file=sys.stderr,
        )
        return 130
    except Exception as e:
        if args.debug:
            raise _translated(e) from None
        usage = (ValueError, DataUnavailable, CheckpointError)  # (safety.WorkdirError is a ValueError)
        known = (*usage, safety.TrainingDiverged, safety.CheckpointWriteError, safety.WorkdirBusy, OSError)
        text = translate(e)
        if not isinstance(e, known):
            text = f"unexpected {type(e).__name__}: {text[:500]} (run with --debug for the traceback)"
        return fail(prog, text, 2 if isinstance(e, usage) else 1)
    return 0


def resume_command(command: str, argv: list[str]) -> str:
    """The command line that continues this run: the same flags with --resume (and without --overwrite)."""
    args = [a for a in argv if a != "--overwrite"]
    return shlex.join([*shlex.split(command), *args, *([] if "--resume" in args else ["--resume"])])


if __name__ == "__main__":
    sys.exit(main())
