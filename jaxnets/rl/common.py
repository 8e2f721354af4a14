"""What the agents share: their networks (``jaxnets.nn`` layers), discounted returns, GAE, the Huber loss, running a
batch of environments, and evaluation over complete episodes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.rl.envs import Env, EnvState

Array = jax.Array


def mlp(hidden: Sequence[int], out: int, activation: str = "tanh", out_scale: float = 1.0) -> nn.Layer:
    """A multilayer perceptron with orthogonal weights (gain sqrt(2) in hidden layers, ``out_scale`` at the output),
    as in the PPO paper's and baselines' networks."""
    if isinstance(hidden, int) or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive layer widths, e.g. [64, 64]; got {hidden!r}")
    layers = []
    for i, h in enumerate(hidden):
        layers += [
            nn.dense(h, w_init=nn.initializers.orthogonal(math.sqrt(2)), name=f"dense{i}"),
            nn.activation(activation),
        ]
    layers.append(nn.dense(out, w_init=nn.initializers.orthogonal(out_scale), name="out"))
    return nn.serial(*layers)


def apply(net: nn.Layer, params, x: Array) -> Array:
    """A stateless network's output for one observation or a batch of them."""
    single = x.ndim == 1
    y, _ = net.apply(params, {}, x[None] if single else x)
    return y[0] if single else y


def discounted_returns(rewards: Array, dones: Array, gamma: float, last_value: Array | float = 0.0) -> Array:
    """``G_t = r_t + gamma (1 - done_t) G_{t+1}`` backwards over the leading (time) axis, ``G_T = last_value``."""

    def body(g, x):
        r, d = x
        g = r + gamma * (1.0 - d) * g
        return g, g

    _, g = jax.lax.scan(
        body,
        jnp.broadcast_to(jnp.asarray(last_value, jnp.float32), rewards.shape[1:]),
        (rewards, dones.astype(jnp.float32)),
        reverse=True,
    )
    return g


def gae(
    rewards: Array, values: Array, next_values: Array, terminated: Array, dones: Array, gamma: float, lam: float
) -> tuple[Array, Array]:
    """Generalised advantage estimation (Schulman et al. 2016) over the leading time axis; (advantages, returns).

    ``delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t)`` and ``A_t = delta_t + gamma lam (1 - done_t)
    A_{t+1}``: a truncated episode still bootstraps from its final state's value (``next_values``), but no advantage
    flows back across an episode boundary.
    """
    deltas = rewards + gamma * (1.0 - terminated.astype(jnp.float32)) * next_values - values
    adv = discounted_returns(deltas, dones, gamma * lam)
    return adv, adv + values


def huber(x: Array, delta: float = 1.0) -> Array:
    """Huber's loss: ``x^2 / 2`` for ``|x| <= delta``, linear beyond (DQN's clipping of the TD error's gradient)."""
    a = jnp.abs(x)
    return jnp.where(a <= delta, 0.5 * x * x, delta * (a - 0.5 * delta))


def env_batch_reset(env: Env, key: Array, num_envs: int) -> tuple[EnvState, Array]:
    """``num_envs`` fresh environments under ``vmap``."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def env_batch_step(env: Env, state: EnvState, action: Array, key: Array):
    """One step of every environment of a batch under ``vmap`` (each auto-resets where its episode ends)."""
    return jax.vmap(env.step)(state, action, jax.random.split(key, action.shape[0]))


def evaluate(env: Env, act: Callable[[Array, Array], Array], key: Array, num_episodes: int = 100) -> Array:
    """The returns of ``num_episodes`` complete episodes of ``act(obs, key) -> action``, run side by side, each for
    the env's time limit at most (a ``lax.scan`` of ``max_steps`` steps, counting each episode's first end only)."""
    key, k_reset = jax.random.split(key)
    state, obs = env_batch_reset(env, k_reset, num_episodes)

    def body(carry, k):
        state, obs, ret, alive = carry
        k_act, k_env = jax.random.split(k)
        action = jax.vmap(act)(obs, jax.random.split(k_act, num_episodes))
        state, obs, reward, done, _ = env_batch_step(env, state, action, k_env)
        ret = ret + alive * reward
        return (state, obs, ret, alive * (1.0 - done)), None

    zeros = jnp.zeros(num_episodes)
    (_, _, ret, _), _ = jax.lax.scan(body, (state, obs, zeros, zeros + 1.0), jax.random.split(key, env.max_steps))
    return ret


def episode_stats(info: dict, done: Array) -> dict:
    """The mean return and length of the episodes that ended in a batch of steps, and how many ended."""
    done = done.astype(jnp.float32)
    n = done.sum()
    mean = lambda x: jnp.where(n > 0, (x * done).sum() / jnp.maximum(n, 1.0), jnp.nan)  # noqa: E731
    return {
        "episode_return": mean(info["episode_return"]),
        "episode_length": mean(info["episode_length"].astype(jnp.float32)),
        "episodes": n,
    }


class Agent(NamedTuple):
    """A learning agent as pure functions: ``init(key) -> runner`` (a pytree of everything that changes: parameters,
    optimiser and environment states, replay buffer, PRNG key, update count) and ``update(runner) -> (runner,
    metrics)`` (one iteration: act in the environments, learn). ``act(params, obs, key)`` is the evaluation policy
    (greedy). ``num_updates`` iterations of ``steps_per_update`` environment steps each make one training run."""

    name: str
    env: Env
    init: Callable[[Array], dict]
    update: Callable[[dict], tuple[dict, dict]]
    act: Callable[[Any, Array, Array], Array]
    steps_per_update: int
    num_updates: int


def train(
    agent: Agent, key: Array | None, num_updates: int | None = None, runner: dict | None = None
) -> tuple[dict, dict]:
    """``num_updates`` (default: the whole run) iterations of ``agent.update`` under ``lax.scan``, from ``runner`` or
    a fresh ``agent.init(key)`` (``key`` None: ``runner`` is required); returns the final runner and the per-update
    metrics stacked. Jit it, and vmap it over keys for many seeds at once:
    ``jax.jit(jax.vmap(lambda k: train(agent, k)))(keys)``."""
    if runner is None:
        if key is None:
            raise ValueError("train needs a key (to start a fresh runner) or a runner; got neither")
        runner = agent.init(key)
    return jax.lax.scan(lambda r, _: agent.update(r), runner, None, length=num_updates or agent.num_updates)


def check_positive(**values: float) -> None:
    """Raise a one-line error naming the first configuration value that is not positive."""
    for name, v in values.items():
        if not v > 0:
            raise ValueError(f"{name} must be positive; got {v}")
