"""The training step as the unit of extension: a two-player GAN (its own TrainStep, two optax optimisers) trained by
the same ``fit`` as every model, with its workdir, metrics, guard, and a SIGKILL-then-resume that ends bitwise equal
to the uninterrupted run; data given as pytrees; the guard refusing a step with any non-finite metric."""

from __future__ import annotations

import os
import subprocess
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers_train import REPO, leaves_equal, python

import jaxnets
from jaxnets import train
from jaxnets.train import TrainState, TrainStep

LATENT = 2
MEAN, STD = 3.0, 0.5  # the data: N(3, 0.5^2) in one dimension
GAN_FIT = {"epochs": 30, "batch_size": 64, "seed": 0, "progress": False, "log": lambda line: None}


def toy_data(n: int = 512) -> np.ndarray:
    return (MEAN + STD * np.random.default_rng(0).standard_normal((n, 1))).astype(np.float32)


GENERATOR = jaxnets.models.mlp(input_shape=(LATENT,), num_classes=1, hidden=(16, 16), activation="tanh", head="linear")
DISCRIMINATOR = jaxnets.models.mlp(input_shape=(1,), num_classes=1, hidden=(16, 16), activation="tanh", head="linear")


def generate(state: TrainState, z: jax.Array) -> jax.Array:
    return GENERATOR.apply(state.params["generator"], state.model_state["generator"], z)[0]


def gan_step(g_opt: optax.GradientTransformation, d_opt: optax.GradientTransformation) -> TrainStep:
    """Goodfellow et al. (2014) with the non-saturating generator loss: a discriminator step on the real batch
    against G(z), then a generator step against the updated discriminator; each player with its own optimiser."""
    opts = {"generator": g_opt, "discriminator": d_opt}

    def init(key):
        kg, kd, run_key = jax.random.split(key, 3)
        (pg, sg), (pd, sd) = GENERATOR.init(kg), DISCRIMINATOR.init(kd)
        params, model_state = {"generator": pg, "discriminator": pd}, {"generator": sg, "discriminator": sd}
        return TrainState.create(params, {k: opts[k].init(params[k]) for k in opts}, run_key, model_state)

    def update(state, batch, key):
        x, _ = batch
        kd, kg = jax.random.split(key)
        params, opt_state = dict(state.params), dict(state.opt_state)

        def logits(pd, examples):
            return DISCRIMINATOR.apply(pd, state.model_state["discriminator"], examples)[0][:, 0]

        def d_loss(pd):
            fake = generate(state, jax.random.normal(kd, (x.shape[0], LATENT)))
            return jnp.mean(jax.nn.softplus(-logits(pd, x)) + jax.nn.softplus(logits(pd, fake)))

        def g_loss(pg):  # non-saturating: -log D(G(z)), against the discriminator just updated
            made = generate(state.replace(params={"generator": pg}), jax.random.normal(kg, (x.shape[0], LATENT)))
            return jnp.mean(jax.nn.softplus(-logits(params["discriminator"], made)))

        ld, grads = jax.value_and_grad(d_loss)(params["discriminator"])
        updates, opt_state["discriminator"] = d_opt.update(grads, opt_state["discriminator"])
        params["discriminator"] = optax.apply_updates(params["discriminator"], updates)
        lg, grads = jax.value_and_grad(g_loss)(params["generator"])
        updates, opt_state["generator"] = g_opt.update(grads, opt_state["generator"])
        params["generator"] = optax.apply_updates(params["generator"], updates)
        return state.replace(params=params, opt_state=opt_state), {"generator_loss": lg, "discriminator_loss": ld}

    return TrainStep(init, update, name="toy_gan")


STEP = gan_step(optax.adam(5e-3, b1=0.5), optax.adam(5e-3, b1=0.5))


def moment_error(state: TrainState) -> float:
    """|mean - 3| + |std - 0.5| of 4096 generated samples."""
    samples = np.asarray(generate(state, jax.random.normal(jax.random.PRNGKey(7), (4096, LATENT))))
    return abs(samples.mean() - MEAN) + abs(samples.std() - STD)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The GAN trained without interruption, with a workdir."""
    workdir = tmp_path_factory.mktemp("gan")
    return workdir, train.fit(STEP, toy_data(), None, workdir=workdir, **GAN_FIT)


def test_a_gan_trains_through_fit_and_records_both_players(straight):
    workdir, result = straight
    assert moment_error(result.state) < 0.25 * moment_error(STEP.init(jax.random.PRNGKey(0)))
    records = train.read_metrics(workdir / train.METRICS)
    assert [r["epoch"] for r in records] == list(range(1, 31)) and records[-1]["step"] == 30 * 8
    assert all(np.isfinite(r["train_generator_loss"]) and np.isfinite(r["train_discriminator_loss"]) for r in records)
    assert records == result.history
    config = train.read_config(workdir / train.CHECKPOINT)
    assert config["model"] == "toy_gan" and config["input_shape"] == [1]
    saved, _ = train.load_checkpoint(workdir / train.CHECKPOINT, STEP.init(jax.random.PRNGKey(1)))
    assert leaves_equal(saved, result.state) and set(saved.opt_state) == {"generator", "discriminator"}


# A subprocess that trains the GAN into a workdir and SIGKILLs itself right after its `at`-th step.
KILLED = textwrap.dedent("""
    import os, signal, sys
    import jax
    sys.path.insert(0, "tests")
    from jaxnets.train import loop
    from test_train_step import GAN_FIT, STEP, toy_data
    at, make, calls = int(sys.argv[2]), loop.indexed_train_step, [0]

    def counting(*args):
        step = make(*args)

        def counted(*a):
            out = jax.block_until_ready(step(*a))
            calls[0] += 1
            if calls[0] == at:
                os.kill(os.getpid(), signal.SIGKILL)
            return out
        return counted

    loop.indexed_train_step = counting
    loop.fit(STEP, toy_data(), None, workdir=sys.argv[1], **GAN_FIT)
""")


@pytest.mark.slow
def test_a_gan_killed_and_resumed_ends_bitwise_equal_to_the_uninterrupted_run(straight, tmp_path):
    _, result = straight
    killed = subprocess.run(
        [python(), "-c", KILLED, str(tmp_path), "100"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert [r["epoch"] for r in train.read_metrics(tmp_path / train.METRICS)] == list(range(1, 13))  # 12 x 8 < 100
    resumed = train.fit(STEP, toy_data(), None, workdir=tmp_path, resume=True, **GAN_FIT)
    assert leaves_equal(resumed.state, result.state)
    timing = ("seconds", "images_per_second", "elapsed")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in train.read_metrics(tmp_path / train.METRICS)]
    assert strip == [{k: v for k, v in r.items() if k not in timing} for r in result.history]


def test_fit_takes_pytrees_of_examples_and_the_guard_refuses_any_non_finite_metric(tmp_path):
    """x a dict of two inputs (a two-input model of the sum of their features); a step whose second metric is NaN
    (at the example with a NaN) is not committed, and fit names that metric."""
    rng = np.random.default_rng(0)
    x = {"a": rng.normal(size=(64, 3)).astype(np.float32), "b": rng.normal(size=(64, 2)).astype(np.float32)}
    y = (x["a"].sum(1) + x["b"].sum(1) > 0).astype(np.int32)
    opt = optax.adam(0.05)

    def init(key):
        params = {"wa": jnp.zeros((3,)), "wb": jnp.zeros((2,)), "c": jnp.zeros(())}
        return TrainState.create(params, opt.init(params), key)

    def per_example(params, xs, ys):
        logit = xs["a"] @ params["wa"] + xs["b"] @ params["wb"] + params["c"]
        return optax.sigmoid_binary_cross_entropy(logit, ys.astype(jnp.float32)), ((logit > 0) == ys)

    def update(state, batch, key):
        (loss, _), grads = jax.value_and_grad(lambda p: (per_example(p, *batch)[0].mean(), 0), has_aux=True)(
            state.params
        )
        updates, opt_state = opt.update(grads, state.opt_state)
        check = jnp.sum(batch[0]["b"])  # NaN when the batch holds the poisoned example
        return state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state), {
            "loss": loss,
            "check": check,
        }

    def evaluate(state, xs, ys):
        loss, correct = per_example(state.params, xs, ys)
        return {"loss": loss, "accuracy": correct.astype(jnp.float32)}

    step = TrainStep(init, update, evaluate, name="two_inputs")
    result = train.fit(step, x, y, x, y, epochs=20, batch_size=16, progress=False, log=lambda line: None)
    assert result.history[-1]["test_accuracy"] > 0.9 and "train_check" in result.history[-1]
    x["b"][5, 1] = np.nan
    with pytest.raises(train.TrainingDiverged, match=r"the metric check became nan at step \d+ \(epoch 1"):
        train.fit(step, x, y, epochs=2, batch_size=16, progress=False, log=lambda line: None)
    with pytest.raises(ValueError, match="pass no optimizer"):
        train.fit(step, x, y, optimizer=opt)
    with pytest.raises(ValueError, match=r"need as many labels as training examples; got 64 examples and 63"):
        train.fit(step, x, y[:63])


def test_make_train_step_is_one_optimiser_update_computed_independently():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2, hidden=(8,))
    opt = optax.sgd(0.1, momentum=0.9)
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    x, y = jnp.asarray(toy_data(16).repeat(2, 1)), jnp.arange(16) % 2
    grads = jax.grad(lambda p: model.metrics(p, state.model_state, x, y, train=True)[0]["loss"].mean())(state.params)
    updates, _ = opt.update(grads, opt.init(state.params), state.params)
    want = optax.apply_updates(state.params, updates)
    new, _ = train.make_train_step(model, opt)(state, x, y)
    for got, expected in zip(jax.tree.leaves(new.params), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert int(new.step) == 1
