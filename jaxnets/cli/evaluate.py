"""``jaxnets-evaluate --workdir W [--dataset NAME]`` (also ``python -m jaxnets.cli.evaluate``): the test metrics of
a trained run's model (``jaxnets.load``) on its dataset's test set, prepared with the run's recorded statistics and
evaluated as training evaluates each epoch, so they equal the run's last recorded test metrics (its last epoch's,
or with a validation split the final record's, of the kept parameters)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jaxnets.cli._common import check_platforms, fail, invocation, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.evaluate", "jaxnets-evaluate", "jaxnets-evaluate")  # module, console script, fallback


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line's parser."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Print the test metrics of the model trained in a workdir "
        "(jaxnets-train) and whether they equal the run's last recorded ones "
        "(metrics.jsonl).",
    )
    p.add_argument("--workdir", required=True, metavar="DIR", help="the run's folder")
    p.add_argument(
        "--dataset",
        metavar="NAME",
        help="evaluate on this dataset's test set (default: the run's), "
        "prepared with the run's normalisation statistics",
    )
    p.add_argument("--data-dir", metavar="DIR", help="TFDS data dir (as for jaxnets-train)")
    p.add_argument("--manual-dir", metavar="DIR", help="folder holding the dataset's original files (offline)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    return p


def _last_test(workdir: str) -> dict[str, float] | None:
    """The last test metrics in the run's metrics.jsonl (None if there are none)."""
    from jaxnets.train import METRICS, read_metrics

    records = [r for r in read_metrics(Path(workdir) / METRICS) if any(k.startswith("test_") for k in r)]
    return {k: v for k, v in records[-1].items() if k.startswith("test_")} if records else None


def main(argv: list[str] | None = None) -> int:
    """Print the metrics; exit status 2 for a bad workdir or dataset (one line on stderr), 1 if the run's own test
    set gives other metrics than it last recorded."""
    prog = prog_name(invocation(*COMMAND))
    args = parser(prog).parse_args(argv)
    from jaxnets.data import DataUnavailable
    from jaxnets.train import evaluate_trained, load

    try:
        check_platforms()
        trained = load(args.workdir)
        metrics = evaluate_trained(trained, args.dataset, args.data_dir, args.manual_dir)
    except (ValueError, DataUnavailable) as e:
        return fail(prog, to_flags(one_line(e), ("workdir", "dataset", "data_dir", "manual_dir")))
    if args.json:
        print(json.dumps(metrics))
    else:
        print("  ".join(f"{k} {v:.6g}" for k, v in metrics.items()))
    own = args.dataset in (None, trained.record["dataset"])
    last = _last_test(args.workdir) if own else None
    if last is None:
        return 0
    if last == metrics:
        print(f"equal to the run's last recorded test metrics ({args.workdir}/metrics.jsonl)", file=sys.stderr)
        return 0
    print(f"differ from the run's last recorded test metrics: {json.dumps(last)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
