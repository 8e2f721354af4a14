"""Deep Q-networks (Mnih et al. 2015) and Double DQN (van Hasselt et al. 2016), compiled end to end.

Experience replay is a fixed-size pytree of arrays written as a ring (``buffer_add``) and sampled uniformly
(``buffer_sample``); the target network is a second copy of the parameters refreshed every ``target_every``
environment steps; actions are epsilon-greedy with epsilon annealed linearly; the loss is the squared TD error
(CleanRL's and PureJaxRL's choice) or Huber's (the paper's clipping of the error to [-1, 1]). Each iteration steps
``num_envs`` environments once (``vmap``), stores the transitions and, once ``learning_starts`` steps are stored, takes
one gradient step on a replayed minibatch. Adam replaces the paper's RMSProp (as in Dopamine and CleanRL), its learning
rate optionally annealed linearly to 0 (PureJaxRL's ``LR_LINEAR_DECAY``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxnets.rl.common import Agent, apply, check_positive, env_batch_reset, env_batch_step, episode_stats, huber, mlp
from jaxnets.rl.envs import Env

Array = jax.Array


def buffer_init(capacity: int, example: dict) -> dict:
    """An empty replay buffer holding ``capacity`` transitions shaped like ``example`` (a dict of one transition)."""
    check_positive(capacity=capacity)
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return {"data": data, "pos": jnp.int32(0), "size": jnp.int32(0)}


def buffer_add(buffer: dict, batch: dict) -> dict:
    """Write a batch of transitions (leading axis) at the ring position, overwriting the oldest when full."""
    capacity = jax.tree.leaves(buffer["data"])[0].shape[0]
    n = jax.tree.leaves(batch)[0].shape[0]
    idx = (buffer["pos"] + jnp.arange(n)) % capacity
    data = jax.tree.map(lambda d, x: d.at[idx].set(x), buffer["data"], batch)
    return {"data": data, "pos": (buffer["pos"] + n) % capacity, "size": jnp.minimum(buffer["size"] + n, capacity)}


def buffer_sample(buffer: dict, key: Array, batch_size: int) -> dict:
    """``batch_size`` transitions drawn uniformly (with replacement) from those stored."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer["size"], 1))
    return jax.tree.map(lambda d: d[idx], buffer["data"])


def td_targets(
    q_next_target: Array, q_next_online: Array, reward: Array, terminated: Array, gamma: float, double: bool
) -> Array:
    """``r + gamma (1 - terminated) Q_target(s', a*)`` with ``a* = argmax Q_target(s')`` (DQN) or ``argmax
    Q_online(s')`` (Double DQN: the online network chooses, the target network evaluates)."""
    best = jnp.argmax(q_next_online if double else q_next_target, axis=-1)
    q_next = jnp.take_along_axis(q_next_target, best[:, None], axis=-1)[:, 0]
    return reward + gamma * (1.0 - terminated.astype(jnp.float32)) * q_next


def dqn(
    env: Env,
    *,
    total_steps: int = 500_000,
    num_envs: int = 10,
    buffer_size: int = 10_000,
    batch_size: int = 128,
    learning_starts: int = 10_000,
    target_every: int = 500,
    gamma: float = 0.99,
    lr: float = 2.5e-4,
    anneal_lr: bool = True,
    eps_start: float = 1.0,
    eps_end: float = 0.05,
    eps_fraction: float = 0.5,
    double: bool = False,
    huber_delta: float | None = None,
    max_grad_norm: float = 10.0,
    hidden: Sequence[int] = (120, 84),
) -> Agent:
    """A DQN agent for ``env``; ``double=True`` for Double DQN. The defaults are CleanRL's/PureJaxRL's CartPole
    settings (squared TD error) with the learning rate annealed to 0 over the gradient steps (``anneal_lr``), which
    solved CartPole-v1 on 7 of 8 seeds against 6 of 8 without (bench/rl.py).

    ``huber_delta=1`` is the paper's loss (the TD error's gradient clipped to [-1, 1]); ``None`` is the squared error.
    On CartPole (returns ~100, far beyond the clip) Huber(1) makes the rare terminal transitions, the only anchors of
    the values, count no more than any other error, and Q diverges (see bench/rl.py)."""
    check_positive(
        total_steps=total_steps,
        num_envs=num_envs,
        batch_size=batch_size,
        target_every=target_every,
        lr=lr,
        max_grad_norm=max_grad_norm,
    )
    if not 0.0 <= eps_end <= eps_start <= 1.0:
        raise ValueError(f"need 0 <= eps_end <= eps_start <= 1; got eps_start={eps_start}, eps_end={eps_end}")
    if buffer_size < batch_size or buffer_size % num_envs:
        raise ValueError(
            f"buffer_size must be a multiple of num_envs={num_envs} and at least batch_size="
            f"{batch_size}; got {buffer_size}"
        )
    if huber_delta is not None and not huber_delta > 0:
        raise ValueError(f"huber_delta must be positive (or None for the squared error); got {huber_delta}")
    num_updates = total_steps // num_envs
    q_net = mlp(hidden, env.num_actions, activation="relu")
    learn_steps = max(1, num_updates - math.ceil(learning_starts / num_envs) + 1)  # the updates that learn
    schedule = optax.linear_schedule(lr, 0.0, learn_steps) if anneal_lr else lr
    tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule))
    eps_steps = max(1, int(eps_fraction * total_steps))

    def epsilon(env_steps: Array) -> Array:
        return eps_start + (eps_end - eps_start) * jnp.minimum(env_steps / eps_steps, 1.0)

    def init(key: Array) -> dict:
        k_net, k_env, key = jax.random.split(key, 3)
        params = q_net.init(k_net, env.obs_shape)[0]
        env_state, obs = env_batch_reset(env, k_env, num_envs)
        example = {
            "obs": obs[0],
            "action": jnp.int32(0),
            "reward": jnp.float32(0),
            "next_obs": obs[0],
            "terminated": jnp.bool_(False),
        }
        return {
            "params": params,
            "target": params,
            "opt_state": tx.init(params),
            "env_state": env_state,
            "obs": obs,
            "buffer": buffer_init(buffer_size, example),
            "key": key,
            "update": jnp.int32(0),
        }

    def loss_fn(params, target, b):
        q = jnp.take_along_axis(apply(q_net, params, b["obs"]), b["action"][:, None], axis=-1)[:, 0]
        y = td_targets(
            apply(q_net, target, b["next_obs"]),
            apply(q_net, params, b["next_obs"]),
            b["reward"],
            b["terminated"],
            gamma,
            double,
        )
        error = q - jax.lax.stop_gradient(y)
        return jnp.mean(0.5 * jnp.square(error) if huber_delta is None else huber(error, huber_delta))

    def update(runner: dict) -> tuple[dict, dict]:
        key, k_eps, k_rand, k_env, k_sample = jax.random.split(runner["key"], 5)
        env_steps = runner["update"] * num_envs
        greedy = jnp.argmax(apply(q_net, runner["params"], runner["obs"]), axis=-1)
        explore = jax.random.uniform(k_eps, (num_envs,)) < epsilon(env_steps)
        action = jnp.where(explore, jax.random.randint(k_rand, (num_envs,), 0, env.num_actions), greedy)
        env_state, obs, reward, done, info = env_batch_step(env, runner["env_state"], action, k_env)
        buffer = buffer_add(
            runner["buffer"],
            {
                "obs": runner["obs"],
                "action": action,
                "reward": reward,
                "next_obs": info["final_obs"],
                "terminated": info["terminated"],
            },
        )
        env_steps = env_steps + num_envs

        def learn(args):
            params, opt_state = args
            loss, grads = jax.value_and_grad(loss_fn)(
                params, runner["target"], buffer_sample(buffer, k_sample, batch_size)
            )
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        params, opt_state, loss = jax.lax.cond(
            env_steps >= learning_starts,
            learn,
            lambda a: (*a, jnp.float32(jnp.nan)),
            (runner["params"], runner["opt_state"]),
        )
        refresh = env_steps % target_every < num_envs  # crossed a multiple of target_every in this step
        target = jax.tree.map(lambda p, t: jnp.where(refresh, p, t), params, runner["target"])
        metrics = {**episode_stats(info, done), "loss": loss, "epsilon": epsilon(env_steps), "env_steps": env_steps}
        return {
            "params": params,
            "target": target,
            "opt_state": opt_state,
            "env_state": env_state,
            "obs": obs,
            "buffer": buffer,
            "key": key,
            "update": runner["update"] + 1,
        }, metrics

    def act(params, obs: Array, key: Array) -> Array:
        del key
        return jnp.argmax(apply(q_net, params, obs), axis=-1)

    return Agent("double_dqn" if double else "dqn", env, init, update, act, num_envs, num_updates)
