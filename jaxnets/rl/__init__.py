"""Deep reinforcement learning the JAX way: environments written in JAX, and agents whose whole training loop
(acting in many vectorised environments, learning) compiles into one XLA program that ``vmap`` runs over seeds.

    agent = rl.ppo(rl.make("cartpole"))
    runner, metrics = jax.jit(jax.vmap(lambda k: rl.train(agent, k)))(jax.random.split(jax.random.key(0), 8))
"""

from jaxnets.rl import envs, tabular
from jaxnets.rl._dqn import buffer_add, buffer_init, buffer_sample, dqn, td_targets
from jaxnets.rl._ppo import clipped_surrogate, ppo
from jaxnets.rl._reinforce import reinforce
from jaxnets.rl._run import AGENTS, load_runner, make_agent, run, save_runner
from jaxnets.rl.common import Agent, discounted_returns, evaluate, gae, huber, mlp, train
from jaxnets.rl.envs import Env, cartpole, make, mountain_car

__all__ = [
    "AGENTS",
    "Agent",
    "Env",
    "buffer_add",
    "buffer_init",
    "buffer_sample",
    "cartpole",
    "clipped_surrogate",
    "discounted_returns",
    "dqn",
    "envs",
    "evaluate",
    "gae",
    "huber",
    "load_runner",
    "make",
    "make_agent",
    "mlp",
    "mountain_car",
    "ppo",
    "reinforce",
    "run",
    "save_runner",
    "tabular",
    "td_targets",
    "train",
]
