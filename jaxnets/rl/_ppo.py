"""Proximal policy optimisation (Schulman et al. 2017, algorithm 1), compiled end to end.

Each iteration runs ``num_envs`` environments for ``num_steps`` steps under ``lax.scan`` (``vmap`` over the
environments), computes GAE advantages, then takes ``epochs`` passes of ``minibatches`` shuffled minibatches over the
clipped surrogate objective ``L = E[min(r A, clip(r, 1 - eps, 1 + eps) A)] - c1 (V - V_target)^2 + c2 H[pi]``, with
Adam (learning rate annealed linearly to 0 and global-norm gradient clipping, as in the paper's Atari/baselines setup).
Actor and critic are separate tanh MLPs (the paper's continuous-control choice, and what works for classic control).
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
    env_batch_reset,
    env_batch_step,
    episode_stats,
    gae,
    mlp,
)
from jaxnets.rl.envs import Env

Array = jax.Array


def clipped_surrogate(log_ratio: Array, advantages: Array, clip: float) -> Array:
    """PPO's objective to *maximise*, averaged: ``min(r A, clip(r, 1 - clip, 1 + clip) A)``, ``r = exp(log_ratio)``."""
    ratio = jnp.exp(log_ratio)
    return jnp.mean(jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages))


def ppo(
    env: Env,
    *,
    total_steps: int = 100_000,
    num_envs: int = 8,
    num_steps: int = 32,
    epochs: int = 20,
    minibatches: int = 1,
    gamma: float = 0.98,
    gae_lambda: float = 0.8,
    clip: float = 0.2,
    value_coef: float = 0.5,
    entropy_coef: float = 0.0,
    lr: float = 1e-3,
    anneal_lr: bool = True,
    max_grad_norm: float = 0.5,
    hidden: Sequence[int] = (64, 64),
) -> Agent:
    """A PPO agent for ``env``. The defaults are rl-baselines3-zoo's tuned CartPole-v1 settings (but for its clip range
    annealed to 0), which solve it on 8 of 8 seeds in 100k steps (bench/rl.py); CleanRL's and PureJaxRL's
    (``total_steps=500_000, num_envs=4, num_steps=128, epochs=4, minibatches=4, gamma=0.99, gae_lambda=0.95,
    entropy_coef=0.01, lr=2.5e-4``) solved 5 of 8 in 500k steps and 7 of 8 in 1M."""
    check_positive(
        total_steps=total_steps,
        num_envs=num_envs,
        num_steps=num_steps,
        epochs=epochs,
        minibatches=minibatches,
        lr=lr,
        max_grad_norm=max_grad_norm,
    )
    batch = num_envs * num_steps
    if batch % minibatches:
        raise ValueError(f"minibatches must divide num_envs * num_steps = {batch}; got {minibatches}")
    num_updates = total_steps // batch
    if num_updates < 1:
        raise ValueError(f"total_steps must be at least num_envs * num_steps = {batch}; got {total_steps}")
    actor = mlp(hidden, env.num_actions, out_scale=0.01)
    critic = mlp(hidden, 1, out_scale=1.0)
    schedule = optax.linear_schedule(lr, 0.0, num_updates * epochs * minibatches) if anneal_lr else lr
    tx = optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(schedule, eps=1e-5))

    def value(params, obs):
        return apply(critic, params["critic"], obs)[..., 0]

    def init(key: Array) -> dict:
        k_actor, k_critic, k_env, key = jax.random.split(key, 4)
        params = {"actor": actor.init(k_actor, env.obs_shape)[0], "critic": critic.init(k_critic, env.obs_shape)[0]}
        env_state, obs = env_batch_reset(env, k_env, num_envs)
        return {
            "params": params,
            "opt_state": tx.init(params),
            "env_state": env_state,
            "obs": obs,
            "key": key,
            "update": jnp.int32(0),
        }

    def loss_fn(params, mb):
        logits = apply(actor, params["actor"], mb["obs"])
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, mb["action"][:, None], axis=1)[:, 0]
        adv = (mb["advantage"] - mb["advantage"].mean()) / (mb["advantage"].std() + 1e-8)
        surrogate = clipped_surrogate(logp - mb["logp"], adv, clip)
        value_loss = jnp.mean(jnp.square(value(params, mb["obs"]) - mb["target"]))
        entropy = -jnp.mean(jnp.sum(jnp.exp(logp_all) * logp_all, axis=1))
        loss = -surrogate + value_coef * value_loss - entropy_coef * entropy
        return loss, {"policy_loss": -surrogate, "value_loss": value_loss, "entropy": entropy}

    def update(runner: dict) -> tuple[dict, dict]:
        params = runner["params"]

        def env_step(carry, k):
            env_state, obs = carry
            k_act, k_env = jax.random.split(k)
            logits = apply(actor, params["actor"], obs)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=1)[:, 0]
            env_state, next_obs, reward, done, info = env_batch_step(env, env_state, action, k_env)
            return (env_state, next_obs), {
                "obs": obs,
                "action": action,
                "logp": logp,
                "reward": reward,
                "done": done,
                "info": info,
            }

        key, k_roll, k_perm = jax.random.split(runner["key"], 3)
        (env_state, obs), traj = jax.lax.scan(
            env_step, (runner["env_state"], runner["obs"]), jax.random.split(k_roll, num_steps)
        )
        info = traj["info"]
        values = value(params, traj["obs"])
        next_values = value(params, info["final_obs"])  # V(s_{t+1}); the ended episode's last state where done
        adv, target = gae(traj["reward"], values, next_values, info["terminated"], traj["done"], gamma, gae_lambda)
        data = {"obs": traj["obs"], "action": traj["action"], "logp": traj["logp"], "advantage": adv, "target": target}
        data = jax.tree.map(lambda x: x.reshape(batch, *x.shape[2:]), data)

        def epoch(carry, k):
            def minibatch(carry, mb):
                params, opt_state = carry
                (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
                updates, opt_state = tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), aux

            perm = jax.random.permutation(k, batch)
            mbs = jax.tree.map(lambda x: x[perm].reshape(minibatches, -1, *x.shape[1:]), data)
            return jax.lax.scan(minibatch, carry, mbs)

        (params, opt_state), losses = jax.lax.scan(
            epoch, (params, runner["opt_state"]), jax.random.split(k_perm, epochs)
        )
        metrics = {
            **episode_stats(info, traj["done"]),
            **jax.tree.map(jnp.mean, losses),
            "env_steps": (runner["update"] + 1) * batch,
        }
        return {
            "params": params,
            "opt_state": opt_state,
            "env_state": env_state,
            "obs": obs,
            "key": key,
            "update": runner["update"] + 1,
        }, metrics

    def act(params, obs: Array, key: Array) -> Array:
        del key
        return jnp.argmax(apply(actor, params["actor"], obs), axis=-1)

    return Agent("ppo", env, init, update, act, batch, num_updates)
