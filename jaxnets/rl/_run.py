"""Training runs on disk: many seeds at once (``vmap``), compiled chunks of updates, ``metrics.jsonl`` and a
checkpoint of the whole agent state (parameters, optimiser, environments, replay buffer, PRNG keys) after every
chunk, so that a resumed run continues bit for bit where the interrupted one stopped."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.rl._dqn import dqn
from jaxnets.rl._ppo import ppo
from jaxnets.rl._reinforce import reinforce
from jaxnets.rl.common import Agent, evaluate, train
from jaxnets.rl.envs import make

AGENTS: dict[str, Callable[..., Agent]] = {
    "ppo": ppo,
    "dqn": dqn,
    "double_dqn": lambda env, **kw: dqn(env, double=True, **kw),
    "reinforce": reinforce,
}
CHECKPOINT = "checkpoint.npz"
METRICS = "metrics.jsonl"


def make_agent(agent: str, env: str, **config) -> Agent:
    """The agent called ``agent`` (one of ``AGENTS``) for the environment called ``env``, with ``config`` overrides."""
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; known: {sorted(AGENTS)}")
    return AGENTS[agent](make(env), **config)


def save_runner(path: Path, runner: dict) -> None:
    """Write a (batched) runner pytree to ``path`` (.npz); PRNG keys are stored as their raw key data."""
    leaves = jax.tree.leaves(runner)
    arrays = {f"leaf{i}": np.asarray(jax.random.key_data(x) if _is_key(x) else x) for i, x in enumerate(leaves)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy stub: **arrays is also matched against allow_pickle
    tmp.replace(path)


def load_runner(path: Path, like: dict) -> dict:
    """Read a runner saved by ``save_runner`` into the structure (and key types) of ``like``."""
    leaves, treedef = jax.tree.flatten(like)
    with np.load(path) as f:
        if len(f.files) != len(leaves):
            raise ValueError(f"checkpoint {path} holds {len(f.files)} arrays; this agent's state has {len(leaves)}")
        loaded = [f[f"leaf{i}"] for i in range(len(leaves))]
    out = [
        jax.random.wrap_key_data(jnp.asarray(x), impl=jax.random.key_impl(ref))
        if _is_key(ref)
        else jnp.asarray(x, ref.dtype)
        for x, ref in zip(loaded, leaves, strict=True)
    ]
    for x, ref in zip(out, leaves, strict=True):
        if x.shape != ref.shape:
            raise ValueError(f"checkpoint {path} does not match this agent's state (shape {x.shape} vs {ref.shape})")
    return jax.tree.unflatten(treedef, out)


def _is_key(x) -> bool:
    return jnp.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key)


def run(
    agent: Agent,
    out_dir: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    log_every: int | None = None,
    eval_episodes: int = 100,
) -> dict:
    """Train ``agent`` once per seed (all seeds under one ``vmap``) into ``out_dir``, resuming from its checkpoint.

    Every ``log_every`` updates (default: ~50 chunks per run) appends one line per seed to ``metrics.jsonl`` (the
    chunk's mean episode return and length and losses, and the environment steps so far) and checkpoints. At the end
    the greedy policy of each seed plays ``eval_episodes`` episodes; returns ``{"eval_return": per-seed means}``.
    """
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    log_every = log_every or max(1, math.ceil(agent.num_updates / 50))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
    runner = jax.jit(jax.vmap(agent.init))(keys)
    if (out_dir / CHECKPOINT).exists():
        runner = load_runner(out_dir / CHECKPOINT, runner)
    chunk = jax.jit(jax.vmap(lambda r, n=log_every: train(agent, None, n, runner=r)))
    done = int(np.asarray(runner["update"])[0])
    while done < agent.num_updates:
        if agent.num_updates - done < log_every:  # a shorter last chunk (compiled once more)
            chunk = jax.jit(jax.vmap(lambda r, n=agent.num_updates - done: train(agent, None, n, runner=r)))
        runner, metrics = chunk(runner)
        done = int(np.asarray(runner["update"])[0])
        with open(out_dir / METRICS, "a") as f:
            for i, seed in enumerate(seeds):
                row: dict[str, float | None] = {"seed": int(seed), "update": done}
                for name, values in metrics.items():
                    v = np.asarray(values[i], np.float64)
                    row[name] = float(v[-1]) if name == "env_steps" else _mean_or_none(v)
                f.write(json.dumps(row) + "\n")
        save_runner(out_dir / CHECKPOINT, runner)
    act = agent.act
    returns = jax.jit(jax.vmap(lambda p, k: evaluate(agent.env, lambda o, kk: act(p, o, kk), k, eval_episodes)))(
        runner["params"], jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    )
    return {"eval_return": np.asarray(returns).mean(axis=1).tolist()}


def _mean_or_none(v: np.ndarray) -> float | None:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else None
