"""The JAX environments against gymnasium's own, step for step: same observations (to 1e-6), rewards, termination,
truncation and episode statistics, over random and balancing action sequences that cover both kinds of episode end;
and their automatic reset under vmap.

Each step starts from gymnasium's exact float64 state: a balanced pole is an unstable system that amplifies a last-bit
difference of sin/cos between numpy and XLA to 1e-6 within a few hundred steps; the episode's step count and return
are our own throughout, so the time limit and episode statistics are checked free-running."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import rl

gym = pytest.importorskip("gymnasium", reason="gymnasium (the `test` extra) is the reference for the environments")


def _cartpole_policy(obs: np.ndarray) -> int:
    return int(obs[2] + 0.5 * obs[3] > 0)  # push towards where the pole falls: balances for the 500 steps


def _mountain_car_policy(obs: np.ndarray) -> int:
    return 2 if obs[1] >= 0 else 0  # push along the velocity: pumps energy and reaches the flag


CASES = [("cartpole", "CartPole-v1", _cartpole_policy), ("mountain_car", "MountainCar-v0", _mountain_car_policy)]


@pytest.mark.parametrize(("name", "gym_id", "policy"), CASES, ids=[c[0] for c in CASES])
def test_env_matches_gymnasium_step_for_step(name, gym_id, policy):
    rng = np.random.default_rng(0)
    g = gym.make(gym_id)
    ends = {"terminated": 0, "truncated": 0}
    with jax.enable_x64(True):  # gymnasium integrates in float64
        env = rl.make(name)
        assert env.max_steps == g.spec.max_episode_steps and env.num_actions == g.action_space.n
        step = jax.jit(env.step)
        key = jax.random.key(0)
        for episode in range(4):
            noise = [1.0, 0.1][episode % 2]  # random actions, or the balancing policy with 10% random actions
            obs_g, _ = g.reset(seed=episode)
            state = env.reset(key)[0]
            done, length = False, 0
            while not done:
                state = state._replace(physics=jnp.asarray(g.unwrapped.state, jnp.float64))
                a = int(rng.integers(env.num_actions)) if rng.random() < noise else policy(obs_g)
                key, k = jax.random.split(key)
                state, obs, reward, done_j, info = step(state, a, k)
                obs_g, reward_g, term_g, trunc_g, _ = g.step(a)
                done, length = term_g or trunc_g, length + 1
                assert bool(done_j) == done and bool(info["terminated"]) == term_g
                assert bool(info["truncated"]) == trunc_g and float(reward) == reward_g
                np.testing.assert_allclose(np.asarray(info["final_obs"]), obs_g, rtol=0, atol=1e-6)
                if not done:
                    np.testing.assert_allclose(np.asarray(obs), obs_g, rtol=0, atol=1e-6)
            ends["terminated"] += term_g
            ends["truncated"] += trunc_g and not term_g
            assert int(state.t) == 0 and float(state.episode_return) == 0.0  # reset itself
            assert int(info["episode_length"]) == length
            assert float(info["episode_return"]) == length * reward_g  # constant reward per step in both tasks
    assert ends["terminated"] and ends["truncated"], f"the sequences must end episodes both ways: {ends}"


def test_reset_distribution_matches_gymnasium():
    _, obs = jax.vmap(rl.cartpole().reset)(jax.random.split(jax.random.key(0), 1000))
    assert obs.shape == (1000, 4) and obs.dtype == jnp.float32
    assert float(jnp.abs(obs).max()) <= 0.05 and float(jnp.abs(obs).min()) < 0.001
    _, obs = jax.vmap(rl.mountain_car().reset)(jax.random.split(jax.random.key(1), 1000))
    assert float(obs[:, 0].min()) >= -0.6 and float(obs[:, 0].max()) <= -0.4 and not np.any(np.asarray(obs[:, 1]))


def test_vmapped_envs_reset_where_their_episodes_end():
    env = rl.cartpole(max_steps=15)
    n = 64
    state, obs = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), n))
    step = jax.jit(jax.vmap(env.step))
    lengths = []
    for t in range(40):
        action = jnp.full((n,), t % 2, jnp.int32)  # alternate pushes: most poles survive to the 15-step limit
        t_before = state.t
        state, obs, _, done, info = step(state, action, jax.random.split(jax.random.key(t + 1), n))
        assert np.array_equal(np.asarray(info["episode_length"]), np.asarray(t_before) + 1)
        assert np.all(np.asarray(state.t)[np.asarray(done)] == 0)
        assert np.all(np.asarray(state.t)[~np.asarray(done)] == np.asarray(t_before)[~np.asarray(done)] + 1)
        lengths += np.asarray(info["episode_length"])[np.asarray(done)].tolist()
        live = ~np.asarray(done)
        np.testing.assert_array_equal(np.asarray(obs)[live], np.asarray(info["final_obs"])[live])
    assert max(lengths) == 15 and len(lengths) >= n


def test_unknown_env_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown environment 'pong'.*cartpole"):
        rl.make("pong")
