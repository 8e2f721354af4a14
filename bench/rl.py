"""Deep RL on CartPole-v1, compiled end to end: PPO and DQN over many seeds under vmap, and environment throughput.

    python bench/rl.py [--agents ppo dqn dqn_huber reinforce] [--seeds 8] [--steps N] [--json] [--plot curves.png]

For each agent it trains ``--seeds`` seeds at once (one ``jax.jit(jax.vmap(train))``: acting, learning and the
environments all inside XLA), then plays 100 evaluation episodes with each seed's greedy policy. It prints the compile
time, the wall time of the whole run (all seeds together) and of one seed alone, the evaluation return per seed
(solved: mean >= 475 over the 100 episodes, gymnasium's threshold), and the learning curve (mean, min and max of the
training episodes' return over seeds against environment steps). Each agent runs with its library defaults
(``rl.ppo``, ``rl.dqn``: squared TD error, annealed learning rate); ``dqn_huber`` is DQN with the paper's Huber(1)
loss, ``double_dqn`` Double DQN.

Throughput: environment steps per second of random-action CartPole inside a compiled ``lax.scan`` over ``vmap``-ed
environments, against gymnasium's CartPole stepped from Python in the same run, printed as a ratio. And, if torch is
importable (it is skipped otherwise, and said so), the whole PPO training loop against a PyTorch + gymnasium reference
of the same size (bench/rl_torch_reference.py: CleanRL's ppo.py structure with ``rl.ppo``'s networks, hyperparameters
and loss): env steps per second of jaxnets' one seed and of all seeds under vmap (their training runs above, compile
excluded) against the reference's run of the same steps, its greedy return too. Timings are only meaningful on a
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

AGENTS = {  # (agent, options beyond its defaults); --steps overrides total_steps
    "ppo": (rl.ppo, {}),
    "dqn": (rl.dqn, {}),
    "dqn_huber": (rl.dqn, {"huber_delta": 1.0}),
    "double_dqn": (rl.dqn, {"double": True}),
    "reinforce": (rl.reinforce, {}),
}
SOLVED = 475.0


def _load() -> tuple[float, ...]:
    return tuple(round(x, 2) for x in os.getloadavg())


def _timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def bench_agent(name: str, seeds: int, steps: int | None) -> dict:
    """Train ``seeds`` seeds of agent ``name`` under vmap, then one seed alone; evaluate each seed's greedy policy."""
    env = rl.cartpole()
    make, options = AGENTS[name]
    agent = make(env, **options, **({"total_steps": steps} if steps else {}))
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
        "agent": name,
        "seeds": seeds,
        "env_steps_per_seed": int(env_steps[-1]),
        "compile_s": round(compile_s, 2),
        "run_s_all_seeds": round(run_s, 2),
        "run_s_one_seed": round(one_s, 2),
        "steps_per_s_one_seed": round(int(env_steps[-1]) / one_s),
        "steps_per_s_all_seeds": round(seeds * int(env_steps[-1]) / run_s),
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
    return out


def torch_reference(ppo: dict | None) -> dict | str:
    """The PyTorch + gymnasium PPO reference trained for as many steps as jaxnets' PPO run ``ppo`` (bench_agent's
    result), with ``rl.ppo``'s hyperparameters: its env steps/s and greedy return, and jaxnets' steps/s over it."""
    try:
        import rl_torch_reference
        import torch
    except ImportError as e:
        return f"skipped: the PyTorch + gymnasium PPO reference needs torch ({e})"
    if ppo is None:
        return "skipped: the PyTorch PPO reference is compared with the ppo agent's run; add ppo to --agents"
    load = _load()
    out = rl_torch_reference.train(ppo["env_steps_per_seed"], seed=0)
    torch_sps = out["env_steps"] / out["seconds"]
    returns = rl_torch_reference.evaluate(out["actor"])
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "env_steps": out["env_steps"],
        "seconds": round(out["seconds"], 1),
        "torch_steps_per_s": round(torch_sps),
        "torch_greedy_return": round(float(returns.mean()), 1),
        "torch_final_train_return": round(float(np.nanmean([r for _, r in out["curve"][-20:]])), 1),
        "jax_one_seed_steps_per_s": ppo["steps_per_s_one_seed"],
        "jax_all_seeds_steps_per_s": ppo["steps_per_s_all_seeds"],
        "seeds": ppo["seeds"],
        "ratio_one_seed": round(ppo["steps_per_s_one_seed"] / torch_sps, 1),
        "ratio_all_seeds": round(ppo["steps_per_s_all_seeds"] / torch_sps, 1),
        "load_before": load,
        "load_after": _load(),
    }


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
        "load_before": _load(),
        "agents": results,
        "throughput": throughput(),
        "torch_ppo": torch_reference(next((r for r in results if r["agent"] == "ppo"), None)),
        "load_after": _load(),
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
            f"all seeds {r['run_s_all_seeds']} s ({r['steps_per_s_all_seeds']:,} env steps/s), "
            f"one seed {r['run_s_one_seed']} s ({r['steps_per_s_one_seed']:,} env steps/s)"
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
        f"{t['gymnasium_steps_per_s']:.3g} -> ratio {t['ratio_jax_vs_gymnasium']:.0f}x"
    )
    ref = report["torch_ppo"]
    if isinstance(ref, str):
        print(f"PyTorch PPO reference: {ref}")
    else:
        print(
            f"PPO training loop, env steps/s (load average {ref['load_before']} -> {ref['load_after']}): PyTorch "
            f"{ref['torch']} + gymnasium ({ref['torch_threads']} thread) {ref['torch_steps_per_s']:,} over "
            f"{ref['env_steps']:,} steps in {ref['seconds']} s (greedy return {ref['torch_greedy_return']}, final "
            f"training return {ref['torch_final_train_return']}); jaxnets one seed {ref['jax_one_seed_steps_per_s']:,} "
            f"-> {ref['ratio_one_seed']}x, {ref['seeds']} seeds under vmap {ref['jax_all_seeds_steps_per_s']:,} "
            f"-> {ref['ratio_all_seeds']}x"
        )
    print(f"load average after {report['load_after']}")


if __name__ == "__main__":
    main()
