"""The PyTorch + gymnasium reference for bench/rl.py: PPO on CartPole-v1 written the way CleanRL's ppo.py is (a
``gymnasium.vector.SyncVectorEnv`` stepped from Python, a rollout loop, GAE, minibatch epochs of Adam), with jaxnets'
``rl.ppo`` networks, hyperparameters and loss, so that its environment steps per second compare like with like.

    python bench/rl_torch_reference.py [--steps 100000] [--seed 0] [--eval]   # needs torch, gymnasium, numpy

Same as ``rl.ppo``: separate tanh MLPs (orthogonal weights, gain sqrt(2), 0.01 at the actor's output, 1 at the
critic's; zero biases), Adam (eps 1e-5) with the learning rate annealed linearly to 0 over the gradient steps and
global-norm clipping, advantages standardised per minibatch, loss ``-surrogate + value_coef (V - target)^2 -
entropy_coef H``, and GAE that bootstraps a truncated episode from its final observation (the vector env autoresets in
the same step and hands over ``final_obs``, as jaxnets' environments do). Prints one JSON line per twentieth of the
run (mean training return) and a summary with the wall time and env steps/s of the whole loop.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn


def ppo_defaults() -> dict[str, Any]:
    """``rl.ppo``'s keyword defaults (but the step budget): the reference's hyperparameters, from one place."""
    from jaxnets import rl

    return {
        k: p.default
        for k, p in inspect.signature(rl.ppo).parameters.items()
        if p.default is not inspect.Parameter.empty and k != "total_steps"
    }


def mlp(n_in: int, hidden, n_out: int, out_scale: float) -> nn.Sequential:
    """jaxnets' ``rl.mlp``: tanh hidden layers, orthogonal weights, zero biases."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.Tanh()]
        n_in = h
    layers.append(nn.Linear(n_in, n_out))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, out_scale if layer is layers[-1] else math.sqrt(2))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def train(total_steps: int, seed: int = 0, config: dict[str, Any] | None = None, threads: int = 1) -> dict[str, Any]:
    """Train PPO on CartPole-v1 for ``total_steps`` environment steps with ``threads`` intra-op threads (1: layers of
    64 units gain nothing from more, and on a loaded 2-core machine two spin-waiting threads ran 5x slower); the actor,
    the per-iteration mean training return, and the wall time of the loop (env creation and first reset excluded)."""
    c = {**ppo_defaults(), **(config or {})}
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_envs, n_steps = c["num_envs"], c["num_steps"]
    batch = n_envs * n_steps
    mb_size = batch // c["minibatches"]
    iterations = total_steps // batch
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make("CartPole-v1") for _ in range(n_envs)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    n_obs, n_act = envs.single_observation_space.shape[0], int(envs.single_action_space.n)
    actor, critic = mlp(n_obs, c["hidden"], n_act, 0.01), mlp(n_obs, c["hidden"], 1, 1.0)
    params = [*actor.parameters(), *critic.parameters()]
    opt = torch.optim.Adam(params, lr=c["lr"], eps=1e-5)
    grad_steps, total_grad_steps = 0, iterations * c["epochs"] * c["minibatches"]
    obs_buf = torch.zeros((n_steps, n_envs, n_obs))
    next_obs_buf = torch.zeros((n_steps, n_envs, n_obs))
    act_buf = torch.zeros((n_steps, n_envs), dtype=torch.long)
    logp_buf, rew_buf, term_buf, done_buf = (torch.zeros((n_steps, n_envs)) for _ in range(4))
    obs, _ = envs.reset(seed=seed)
    ep_ret = np.zeros(n_envs)
    curve = []
    start = time.perf_counter()
    for it in range(iterations):
        finished = []
        for t in range(n_steps):
            o = torch.as_tensor(obs, dtype=torch.float32)
            with torch.no_grad():
                dist = torch.distributions.Categorical(logits=actor(o))
                action = dist.sample()
                logp = dist.log_prob(action)
            obs, reward, term, trunc, info = envs.step(action.numpy())
            done = term | trunc
            final = obs.copy()
            if done.any():  # the episode's last observation (obs is already the next episode's first)
                final[done] = np.stack(info["final_obs"][done])
            ep_ret += reward
            finished += list(ep_ret[done])
            ep_ret[done] = 0.0
            obs_buf[t], act_buf[t], logp_buf[t] = o, action, logp
            next_obs_buf[t] = torch.as_tensor(final, dtype=torch.float32)
            rew_buf[t] = torch.as_tensor(reward, dtype=torch.float32)
            term_buf[t] = torch.as_tensor(term, dtype=torch.float32)
            done_buf[t] = torch.as_tensor(done, dtype=torch.float32)
        with torch.no_grad():
            values = critic(obs_buf)[..., 0]
            deltas = rew_buf + c["gamma"] * (1.0 - term_buf) * critic(next_obs_buf)[..., 0] - values
            adv = torch.zeros_like(deltas)
            last = torch.zeros(n_envs)
            for t in reversed(range(n_steps)):
                last = adv[t] = deltas[t] + c["gamma"] * c["gae_lambda"] * (1.0 - done_buf[t]) * last
            target = adv + values
        b_obs, b_act, b_logp = obs_buf.reshape(batch, n_obs), act_buf.reshape(batch), logp_buf.reshape(batch)
        b_adv, b_target = adv.reshape(batch), target.reshape(batch)
        for _ in range(c["epochs"]):
            perm = torch.randperm(batch)
            for k in range(c["minibatches"]):
                mb = perm[k * mb_size : (k + 1) * mb_size]
                logits = actor(b_obs[mb])
                dist = torch.distributions.Categorical(logits=logits)
                ratio = torch.exp(dist.log_prob(b_act[mb]) - b_logp[mb])
                a = b_adv[mb]
                a = (a - a.mean()) / (a.std(unbiased=False) + 1e-8)
                surrogate = torch.min(ratio * a, torch.clamp(ratio, 1 - c["clip"], 1 + c["clip"]) * a).mean()
                value_loss = torch.mean((critic(b_obs[mb])[..., 0] - b_target[mb]) ** 2)
                loss = -surrogate + c["value_coef"] * value_loss - c["entropy_coef"] * dist.entropy().mean()
                if c["anneal_lr"]:
                    opt.param_groups[0]["lr"] = c["lr"] * (1.0 - grad_steps / total_grad_steps)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, c["max_grad_norm"])
                opt.step()
                grad_steps += 1
        curve.append(((it + 1) * batch, float(np.mean(finished)) if finished else math.nan))
    seconds = time.perf_counter() - start
    envs.close()
    return {"actor": actor, "curve": curve, "seconds": seconds, "env_steps": iterations * batch}


def evaluate(actor: nn.Module, episodes: int = 100, seed: int = 1) -> np.ndarray:
    """The returns of ``episodes`` CartPole-v1 episodes of the greedy policy (argmax of the actor's logits)."""
    envs = [gym.make("CartPole-v1") for _ in range(episodes)]
    obs = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(envs)])
    returns, alive = np.zeros(episodes), np.ones(episodes, bool)
    while alive.any():
        with torch.no_grad():
            actions = actor(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1).numpy()
        for i in np.flatnonzero(alive):
            obs[i], r, term, trunc, _ = envs[i].step(int(actions[i]))
            returns[i] += r
            alive[i] = not (term or trunc)
    return returns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100_000, help="environment steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--eval", action="store_true", help="then play 100 greedy episodes")
    args = ap.parse_args()
    out = train(args.steps, args.seed, threads=args.threads)
    curve = out["curve"]
    for i in np.unique(np.linspace(0, len(curve), 21).astype(int))[1:]:
        chunk = [r for _, r in curve[max(0, i - max(1, len(curve) // 20)) : i] if not math.isnan(r)]
        print(json.dumps({"env_steps": curve[i - 1][0], "train_return": round(float(np.mean(chunk)), 1)}), flush=True)
    summary = {
        "env_steps": out["env_steps"],
        "seconds": round(out["seconds"], 1),
        "steps_per_s": round(out["env_steps"] / out["seconds"]),
        "torch_threads": torch.get_num_threads(),
    }
    if args.eval:
        summary["greedy_return_mean"] = float(evaluate(out["actor"]).mean())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
