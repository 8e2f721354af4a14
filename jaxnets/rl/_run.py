"""Training runs on disk through the training loop's run-directory machinery: many seeds at once (``vmap``), compiled
chunks of updates, a locked workdir, and after every chunk an atomic, checksummed checkpoint of the whole agent state
(parameters, optimiser, environments, replay buffer, PRNG keys) that also carries the run's metrics records, from
which ``metrics.jsonl`` is rewritten on resume; so a resumed run continues bit for bit where the stopped one did."""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.rl._dqn import dqn
from jaxnets.rl._ppo import ppo
from jaxnets.rl._reinforce import reinforce
from jaxnets.rl.common import Agent, evaluate, train
from jaxnets.rl.envs import make
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import metrics as mw
from jaxnets.train import safety
from jaxnets.train.rundir import writing

AGENTS: dict[str, Callable[..., Agent]] = {
    "ppo": ppo,
    "dqn": dqn,
    "double_dqn": lambda env, **kw: dqn(env, double=True, **kw),
    "reinforce": reinforce,
}
CHECKPOINT = ckpt.CHECKPOINT
METRICS = mw.METRICS
Record = dict[str, Any]
AGAIN = "run the same command again to continue"  # (how an interrupted or failed run resumes)


def make_agent(agent: str, env: str, **config) -> Agent:
    """The agent called ``agent`` (one of ``AGENTS``) for the environment called ``env``, with ``config`` overrides."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; known: {sorted(AGENTS)}")
    return AGENTS[agent](make(env), **config)


def save_runner(path: str | os.PathLike, runner: dict, config: dict[str, Any], records: Sequence[Record] = ()) -> None:
    """Checkpoint a (batched) runner pytree to ``path`` with ``train``'s checkpoint writer (atomic, SHA-256
    checksummed), with the run's ``config`` and metrics ``records``; PRNG keys are stored as their raw key data."""
    ckpt.save_checkpoint(path, _plain(runner), config, {"records": list(records)})


def load_runner(path: str | os.PathLike, like: dict) -> tuple[dict, list[Record]]:
    """The runner saved by ``save_runner`` at ``path``, in the structure, dtypes and key types of ``like``, and its
    metrics records. ``train.CheckpointError`` (one line) if it is missing, corrupt or of another agent's state."""
    plain, _ = ckpt.load_checkpoint(path, _plain(like))
    runner = jax.tree.map(
        lambda x, ref: (
            jax.random.wrap_key_data(jnp.asarray(x), impl=jax.random.key_impl(ref))
            if _is_key(ref)
            else jnp.asarray(x, ref.dtype)
        ),
        plain,
        like,
    )
    return runner, ckpt.read_extra(path).get("records", [])


def _is_key(x) -> bool:
    return jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def _plain(runner: dict) -> dict:
    """``runner`` with its PRNG keys as their raw key data (what a checkpoint can hold)."""
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, runner)


@functools.lru_cache(maxsize=8)
def _init(agent: Agent) -> Callable[[jax.Array], dict]:
    """Every seed's fresh runner, compiled once per process."""
    return jax.jit(jax.vmap(agent.init))


@functools.lru_cache(maxsize=8)
def _chunk(agent: Agent, num_updates: int) -> Callable[[dict], tuple[dict, dict]]:
    """``num_updates`` updates of every seed's runner, compiled once per process (a resumed run reuses it)."""
    return jax.jit(jax.vmap(lambda r: train(agent, None, num_updates, runner=r)))


@functools.lru_cache(maxsize=8)
def _evaluator(agent: Agent, episodes: int) -> Callable[[Any, jax.Array], jax.Array]:
    """Every seed's greedy returns over ``episodes`` episodes, compiled once per process."""
    act = agent.act
    return jax.jit(jax.vmap(lambda p, k: evaluate(agent.env, lambda o, kk: act(p, o, kk), k, episodes)))


@safety.scoped  # the workdir lock and the signal handlers taken inside are released when run returns or raises
def run(
    agent: Agent,
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] = (0,),
    log_every: int | None = None,
    eval_episodes: int = 100,
    overwrite: bool = False,
    config: dict[str, Any] | None = None,
) -> dict:
    """Train ``agent`` once per seed (all seeds under one ``vmap``) into ``out_dir``, resuming from its checkpoint.

    Every ``log_every`` updates (default: ~50 chunks per run) the whole state is checkpointed (``checkpoint.msgpack``,
    written atomically with a checksum) together with the run's records, then one line per seed is appended to
    ``metrics.jsonl`` (the chunk's mean episode return and length and losses, and the environment steps so far). A
    run in a workdir holding a checkpoint continues it (``overwrite``: starts afresh over it), its metrics.jsonl
    rewritten from the checkpoint's records, so a run killed at any point resumes without lost or repeated lines and
    ends with the uninterrupted run's state. ``config`` (JSON-able: e.g. the options the agent was made with) is
    saved with the agent's name, environment, size, ``seeds`` and ``log_every``; resuming with another is refused.

    The workdir is locked (``train.safety.WorkdirBusy`` for a second run on it); ``train.CheckpointError`` for a
    corrupt checkpoint or another config's; Ctrl-C or SIGTERM finishes the current chunk, checkpoints it and raises
    ``train.safety.TrainingInterrupted``. At the end the greedy policy of each seed plays ``eval_episodes`` episodes;
    returns ``{"eval_return": per-seed means}``.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    log_every = log_every or max(1, math.ceil(agent.num_updates / 50))
    saved_config = {  # as it reads back from JSON (tuples become lists)
        "agent": agent.name,
        "env": agent.env.name,
        "num_updates": agent.num_updates,
        "steps_per_update": agent.steps_per_update,
        "seeds": [int(s) for s in seeds],
        "log_every": log_every,
        **json.loads(json.dumps(config or {})),
    }
    workdir: Path = safety.hold(safety.lock_workdir(out_dir))  # WorkdirError / WorkdirBusy in one line
    stop = safety.hold(safety.signals_stop())
    path, metrics_path = workdir / CHECKPOINT, workdir / METRICS
    resume = path.exists() and not overwrite
    if resume:
        _check_config(workdir, ckpt.read_config(path), saved_config)  # CheckpointError if corrupt, before compiling
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    runner = _init(agent)(keys)
    records: list[Record] = []
    if resume:
        runner, records = load_runner(path, runner)
    mw.write_metrics(metrics_path, records)  # exactly the records of the checkpoint's updates
    done = int(np.asarray(runner["update"])[0])
    saved = f"{path} (update {done})" if resume else None
    while done < agent.num_updates:
        runner, metrics = _chunk(agent, min(log_every, agent.num_updates - done))(runner)
        done = int(np.asarray(runner["update"])[0])
        new = _records(metrics, seeds, done)
        records += new
        with writing(f"the checkpoint of update {done} to {path}", saved, AGAIN):  # a full disk: the old one kept
            save_runner(path, runner, saved_config, records)  # the chunk's state and records: one atomic fact
        saved = f"{path} (update {done})"
        with writing(str(metrics_path), saved, AGAIN):
            for record in new:
                mw.append_metrics(metrics_path, record)
        if stop.signum is not None and done < agent.num_updates:
            raise safety.TrainingInterrupted(
                f"interrupted after update {done} of {agent.num_updates}; checkpoint saved in {workdir}",
                step=done,
                epoch=0,
                saved=path,
                signum=stop.signum,
            )
    returns = _evaluator(agent, eval_episodes)(runner["params"], jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys))
    return {"eval_return": np.asarray(returns).mean(axis=1).tolist()}


def _check_config(out_dir: Path, saved: dict[str, Any], now: dict[str, Any]) -> None:
    """``CheckpointError`` naming every entry in which the checkpoint's config and this run's differ."""
    diff = ckpt.config_difference(saved, now)
    if diff:
        raise ckpt.CheckpointError(
            f"the checkpoint in {out_dir} was made with another config ({diff}); resume with the same settings, "
            "use `overwrite` to start afresh over it, or choose another workdir"
        )


def _records(metrics: dict, seeds: Sequence[int], done: int) -> list[Record]:
    """One record per seed of a chunk's per-update metrics: their means (the environment steps: the last)."""
    rows = []
    for i, seed in enumerate(seeds):
        row: Record = {"seed": int(seed), "update": done}
        for name, values in metrics.items():
            v = np.asarray(values[i], np.float64)
            row[name] = float(v[-1]) if name == "env_steps" else _mean_or_none(v)
        rows.append(row)
    return rows


def _mean_or_none(v: np.ndarray) -> float | None:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None
