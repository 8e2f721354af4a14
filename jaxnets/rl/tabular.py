"""Tabular reinforcement learning on a known finite MDP (Sutton and Barto 2018, chapters 4 and 6): a gridworld,
iterative policy evaluation, value iteration and Q-learning, all as array programs under ``lax`` loops."""

from __future__ import annotations

from typing import NamedTuple, cast

import jax
import jax.numpy as jnp

Array = jax.Array
# up, right, down, left as (row, column) moves
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
ARROWS = "^>v<"


class MDP(NamedTuple):
    """A finite MDP: ``transitions[s, a, s']`` probabilities, expected ``rewards[s, a]``, ``terminal[s]`` flags
    (absorbing, worth 0) and, for a gridworld, its ``shape`` (states numbered row-major) and ``walls``."""

    transitions: Array
    rewards: Array
    terminal: Array
    shape: tuple[int, int]
    walls: tuple[tuple[int, int], ...] = ()


def gridworld(
    rows: int = 4,
    cols: int = 4,
    terminals: tuple[tuple[int, int], ...] = ((0, 0), (3, 3)),
    walls: tuple[tuple[int, int], ...] = (),
    step_reward: float = -1.0,
    goal_rewards: dict[tuple[int, int], float] | None = None,
    slip: float = 0.0,
) -> MDP:
    """A gridworld: four moves, bumping into the border or a wall leaves the agent in place, ``step_reward`` per move
    (plus ``goal_rewards[cell]`` on entering that terminal cell). With ``slip`` > 0 the move goes in a uniformly
    random direction with that probability. The defaults are Sutton and Barto's example 4.1."""
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip is a probability and must be in [0, 1]; got {slip}")
    for cell in (*terminals, *walls, *(goal_rewards or {})):
        if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
            raise ValueError(f"cell {cell} is outside the {rows}x{cols} grid")
    n = rows * cols
    goal_rewards = goal_rewards or {}
    trans = [[[0.0] * n for _ in MOVES] for _ in range(n)]
    rew = [[0.0] * len(MOVES) for _ in range(n)]
    for s in range(n):
        r, c = divmod(s, cols)
        if (r, c) in terminals or (r, c) in walls:
            for a in range(len(MOVES)):
                trans[s][a][s] = 1.0
            continue
        for a in range(len(MOVES)):
            for b, (dr, dc) in enumerate(MOVES):
                p = (1.0 - slip) * (a == b) + slip / len(MOVES)
                nr, nc = r + dr, c + dc
                if not (0 <= nr < rows and 0 <= nc < cols) or (nr, nc) in walls:
                    nr, nc = r, c
                trans[s][a][nr * cols + nc] += p
                rew[s][a] += p * (step_reward + goal_rewards.get((nr, nc), 0.0) * ((nr, nc) in terminals))
    terminal = [divmod(s, cols) in terminals or divmod(s, cols) in walls for s in range(n)]
    return MDP(jnp.array(trans), jnp.array(rew), jnp.array(terminal), (rows, cols), tuple(walls))


def q_values(mdp: MDP, values: Array, gamma: float) -> Array:
    """One-step lookahead ``Q(s, a) = R(s, a) + gamma sum_s' P(s'|s, a) V(s')``; terminal states are worth 0."""
    q = mdp.rewards + gamma * mdp.transitions @ values
    return jnp.where(mdp.terminal[:, None], 0.0, q)


def _sweep_to_fixed_point(backup, mdp: MDP, tol: float, max_iters: int) -> tuple[Array, Array]:
    def cond(carry):
        _, delta, i = carry
        return (delta > tol) & (i < max_iters)

    def body(carry):
        v, _, i = carry
        v2 = backup(v)
        return v2, jnp.max(jnp.abs(v2 - v)), i + 1

    v0 = jnp.zeros(mdp.rewards.shape[0])
    v, _, iters = jax.lax.while_loop(cond, body, (v0, jnp.inf, 0))
    return v, cast(Array, iters)  # (lax carries the int counter as an array)


def policy_evaluation(
    mdp: MDP, policy: Array, gamma: float = 1.0, tol: float = 1e-6, max_iters: int = 10_000
) -> tuple[Array, Array]:
    """``v_pi`` of the stochastic ``policy[s, a]`` by synchronous Bellman expectation backups; (values, sweeps)."""
    return _sweep_to_fixed_point(lambda v: jnp.sum(policy * q_values(mdp, v, gamma), axis=1), mdp, tol, max_iters)


def value_iteration(mdp: MDP, gamma: float = 1.0, tol: float = 1e-6, max_iters: int = 10_000) -> tuple[Array, Array]:
    """``v*`` by synchronous Bellman optimality backups until they move no value by more than ``tol``."""
    return _sweep_to_fixed_point(lambda v: jnp.max(q_values(mdp, v, gamma), axis=1), mdp, tol, max_iters)


def greedy_policy(q: Array) -> Array:
    """The action of highest value in each state (ties to the first)."""
    return jnp.argmax(q, axis=-1)


def q_learning(
    mdp: MDP, key: Array, num_steps: int, alpha: float = 0.1, gamma: float = 1.0, epsilon: float = 0.1
) -> tuple[Array, Array]:
    """Watkins' Q-learning with an epsilon-greedy behaviour policy, sampling the MDP for ``num_steps`` steps.

    Episodes start in a uniformly random non-terminal state. Returns the table ``Q[s, a]`` and, per step, the return
    of the episode that ended there (NaN where none ended).
    """
    n_states, n_actions = mdp.rewards.shape
    start_p = jnp.where(mdp.terminal, 0.0, 1.0)
    start_p = start_p / start_p.sum()

    def body(carry, k):
        q, s, ret = carry
        k_eps, k_a, k_next, k_start = jax.random.split(k, 4)
        explore = jax.random.uniform(k_eps) < epsilon
        a = jnp.where(explore, jax.random.randint(k_a, (), 0, n_actions), jnp.argmax(q[s]))
        s2 = jax.random.choice(k_next, n_states, p=mdp.transitions[s, a])
        r = mdp.rewards[s, a]
        done = mdp.terminal[s2]
        target = r + gamma * jnp.where(done, 0.0, jnp.max(q[s2]))
        q = q.at[s, a].add(alpha * (target - q[s, a]))
        ret = ret + r
        out = jnp.where(done, ret, jnp.nan)
        s2 = jnp.where(done, jax.random.choice(k_start, n_states, p=start_p), s2)
        return (q, s2, jnp.where(done, 0.0, ret)), out

    key, k0 = jax.random.split(key)
    s0 = jax.random.choice(k0, n_states, p=start_p)
    (q, _, _), returns = jax.lax.scan(
        body, (jnp.zeros((n_states, n_actions)), s0, 0.0), jax.random.split(key, num_steps)
    )
    return q, returns
