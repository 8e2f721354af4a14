"""Training: optimisers, the jitted step, evaluation, reproducibility, resume, checkpoints, metrics, data parallel."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers_train import REPO, batchnorm_net, dropout_mlp, leaves_equal, python

import jaxnets
from jaxnets import data, train
from jaxnets.train import checkpoint as ckpt

SPIRALS = data.load("spirals")


def _fit(model, epochs=2, **kw):
    kw.setdefault("optimizer", optax.adam(1e-2))
    return train.fit(
        model,
        SPIRALS.train_x,
        SPIRALS.train_y,
        SPIRALS.test_x,
        SPIRALS.test_y,
        epochs=epochs,
        batch_size=32,
        progress=False,
        log=lambda s: None,
        **kw,
    )


@pytest.mark.parametrize("name", train.OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(name):
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    lr = {"sgd": 0.5, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.1}.get(name, 0.01)
    opt = train.make_optimizer(name, lr, weight_decay=1e-4)
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    step = train.make_train_step(model, opt)
    x, y = jnp.asarray(SPIRALS.train_x), jnp.asarray(SPIRALS.train_y)
    losses = []
    for _ in range(30):
        state, m = step(state, x, y)
        losses.append(float(m["loss"]))
    assert losses[-1] < losses[0] and int(state.step) == 30


def test_make_optimizer_rejects_bad_names_and_values():
    with pytest.raises(ValueError, match="unknown optimizer"):
        train.make_optimizer("lbfgs", 0.1)
    with pytest.raises(ValueError, match="lr > 0"):
        train.make_optimizer("sgd", -1.0)
    with pytest.raises(ValueError, match="total_steps"):
        train.make_optimizer("sgd", 0.1, schedule="cosine")


def test_train_state_is_a_pytree_and_the_step_donates_it():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    opt = optax.sgd(0.1)
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(state.params)) + 2 + len(jax.tree.leaves(state.opt_state))
    step = train.make_train_step(model, opt)
    new, _ = step(state, jnp.asarray(SPIRALS.train_x[:32]), jnp.asarray(SPIRALS.train_y[:32]))
    assert state.params["out"]["w"].is_deleted() and not new.params["out"]["w"].is_deleted()


def test_fit_learns_the_spirals_and_xor():
    result = _fit(jaxnets.build("mlp", input_shape=(2,), num_classes=2), epochs=40)
    assert result.history[-1]["test_accuracy"] > 0.95
    x, y = data.xor()
    model = jaxnets.models.mlp(input_shape=(2,), num_classes=2, hidden=(8,), activation="tanh")
    result = train.fit(
        model, x, y, x, y, optimizer=optax.adam(0.05), epochs=200, batch_size=4, progress=False, log=lambda s: None
    )
    assert result.history[-1]["test_accuracy"] == 1.0


def test_fit_regresses_real_targets_with_a_linear_head():
    x = np.linspace(-3, 3, 256, dtype=np.float32)[:, None]
    y = np.sin(x)
    model = jaxnets.models.mlp(input_shape=(1,), num_classes=1, hidden=(32,), activation="tanh", head="linear")
    result = train.fit(
        model, x, y, x, y, optimizer=optax.adam(1e-2), epochs=60, batch_size=32, progress=False, log=lambda s: None
    )
    first, last = result.history[0], result.history[-1]
    assert "train_accuracy" not in last  # a regression reports its mean squared error only
    assert last["test_loss"] < first["train_loss"] / 10 and last["test_loss"] < 0.01
    with pytest.raises(ValueError, match=r"regression targets must have the outputs' shape \(4, 1\); got \(4,\)"):
        model.metrics(*model.init(jax.random.PRNGKey(0)), x[:4], y[:4, 0])


def test_evaluate_counts_every_example_once_whatever_the_batch_size():
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    params, state = model.init(jax.random.PRNGKey(1))
    x, y = SPIRALS.test_x[:301], SPIRALS.test_y[:301]
    outputs, _ = model.apply(params, state, jnp.asarray(x))
    want_loss = float(jaxnets.losses.softmax_cross_entropy(outputs, jnp.asarray(y)).mean())
    want_acc = float(jnp.mean(jnp.argmax(outputs, -1) == y))
    for batch in (1, 64, 300, 301, 1000):
        got = train.evaluate(model, params, state, x, y, batch_size=batch)
        assert got["loss"] == pytest.approx(want_loss, rel=1e-5) and got["accuracy"] == pytest.approx(want_acc)


def test_same_seed_same_params_other_seed_other_params():
    model = dropout_mlp()
    a, b, c = _fit(model, seed=3), _fit(model, seed=3), _fit(model, seed=4)
    assert leaves_equal(a.state.params, b.state.params) and a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert not leaves_equal(a.state.params, c.state.params)


@pytest.mark.parametrize("model", [dropout_mlp(), batchnorm_net()], ids=["dropout", "batchnorm"])
def test_resume_ends_with_exactly_the_uninterrupted_params(tmp_path, model):
    straight = _fit(model, epochs=3, workdir=tmp_path / "a")
    _fit(model, epochs=1, workdir=tmp_path / "b")
    resumed = _fit(model, epochs=3, workdir=tmp_path / "b", resume=True)
    assert leaves_equal(straight.state, resumed.state)
    records = train.read_metrics(tmp_path / "b" / train.METRICS)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["train_loss"] for r in records] == [r["train_loss"] for r in straight.history]


def test_resume_with_another_config_fails_and_keeps_the_checkpoint(tmp_path):
    _fit(dropout_mlp(), epochs=1, workdir=tmp_path, config={"lr": 0.01})
    before = (tmp_path / train.CHECKPOINT).read_bytes()
    with pytest.raises(train.CheckpointError, match=r"another config.*parameters=82 there but 31202 here"):
        _fit(jaxnets.build("mlp", input_shape=(2,), num_classes=2), workdir=tmp_path, resume=True, config={"lr": 0.01})
    with pytest.raises(train.CheckpointError, match=r"lr=0\.01 there but 0\.1 here"):
        _fit(dropout_mlp(), workdir=tmp_path, resume=True, config={"lr": 0.1})
    with pytest.raises(train.CheckpointError, match="--resume"):
        _fit(dropout_mlp(), workdir=tmp_path, config={"lr": 0.01})
    assert (tmp_path / train.CHECKPOINT).read_bytes() == before


def test_checkpoint_round_trip_and_a_failed_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = batchnorm_net()
    opt = optax.adam(1e-3)
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    path = tmp_path / train.CHECKPOINT
    train.save_checkpoint(path, state, {"model": "bn_net"})
    template = train.create_train_state(model, opt, jax.random.PRNGKey(9))
    restored, config = train.load_checkpoint(path, template)
    assert config == {"model": "bn_net"} and leaves_equal(restored, state)

    later = state.replace(step=state.step + 5, params=jax.tree.map(lambda p: p + 1, state.params))

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "fsync", crash)  # the temp file is written, then the write "fails"
    with pytest.raises(OSError, match="disk full"):
        train.save_checkpoint(path, later, {"model": "bn_net"})
    monkeypatch.undo()
    restored, _ = train.load_checkpoint(path, template)
    assert leaves_equal(restored, state) and int(restored.step) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [train.CHECKPOINT]  # no temp file left behind
    with pytest.raises(train.CheckpointError, match=r"does not match|other shapes"):
        other = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
        train.load_checkpoint(path, train.create_train_state(other, opt, jax.random.PRNGKey(0)))


def test_workdir_gets_metrics_jsonl_and_curves_png(tmp_path):
    _fit(dropout_mlp(), epochs=2, workdir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / train.METRICS).read_text().splitlines()]
    assert len(records) == 2
    for key in (
        "epoch",
        "step",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "seconds",
        "images_per_second",
    ):
        assert all(key in r for r in records), key
    assert records[1]["step"] == 2 * (512 // 32)
    assert (tmp_path / train.CURVES).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_for_explains_incompatible_model_and_dataset():
    with pytest.raises(ValueError, match=r"model lenet5 cannot take dataset xor \(examples of shape \(2,\)"):
        train.build_for("lenet5", data.load_raw("xor"))
    assert train.build_for("mlp", data.load_raw("xor")).input_shape == (2,)


def test_config_resolution_fills_defaults_and_checks_names():
    config = train.TrainConfig().resolved()
    assert (config.model, config.dataset, config.optimizer, config.epochs) == ("lenet5_modern", "mnist", "momentum", 10)
    assert train.TrainConfig(model="lenet5").resolved().normalisation == "lenet1998"
    for bad, match in [
        ({"model": "vgg99"}, "unknown model"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"epochs": 0}, "epochs"),
    ]:
        with pytest.raises(ValueError, match=match):
            train.TrainConfig(**bad).resolved()


PARALLEL = textwrap.dedent("""
    import jax, numpy as np, optax, jaxnets
    from jaxnets import data, train
    ds = data.load("spirals")
    model = jaxnets.build("mlp", input_shape=(2,), num_classes=2)
    r = train.fit(model, ds.train_x, ds.train_y, ds.test_x, ds.test_y, optimizer=optax.adam(1e-2), epochs=3,
                  batch_size=64, progress=False, log=lambda s: None)
    flat = np.concatenate([np.ravel(a) for a in jax.tree.leaves(r.state.params)])
    print(jax.device_count(), [float(v) for v in flat])
""")


def test_data_parallel_over_8_host_devices_matches_one_device():
    def run(devices):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}
        out = subprocess.run([python(), "-c", PARALLEL], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        count, values = out.stdout.strip().splitlines()[-1].split(" ", 1)
        return int(count), np.array(json.loads(values))

    (n1, one), (n8, eight) = run(1), run(8)
    assert (n1, n8) == (1, 8)
    np.testing.assert_allclose(eight, one, rtol=1e-4, atol=1e-5)
