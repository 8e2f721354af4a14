"""REINFORCE with a learned baseline (Williams 1992; Sutton and Barto 2018, section 13.4), compiled end to end.

Each iteration plays ``num_envs`` complete episodes side by side (a ``lax.scan`` of the time limit's length, each
episode masked after it ends), computes the discounted return ``G_t`` of every step, and follows the gradient
``sum_t (G_t - b(s_t)) grad log pi(a_t | s_t)`` (averaged over the live steps; the ``gamma^t`` factor of the
episodic theorem dropped, as in practice), while the baseline ``b``, a value network, regresses on ``G_t``. The
baseline leaves the gradient unbiased and cuts its variance. Environment steps count the live steps only.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax

from jaxnets.rl.common import (
    Agent,
    apply,
    check_positive,
    discounted_returns,
    env_batch_reset,
    env_batch_step,
    episode_stats,
    mlp,
)
from jaxnets.rl.envs import Env

Array = jax.Array


def reinforce(
    env: Env,
    *,
    total_steps: int = 1_000_000,
    num_envs: int = 8,
    gamma: float = 0.99,
    lr: float = 1e-3,
    value_lr: float = 1e-3,
    hidden: Sequence[int] = (64, 64),
) -> Agent:
    """A REINFORCE-with-baseline agent for ``env``; one iteration = ``num_envs`` episodes (``env.max_steps`` steps
    of each environment are simulated, the steps after an episode's end masked out)."""
    check_positive(total_steps=total_steps, num_envs=num_envs, lr=lr, value_lr=value_lr)
    steps = env.max_steps * num_envs
    num_updates = total_steps // steps
    if num_updates < 1:
        raise ValueError(f"total_steps must be at least num_envs * the time limit = {steps}; got {total_steps}")
    policy = mlp(hidden, env.num_actions, out_scale=0.01)
    baseline = mlp(hidden, 1)
    tx = optax.multi_transform(
        {"policy": optax.adam(lr), "baseline": optax.adam(value_lr)}, {"policy": "policy", "baseline": "baseline"}
    )

    def init(key: Array) -> dict:
        k_pi, k_b, key = jax.random.split(key, 3)
        params = {"policy": policy.init(k_pi, env.obs_shape)[0], "baseline": baseline.init(k_b, env.obs_shape)[0]}
        return {
            "params": params,
            "opt_state": tx.init(params),
            "key": key,
            "update": jnp.int32(0),
            "env_steps": jnp.int32(0),
        }

    def loss_fn(params, traj, returns, alive):
        logp = jnp.take_along_axis(
            jax.nn.log_softmax(apply(policy, params["policy"], traj["obs"])), traj["action"][..., None], axis=-1
        )[..., 0]
        b = apply(baseline, params["baseline"], traj["obs"])[..., 0]
        n = alive.sum()
        advantage = jax.lax.stop_gradient(returns - b)
        policy_loss = -jnp.sum(alive * logp * advantage) / n
        baseline_loss = jnp.sum(alive * jnp.square(returns - b)) / n
        return policy_loss + baseline_loss, {"policy_loss": policy_loss, "baseline_loss": baseline_loss}

    def update(runner: dict) -> tuple[dict, dict]:
        params = runner["params"]
        key, k_reset, k_roll = jax.random.split(runner["key"], 3)

        def env_step(carry, k):
            env_state, obs, alive = carry
            k_act, k_env = jax.random.split(k)
            action = jax.random.categorical(k_act, apply(policy, params["policy"], obs))
            env_state, next_obs, reward, done, info = env_batch_step(env, env_state, action, k_env)
            out = {
                "obs": obs,
                "action": action,
                "reward": reward * alive,
                "alive": alive,
                "first_end": done * alive,
                "info": info,
            }
            return (env_state, next_obs, alive * (1.0 - done)), out

        state, obs = env_batch_reset(env, k_reset, num_envs)
        _, traj = jax.lax.scan(env_step, (state, obs, jnp.ones(num_envs)), jax.random.split(k_roll, env.max_steps))
        # after its end an episode's rewards are masked to 0, so G_t of its live steps is the episode's own return
        returns = discounted_returns(traj["reward"], jnp.zeros_like(traj["reward"]), gamma)
        (_, losses), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, traj, returns, traj["alive"])
        updates, opt_state = tx.update(grads, runner["opt_state"], params)
        env_steps = runner["env_steps"] + traj["alive"].sum().astype(jnp.int32)
        metrics = {**episode_stats(traj["info"], traj["first_end"]), **losses, "env_steps": env_steps}
        return {
            "params": optax.apply_updates(params, updates),
            "opt_state": opt_state,
            "key": key,
            "update": runner["update"] + 1,
            "env_steps": env_steps,
        }, metrics

    def act(params, obs: Array, key: Array) -> Array:
        del key
        return jnp.argmax(apply(policy, params["policy"], obs), axis=-1)

    return Agent("reinforce", env, init, update, act, steps, num_updates)
