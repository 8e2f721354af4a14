"""Environments written in JAX, so that the whole training loop (env included) compiles and vectorises.

An environment is an ``Env`` of two pure functions over an explicit state:

    reset(key) -> (state, obs)
    step(state, action, key) -> (state, obs, reward, done, info)

``step`` applies the time limit and resets by itself: where an episode ends (``done``), the returned ``state`` and
``obs`` already belong to a fresh episode (drawn with ``key``), and ``info`` holds what ended: ``final_obs`` (the
observation the episode ended on), ``terminated`` (a terminal state: do not bootstrap), ``truncated`` (the time limit),
``episode_return`` and ``episode_length`` (meaningful where ``done``). So ``jax.vmap(env.step)`` runs many
environments in lock step with no Python in the loop. CartPole-v1 and MountainCar-v0 follow gymnasium's classic
control sources step for step (dynamics, termination, time limit; tests/test_rl_envs.py checks them against it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


class EnvState(NamedTuple):
    """An environment's state: the task's own state, the step count in the episode and the return so far."""

    physics: Any
    t: Array
    episode_return: Array


class Dynamics(NamedTuple):
    """A task without time limit or reset logic: ``step(physics, action) -> (physics, reward, terminated)``."""

    init: Callable[[Array], Any]
    step: Callable[[Any, Array], tuple[Any, Array, Array]]
    observe: Callable[[Any], Array]


class Env(NamedTuple):
    """A JAX environment (see the module docstring); ``max_steps`` is the time limit (gymnasium's truncation)."""

    name: str
    reset: Callable[[Array], tuple[EnvState, Array]]
    step: Callable[[EnvState, Array, Array], tuple[EnvState, Array, Array, Array, dict]]
    obs_shape: tuple[int, ...]
    num_actions: int
    max_steps: int
    dynamics: Dynamics


def make_env(name: str, dynamics: Dynamics, obs_shape: tuple[int, ...], num_actions: int, max_steps: int) -> Env:
    """Wrap ``dynamics`` with gymnasium's ``TimeLimit`` semantics, episode statistics and automatic reset."""

    def reset(key: Array) -> tuple[EnvState, Array]:
        physics = dynamics.init(key)
        return EnvState(physics, jnp.int32(0), jnp.float32(0.0)), dynamics.observe(physics)

    def step(state: EnvState, action: Array, key: Array):
        physics, reward, terminated = dynamics.step(state.physics, action)
        t = state.t + 1
        truncated = t >= max_steps
        done = terminated | truncated
        final_obs = dynamics.observe(physics)
        episode_return = state.episode_return + reward
        fresh, fresh_obs = reset(key)
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, EnvState(physics, t, episode_return))
        obs = jnp.where(done, fresh_obs, final_obs)
        info = {
            "final_obs": final_obs,
            "terminated": terminated,
            "truncated": truncated,
            "episode_return": episode_return,
            "episode_length": t,
        }
        return state, obs, jnp.asarray(reward, jnp.float32), done, info

    return Env(name, reset, step, obs_shape, num_actions, max_steps, dynamics)


def _float() -> jnp.dtype:
    """The float type of the physics: float64 when JAX runs in x64 mode (as gymnasium does), else float32."""
    return jnp.zeros(()).dtype


# --- CartPole-v1 (gymnasium/envs/classic_control/cartpole.py; Barto, Sutton and Anderson 1983) ---------------------
GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS, POLEMASS_LENGTH = MASSPOLE + MASSCART, MASSPOLE * LENGTH
THETA_THRESHOLD, X_THRESHOLD = 12 * 2 * math.pi / 360, 2.4


def _cartpole_init(key: Array) -> Array:
    return jax.random.uniform(key, (4,), _float(), -0.05, 0.05)


def _cartpole_step(s: Array, action: Array) -> tuple[Array, Array, Array]:
    """One Euler step of the cart and pole under a push left (0) or right (1); reward 1 every step."""
    x, x_dot, theta, theta_dot = s
    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
    temp = (force + POLEMASS_LENGTH * jnp.square(theta_dot) * sintheta) / TOTAL_MASS
    thetaacc = (GRAVITY * sintheta - costheta * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * jnp.square(costheta) / TOTAL_MASS)
    )
    xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
    s = jnp.stack([x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc])
    terminated = (s[0] < -X_THRESHOLD) | (s[0] > X_THRESHOLD) | (s[2] < -THETA_THRESHOLD) | (s[2] > THETA_THRESHOLD)
    return s, jnp.float32(1.0), terminated


def cartpole(max_steps: int = 500) -> Env:
    """CartPole-v1: keep the pole within 12 degrees and the cart within 2.4 of the centre; 500 steps at most."""
    return make_env(
        "cartpole", Dynamics(_cartpole_init, _cartpole_step, lambda s: s.astype(jnp.float32)), (4,), 2, max_steps
    )


# --- MountainCar-v0 (gymnasium/envs/classic_control/mountain_car.py; Moore 1990) ------------------------------------
MIN_POSITION, MAX_POSITION, MAX_SPEED, GOAL_POSITION, FORCE, CAR_GRAVITY = -1.2, 0.6, 0.07, 0.5, 0.001, 0.0025


def _mountain_car_init(key: Array) -> Array:
    return jnp.stack([jax.random.uniform(key, (), _float(), -0.6, -0.4), jnp.zeros((), _float())])


def _mountain_car_step(s: Array, action: Array) -> tuple[Array, Array, Array]:
    """Push left (0), nothing (1) or right (2) in the valley; reward -1 every step until the flag at 0.5."""
    position, velocity = s
    velocity = velocity + (action - 1) * FORCE + jnp.cos(3 * position) * (-CAR_GRAVITY)
    velocity = jnp.clip(velocity, -MAX_SPEED, MAX_SPEED)
    position = jnp.clip(position + velocity, MIN_POSITION, MAX_POSITION)
    velocity = jnp.where((position == MIN_POSITION) & (velocity < 0), 0.0, velocity)
    terminated = (position >= GOAL_POSITION) & (velocity >= 0)
    return jnp.stack([position, velocity]), jnp.float32(-1.0), terminated


def mountain_car(max_steps: int = 200) -> Env:
    """MountainCar-v0: drive an underpowered car up the right hill by rocking it; 200 steps at most."""
    return make_env(
        "mountain_car",
        Dynamics(_mountain_car_init, _mountain_car_step, lambda s: s.astype(jnp.float32)),
        (2,),
        3,
        max_steps,
    )


ENVS: dict[str, Callable[[], Env]] = {"cartpole": cartpole, "mountain_car": mountain_car}


def make(name: str) -> Env:
    """The environment called ``name`` (one of ``ENVS``)."""
    if name not in ENVS:
        raise ValueError(f"unknown environment {name!r}; known: {sorted(ENVS)}")
    return ENVS[name]()


def rollout(
    env: Env, policy: Callable[[Array, Array], Array], key: Array, num_steps: int, state: EnvState | None = None
) -> dict:
    """Run ``policy(obs, key) -> action`` for ``num_steps`` steps (auto-resetting) under ``lax.scan``.

    Returns the per-step ``obs`` (seen before acting), ``action``, ``reward``, ``done`` and ``info`` stacked on a
    leading time axis, plus the final ``state`` and ``obs``. Starts from ``state`` or a fresh reset.
    """
    key, reset_key = jax.random.split(key)
    obs = env.reset(reset_key)[1] if state is None else env.dynamics.observe(state.physics)
    state = env.reset(reset_key)[0] if state is None else state

    def body(carry, k):
        state, obs = carry
        k_act, k_env = jax.random.split(k)
        action = policy(obs, k_act)
        state2, obs2, reward, done, info = env.step(state, action, k_env)
        return (state2, obs2), {"obs": obs, "action": action, "reward": reward, "done": done, "info": info}

    (state, obs), traj = jax.lax.scan(body, (state, obs), jax.random.split(key, num_steps))
    return {**traj, "state": state, "last_obs": obs}
