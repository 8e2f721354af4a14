"""``jaxnets-rl`` (also ``python -m jaxnets.cli.rl``): train a reinforcement-learning agent on a JAX environment,
every seed at once under ``vmap``, into a workdir that resumes itself::

    jaxnets-rl --agent ppo --env cartpole --seeds 0 1 2 3 --workdir runs/ppo-cartpole
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxnets.cli._common import check_platforms, fail, invocation, model_arg, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.rl", "jaxnets-rl", "jaxnets-rl")  # module, console script, fallback
PARAMS = ("agent", "env", "total_steps", "seeds", "workdir", "overwrite")


def main(argv: list[str] | None = None) -> int:
    """Train, then print the greedy evaluation return of each seed as JSON. Errors, one line on stderr: bad flags, an
    unknown agent or environment, a bad option, a corrupt checkpoint or another config's in the workdir: exit status
    2; a workdir in use by another run, a failed write: 1. Ctrl-C (130) or SIGTERM (143) ends the current chunk and
    checkpoints it: run the same command again to continue."""
    prog = prog_name(invocation(*COMMAND))
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train a jaxnets.rl agent; metrics.jsonl and checkpoint.msgpack "
        "go to --workdir, and running the same command again resumes there.",
    )
    p.add_argument("--agent", default="ppo", help="ppo, dqn, double_dqn or reinforce (default ppo)")
    p.add_argument("--env", default="cartpole", help="cartpole or mountain_car (default cartpole)")
    p.add_argument("--total-steps", type=int, help="environment steps per seed (default: the agent's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds, trained together under vmap (default 0)")
    p.add_argument("--workdir", help="folder for metrics.jsonl and checkpoint.msgpack (default runs/rl-AGENT-ENV)")
    p.add_argument("--overwrite", action="store_true", help="start afresh over the workdir's checkpoint")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=model_arg,
        help="an agent option, e.g. --option lr=1e-3 --option huber_delta=1.0 (repeatable)",
    )
    args = p.parse_args(argv)
    from jaxnets import rl
    from jaxnets.train import CheckpointError, safety

    options = dict(args.option)
    if args.total_steps is not None:
        options["total_steps"] = args.total_steps
    try:
        check_platforms()
        agent = rl.make_agent(args.agent, args.env, **options)
        workdir = args.workdir or f"runs/rl-{args.agent}-{args.env}"
        result = rl.run(agent, workdir, seeds=args.seeds, overwrite=args.overwrite, config={"options": options})
    except (ValueError, TypeError, CheckpointError) as e:  # (safety.WorkdirError is a ValueError)
        return fail(prog, to_flags(one_line(e), PARAMS))
    except (safety.WorkdirBusy, safety.CheckpointWriteError, OSError) as e:
        return fail(prog, to_flags(one_line(e), PARAMS), 1)
    except safety.TrainingInterrupted as e:  # the chunk finished, its checkpoint saved
        print(f"{one_line(e)}: run the same command to continue", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # before training started
        print("interrupted; any checkpoint saved before is intact: run the same command to continue", file=sys.stderr)
        return 130
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
