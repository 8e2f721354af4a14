"""Reinforcement learning: returns and GAE against hand-computed values, PPO's clipping, Huber's loss, the replay
buffer's ring, DQN's targets and target network, the tabular methods on Sutton and Barto's gridworld, short training
runs whose returns rise, and runs that resume bit for bit."""

from __future__ import annotations

import json
import os
import shutil
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import rl
from jaxnets.rl import tabular
from jaxnets.train import CheckpointError, safety
from jaxnets.train import metrics as mw


def test_discounted_returns_by_hand():
    g = rl.discounted_returns(jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 1, 0]), 0.5, last_value=10.0)
    # G2 = 3 + .5 * 10; the episode ends at t=1 so G1 = 2; G0 = 1 + .5 * 2
    np.testing.assert_allclose(g, [2.0, 2.0, 8.0])


def test_gae_by_hand():
    r, v, nv = jnp.ones(3), jnp.array([0.5, 0.4, 0.3]), jnp.array([0.4, 0.3, 0.2])
    gamma, lam = 0.9, 0.8
    adv, ret = rl.gae(r, v, nv, jnp.array([0, 0, 1]), jnp.array([0, 0, 1]), gamma, lam)
    d = [1 + 0.9 * 0.4 - 0.5, 1 + 0.9 * 0.3 - 0.4, 1 - 0.3]  # terminal last step: no bootstrap
    a2 = d[2]
    a1 = d[1] + 0.72 * a2
    np.testing.assert_allclose(adv, [d[0] + 0.72 * a1, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, adv + v, rtol=1e-6)
    # truncated (done, not terminated) at t=0: bootstraps from V(final state) and stops the trace there
    adv, _ = rl.gae(r, v, nv, jnp.array([0, 0, 0]), jnp.array([1, 0, 0]), gamma, lam)
    d = [1 + 0.9 * 0.4 - 0.5, 1 + 0.9 * 0.3 - 0.4, 1 + 0.9 * 0.2 - 0.3]
    np.testing.assert_allclose(adv, [d[0], d[1] + 0.72 * d[2], d[2]], rtol=1e-6)


def test_ppo_clipping():
    log_ratio = jnp.log(jnp.array([1.5, 0.5, 0.5, 1.5, 1.1]))
    adv = jnp.array([1.0, 1.0, -1.0, -1.0, 1.0])
    per = [rl.clipped_surrogate(log_ratio[i : i + 1], adv[i : i + 1], 0.2) for i in range(5)]
    np.testing.assert_allclose(per, [1.2, 0.5, -0.8, -1.5, 1.1], rtol=1e-6)
    grads = jax.vmap(jax.grad(lambda lr, a: rl.clipped_surrogate(lr[None], a[None], 0.2)))(log_ratio, adv)
    # no gradient where the clip is active (pushing the ratio further out would help), the plain one elsewhere
    np.testing.assert_allclose(grads, [0.0, 0.5, 0.0, -1.5, 1.1], rtol=1e-6, atol=1e-7)


def test_huber():
    x = jnp.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(rl.huber(x), [2.5, 0.125, 0.0, 0.125, 2.5])
    np.testing.assert_allclose(jax.vmap(jax.grad(rl.huber))(x), [-1.0, -0.5, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(rl.huber(jnp.array(3.0), delta=2.0), 4.0)


def test_replay_buffer_wraps_around_and_samples_what_it_holds():
    buf = rl.buffer_init(5, {"x": jnp.float32(0), "a": jnp.int32(0)})
    buf = rl.buffer_add(buf, {"x": jnp.arange(3.0), "a": jnp.arange(3)})
    assert int(buf["pos"]) == 3 and int(buf["size"]) == 3
    held = np.asarray(rl.buffer_sample(buf, jax.random.key(0), 200)["x"])
    assert set(held.tolist()) == {0.0, 1.0, 2.0}
    buf = rl.buffer_add(buf, {"x": jnp.arange(3.0, 7.0), "a": jnp.arange(3, 7)})
    np.testing.assert_array_equal(buf["data"]["x"], [5.0, 6.0, 2.0, 3.0, 4.0])  # 5 and 6 overwrote the oldest
    assert int(buf["pos"]) == 2 and int(buf["size"]) == 5
    s = rl.buffer_sample(buf, jax.random.key(1), 500)
    np.testing.assert_array_equal(s["x"], s["a"].astype(jnp.float32))  # fields of one transition stay together
    assert set(np.asarray(s["x"]).tolist()) == {2.0, 3.0, 4.0, 5.0, 6.0}


def test_dqn_and_double_dqn_targets():
    q_target, q_online = jnp.array([[1.0, 5.0], [2.0, 0.0]]), jnp.array([[3.0, 2.0], [0.0, 1.0]])
    r, term = jnp.array([1.0, 1.0]), jnp.array([False, True])
    np.testing.assert_allclose(rl.td_targets(q_target, q_online, r, term, 0.5, double=False), [3.5, 1.0])
    # Double DQN: the online network picks action 0, the target network values it at 1
    np.testing.assert_allclose(rl.td_targets(q_target, q_online, r, term, 0.5, double=True), [1.5, 1.0])


def test_dqn_target_network_refreshes_every_target_every_steps():
    agent = rl.dqn(
        rl.cartpole(), total_steps=400, num_envs=2, buffer_size=40, batch_size=8, learning_starts=8, target_every=10
    )
    runner = agent.init(jax.random.key(0))
    update = jax.jit(agent.update)
    same = lambda a, b: all(jax.tree.leaves(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b)))  # noqa: E731
    for i in range(12):
        runner, m = update(runner)
        steps = int(m["env_steps"])
        assert steps == 2 * (i + 1)
        if steps >= 8:
            assert np.isfinite(float(m["loss"]))  # learning from the 8th step on
        refreshed = steps % 10 == 0
        assert same(runner["target"], runner["params"]) == (refreshed or steps < 8), steps


def test_value_iteration_and_policy_evaluation_on_sutton_barto_gridworld():
    mdp = tabular.gridworld()  # example 4.1: 4x4, terminal corners, reward -1 per move, gamma 1
    v_random, _ = tabular.policy_evaluation(mdp, jnp.full((16, 4), 0.25), gamma=1.0, tol=1e-6)
    figure_4_1 = [0, -14, -20, -22, -14, -18, -20, -20, -20, -20, -18, -14, -22, -20, -14, 0]
    np.testing.assert_allclose(v_random, figure_4_1, atol=1e-3)
    v_star, sweeps = tabular.value_iteration(mdp, gamma=1.0)
    rows, cols = np.divmod(np.arange(16), 4)
    hand = -np.minimum(rows + cols, 6 - rows - cols)  # minus the moves to the nearer terminal corner
    np.testing.assert_array_equal(v_star, hand)
    assert int(sweeps) == 4  # three backups to propagate the corners' values across, one more to see no change
    np.testing.assert_allclose(jnp.max(tabular.q_values(mdp, v_star, 1.0), axis=1), v_star)  # the fixed point


def test_q_learning_finds_the_optimal_policy():
    mdp = tabular.gridworld()
    q, returns = jax.jit(lambda k: tabular.q_learning(mdp, k, 20_000, alpha=0.2, epsilon=0.2))(jax.random.key(0))
    policy = jax.nn.one_hot(tabular.greedy_policy(q), 4)
    v, _ = tabular.policy_evaluation(mdp, policy, gamma=1.0)
    v_star, _ = tabular.value_iteration(mdp, gamma=1.0)
    np.testing.assert_allclose(v, v_star, atol=1e-6)
    ended = np.asarray(returns)[np.isfinite(np.asarray(returns))]
    assert ended[:100].mean() < ended[-100:].mean()


def test_gridworld_rejects_bad_input():
    with pytest.raises(ValueError, match="outside the 4x4 grid"):
        tabular.gridworld(terminals=((4, 0),))
    with pytest.raises(ValueError, match="slip"):
        tabular.gridworld(slip=1.5)


def _first_last(metrics, n=5):
    r = np.asarray(metrics["episode_return"])
    return np.nanmean(r[:n]), np.nanmean(r[-n:])


@pytest.mark.long
@pytest.mark.slow  # compiles a whole training run: ~10-20 s each on a quiet 2-core CPU
@pytest.mark.parametrize(
    "make",
    [
        lambda env: rl.ppo(env, total_steps=20_480, num_envs=8, num_steps=64),
        lambda env: rl.reinforce(env, total_steps=60_000, num_envs=8, hidden=(32,), lr=1e-2),
        lambda env: rl.dqn(
            env,
            total_steps=12_000,
            num_envs=4,
            buffer_size=2_000,
            batch_size=32,
            learning_starts=500,
            target_every=100,
            lr=1e-3,
            eps_fraction=0.3,
            huber_delta=None,
        ),
    ],
    ids=["ppo", "reinforce", "dqn"],
)
def test_short_training_raises_the_return(make):
    agent = make(rl.cartpole())
    _, metrics = jax.jit(lambda k: rl.train(agent, k))(jax.random.key(0))
    first, last = _first_last(metrics, n=max(2, agent.num_updates // 10))
    assert last > 1.5 * first, (first, last)


@pytest.mark.long
@pytest.mark.slow
def test_seeds_under_vmap_match_single_runs_and_resume_is_bitwise(tmp_path):
    agent = rl.ppo(rl.cartpole(), total_steps=2048, num_envs=4, num_steps=64, epochs=2, minibatches=2)
    keys = jax.random.split(jax.random.key(3), 2)
    full, m_full = jax.jit(jax.vmap(lambda k: rl.train(agent, k)))(keys)
    one, _ = jax.jit(lambda k: rl.train(agent, k))(keys[1])
    np.testing.assert_allclose(one["params"]["actor"]["out"]["w"], full["params"]["actor"]["out"]["w"][1], atol=1e-5)
    # resume == uninterrupted: the same compiled chunk twice, with or without a trip through the checkpoint file
    chunk = jax.jit(jax.vmap(lambda r: rl.train(agent, None, agent.num_updates // 2, runner=r)))
    first, _ = chunk(jax.vmap(agent.init)(keys))
    straight, m_straight = chunk(first)
    rl.save_runner(tmp_path / "ckpt.msgpack", first, {})
    resumed, m_resumed = chunk(rl.load_runner(tmp_path / "ckpt.msgpack", first)[0])
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed), strict=True):
        a, b = (jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x for x in (a, b))
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m_straight["episode_return"], m_resumed["episode_return"])
    np.testing.assert_allclose(
        m_full["episode_return"][:, agent.num_updates // 2 :], m_straight["episode_return"], rtol=1e-4
    )


@pytest.mark.long
@pytest.mark.slow
def test_run_writes_metrics_and_resumes(tmp_path):
    agent = rl.make_agent("ppo", "cartpole", total_steps=1024, num_envs=4, num_steps=64, epochs=1, minibatches=1)
    out = rl.run(agent, tmp_path, seeds=(0, 1), log_every=2, eval_episodes=4)
    assert len(out["eval_return"]) == 2 and all(1 <= r <= 500 for r in out["eval_return"])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["seed"], r["update"]) for r in rows] == [(s, u) for u in (2, 4) for s in (0, 1)]
    assert rows[-1]["env_steps"] == 1024 and "policy_loss" in rows[-1]
    again = rl.run(agent, tmp_path, seeds=(0, 1), log_every=2, eval_episodes=4)  # finished: resumes to the end
    assert again == out and len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


# A run of seconds: 2 seeds x 12 updates of a tiny DQN (replay buffer, target network and keys all in the state),
# checkpointed every 4 updates.
TINY = {"seeds": (0, 1), "log_every": 4, "eval_episodes": 2}
CHECKPOINT, METRICS = "checkpoint.msgpack", "metrics.jsonl"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny agent, and the workdir and result of its uninterrupted run."""
    agent = rl.make_agent(
        "dqn", "cartpole", total_steps=24, num_envs=2, buffer_size=8, batch_size=4, learning_starts=4, hidden=(8,)
    )
    workdir = tmp_path_factory.mktemp("straight")
    return agent, workdir, rl.run(agent, workdir, **TINY)


class Killed(BaseException):
    """A kill -9 between two writes, as far as the run can tell."""


@pytest.mark.parametrize("how", ["killed_between_writes", "sigint"])
def test_a_stopped_run_resumes_to_the_uninterrupted_runs_state_and_metrics(how, tiny_run, tmp_path, monkeypatch):
    agent, straight, result = tiny_run
    writes, original = [], mw.append_metrics

    def append(path, record):  # the 4th line: the 2nd chunk's checkpoint is saved, one of its lines is not
        writes.append(record)
        if how == "killed_between_writes" and len(writes) == 4:
            raise Killed
        if how == "sigint" and len(writes) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # a Ctrl-C during the first chunk's writes: stop after it
        original(path, record)

    monkeypatch.setattr(mw, "append_metrics", append)
    if how == "sigint":
        with pytest.raises(safety.TrainingInterrupted, match="after update 4 of 12") as stopped:
            rl.run(agent, tmp_path, **TINY)
        assert stopped.value.exit_code == 130 and stopped.value.saved == tmp_path / CHECKPOINT
        assert len((tmp_path / METRICS).read_text().splitlines()) == 2
    else:
        with pytest.raises(Killed):
            rl.run(agent, tmp_path, **TINY)
        assert len((tmp_path / METRICS).read_text().splitlines()) == 3  # one line short of the checkpoint's 4
    monkeypatch.undo()
    assert rl.run(agent, tmp_path, **TINY) == result
    assert (tmp_path / METRICS).read_text() == (straight / METRICS).read_text()
    # the same runner (parameters, optimiser, envs, replay buffer, keys) bit for bit, and the same records
    assert (tmp_path / CHECKPOINT).read_bytes() == (straight / CHECKPOINT).read_bytes()
    assert len((tmp_path / METRICS).read_text().splitlines()) == 6  # 3 chunks x 2 seeds


def test_a_busy_workdir_a_corrupt_checkpoint_and_another_config_are_refused(tiny_run, tmp_path):
    agent, straight, _ = tiny_run
    with safety.lock_workdir(tmp_path), pytest.raises(safety.WorkdirBusy, match=f"pid {os.getpid()}"):
        rl.run(agent, tmp_path, **TINY)
    shutil.copytree(straight, tmp_path / "other")
    with pytest.raises(CheckpointError, match=r"another config \(seeds=\[0, 1\] there but \[0\] here\)"):
        rl.run(agent, tmp_path / "other", **{**TINY, "seeds": (0,)})
    data = bytearray((tmp_path / "other" / CHECKPOINT).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "other" / CHECKPOINT).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"checkpoint {tmp_path / 'other' / CHECKPOINT} is corrupt"):
        rl.run(agent, tmp_path / "other", **TINY)


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match=r"unknown agent 'a2c'"):
        rl.make_agent("a2c", "cartpole")
    with pytest.raises(ValueError, match="minibatches must divide"):
        rl.ppo(rl.cartpole(), num_envs=3, num_steps=5, minibatches=2)
    with pytest.raises(ValueError, match="lr must be positive"):
        rl.dqn(rl.cartpole(), lr=0.0)
