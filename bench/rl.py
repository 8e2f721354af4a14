"""Deep RL on CartPole-v1, compiled end to end: PPO and DQN over many seeds under vmap, and environment throughput.

    python bench/rl.py [--agents ppo dqn dqn_huber reinforce] [--seeds 8] [--steps N] [--json] [--plot curves.png]

For each agent it trains ``--seeds`` seeds at once (one ``jax.jit(jax.vmap(train))``: acting, learning and the
environments all inside XLA), then plays 100 evaluation episodes with each seed's greedy policy. It prints the compile
time, the wall time of the whole run (all seeds together) and of one seed alone, the evaluation return per seed
(solved: mean >= 475 over the 100 episodes, gymnasium's threshold), and the learning curve (mean, min and max of the
training episodes' return over seeds against environment steps). ``dqn`` is DQN with the squared TD error (CleanRL's
and PureJaxRL's choice), ``dqn_huber`` the paper's Huber(1) loss.

Throughput: environment steps per second of random-action CartPole inside a compiled ``lax.scan`` over ``vmap``-ed
environments, against gymnasium's CartPole stepped from Python in the same run, printed as a ratio (and against
PyTorch + gymnasium if torch is importable: it is skipped otherwise, and said so). Timings are only meaningful on a
quiet machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import jax
import numpy as np

from jaxnets import rl

AGENTS = {
    "ppo": lambda env, steps: rl.ppo(env, total_steps=steps or 500_000),
    "dqn": lambda env, steps: rl.dqn(env, total_steps=steps or 500_000, huber_delta=None),
    "dqn_huber": lambda env, steps: rl.dqn(env, total_steps=steps or 500_000, huber_delta=1.0),
    "double_dqn": lambda env, steps: rl.dqn(env, total_steps=steps or 500_000, huber_delta=None, double=True),
    "reinforce": lambda env, steps: rl.reinforce(env, total_steps=steps or 1_000_000),
}
SOLVED = 475.0


def _timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def bench_agent(name: str, seeds: int, steps: int | None) -> dict:
    """Train ``seeds`` seeds of agent ``name`` under vmap, then one seed alone; evaluate each seed's greedy policy."""
    env = rl.cartpole()
    agent = AGENTS[name](env, steps)
    keys = jax.random.split(jax.random.key(0), seeds)
    many = jax.jit(jax.vmap(lambda k: rl.train(agent, k)))
    compiled, compile_s = _timed(lambda: many.lower(keys).compile())
    (runner, metrics), run_s = _timed(compiled, keys)
    one = jax.jit(lambda k: rl.train(agent, k)).lower(keys[0]).compile()
    _, one_s = _timed(one, keys[0])
    evaluate = jax.jit(jax.vmap(lambda p, k: rl.evaluate(env, lambda o, kk: agent.act(p, o, kk), k, 100)))
    returns = np.asarray(evaluate(runner["params"], jax.random.split(jax.random.key(1), seeds))).mean(axis=1)
    ret = np.asarray(metrics["episode_return"], np.float64)  # (seeds, updates)
    env_steps = np.asarray(metrics["env_steps"])[0]
    points = np.unique(np.linspace(0, ret.shape[1], 21).astype(int))
    curve = []
    for lo, hi in itertools.pairwise(points):
        per_seed = np.nanmean(ret[:, lo:hi], axis=1)
        curve.append(
            {
                "env_steps": int(env_steps[hi - 1]),
                "mean": float(np.nanmean(per_seed)),
                "min": float(np.nanmin(per_seed)),
                "max": float(np.nanmax(per_seed)),
            }
        )
    return {
        "agent": agent.name,
        "seeds": seeds,
        "env_steps_per_seed": int(env_steps[-1]),
        "compile_s": round(compile_s, 2),
        "run_s_all_seeds": round(run_s, 2),
        "run_s_one_seed": round(one_s, 2),
        "eval_return_per_seed": [round(float(r), 1) for r in returns],
        "solved_seeds": int(np.sum(returns >= SOLVED)),
        "curve": curve,
    }


def throughput(num_envs: int = 1024, num_steps: int = 1000, gym_steps: int = 20_000) -> dict:
    """Random-action CartPole steps per second: compiled JAX (vmap x scan) vs gymnasium from Python (and torch)."""
    env = rl.cartpole()

    def loop(key):
        state, obs = jax.vmap(env.reset)(jax.random.split(key, num_envs))

        def body(carry, k):
            state, _ = carry
            k_a, k_e = jax.random.split(k)
            action = jax.random.randint(k_a, (num_envs,), 0, 2)
            state, obs, _, _, _ = jax.vmap(env.step)(state, action, jax.random.split(k_e, num_envs))
            return (state, obs), None

        return jax.lax.scan(body, (state, obs), jax.random.split(key, num_steps))[0][1].sum()

    compiled = jax.jit(loop).lower(jax.random.key(0)).compile()
    _timed(compiled, jax.random.key(1))
    _, s = _timed(compiled, jax.random.key(2))
    out = {"jax_steps_per_s": num_envs * num_steps / s}
    import gymnasium as gym

    g = gym.make("CartPole-v1")
    g.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, gym_steps)
    start = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = g.step(int(a))
        if term or trunc:
            g.reset()
    out["gymnasium_steps_per_s"] = gym_steps / (time.perf_counter() - start)
    out["ratio_jax_vs_gymnasium"] = out["jax_steps_per_s"] / out["gymnasium_steps_per_s"]
    try:
        import torch  # noqa: F401

        out["torch"] = "installed, but the PyTorch PPO reference is not implemented in this benchmark"
    except ImportError:
        out["torch"] = "not installed: the PyTorch + gymnasium reference was skipped"
    return out


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        x = [p["env_steps"] for p in r["curve"]]
        ax.plot(x, [p["mean"] for p in r["curve"]], label=f"{r['agent']} ({r['seeds']} seeds)")
        ax.fill_between(x, [p["min"] for p in r["curve"]], [p["max"] for p in r["curve"]], alpha=0.2)
    ax.axhline(SOLVED, color="k", ls=":", lw=1)
    ax.set(xlabel="environment steps per seed", ylabel="training episode return", title="CartPole-v1")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", nargs="+", default=["ppo", "dqn"], choices=sorted(AGENTS))
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--steps", type=int, default=None, help="environment steps per seed (default: each agent's)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", default=None, help="write the learning curves to this PNG")
    args = p.parse_args()
    if args.seeds < 1:
        p.error(f"--seeds must be at least 1; got {args.seeds}")
    results = []
    for a in args.agents:
        results.append(bench_agent(a, args.seeds, args.steps))
        if args.json:  # one line per agent as it finishes (long runs), then the full report
            print(json.dumps(results[-1]), flush=True)
    report = {
        "devices": str(jax.devices()),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "agents": results,
        "throughput": throughput(),
        "load_after": os.getloadavg(),
    }
    if args.plot:
        plot(results, args.plot)
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['devices']}, {report['cpus']} CPUs, load average before {report['load_before']}")
    for r in results:
        print(
            f"\n{r['agent']}: {r['seeds']} seeds x {r['env_steps_per_seed']} env steps; compile {r['compile_s']} s, "
            f"all seeds {r['run_s_all_seeds']} s, one seed {r['run_s_one_seed']} s"
        )
        print(
            f"  greedy return over 100 episodes per seed: {r['eval_return_per_seed']} "
            f"-> {r['solved_seeds']}/{r['seeds']} solved (>= {SOLVED})"
        )
        for q in [*r["curve"][::4], r["curve"][-1]]:
            print(
                f"  {q['env_steps']:>8} steps: return mean {q['mean']:7.1f}  [min {q['min']:6.1f}, max {q['max']:6.1f}]"
            )
    t = report["throughput"]
    print(
        f"\nCartPole random-action steps/s: compiled JAX {t['jax_steps_per_s']:.3g}, gymnasium from Python "
        f"{t['gymnasium_steps_per_s']:.3g} -> ratio {t['ratio_jax_vs_gymnasium']:.0f}x; torch: {t['torch']}"
    )
    print(f"load average after {report['load_after']}")


if __name__ == "__main__":
    main()
