"""Models: the registry, batched apply against vmap of the per-example apply, and input checking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import random_like

import jaxnets
from jaxnets import models, nn, train
from jaxnets.models import REGISTRY


@pytest.mark.parametrize(
    ("name", "input_shape", "kwargs"),
    [
        ("small_cnn", (8, 8, 1), dict(features=4, strategy="im2col")),
        ("small_cnn", (8, 8, 1), dict(features=4, strategy="xla")),
        ("mlp", (6,), dict(hidden=(5, 4), activation="tanh")),
    ],
)
def test_vmap_of_per_example_apply_equals_batched_apply(name, input_shape, kwargs):
    model = jaxnets.build(name, input_shape, 3, **kwargs)
    params, state = random_like(jax.eval_shape(model.init, jax.random.key(0)), np.random.default_rng(1), 0.5)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((5, *input_shape)), jnp.float32)

    def one(xi):
        return model.apply(params, state, xi[None])[0][0]

    per_example = jax.vmap(one)(x)
    batched, _ = model.apply(params, state, x)
    assert per_example.shape == batched.shape == (5, 3)
    np.testing.assert_allclose(per_example, batched, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one(x[2]), batched[2], rtol=1e-5, atol=1e-5)
    assert float(jnp.std(batched[:, 0])) > 0  # the examples really differ


# Input shapes other than MNIST's: char_lstm reads 28 token ids; FCN needs multiples of 32; the super-resolution
# networks take their papers' patch sizes.
SHAPES = {"lenet5": (32, 32, 1), "char_lstm": (28,), "fcn": (64, 64, 1), "srcnn": (33, 33, 1), "espcn": (17, 17, 1)}
SHAPES["handwriting"] = (40, 4)  # pen-offset steps (dx, dy, pen_up, glyph id)
SHAPES["memn2n"] = {"story": (50, 6), "question": (6,)}  # several inputs: word ids (images: floats)
SHAPES["vqa_lstm_cnn"] = {"image": (64, 64, 3), "question": (9,)}
SHAPES["relation_network"] = SHAPES["cnn_mlp"] = {"image": (75, 75, 3), "question": (11,)}
SHAPES["show_tell"] = SHAPES["show_attend_tell"] = (64, 64, 3)


def batch_of(shape) -> jax.ShapeDtypeStruct | dict[str, jax.ShapeDtypeStruct]:
    """A batch of 4 examples of a model's input shape, abstract: floats, or a dict (word ids; images floats)."""
    if isinstance(shape, dict):
        return {k: jax.ShapeDtypeStruct((4, *v), jnp.float32 if k == "image" else jnp.int32) for k, v in shape.items()}
    return jax.ShapeDtypeStruct((4, *shape), jnp.float32)


def targets(name: str, shape: tuple[int, ...], out: jax.ShapeDtypeStruct):
    """Zero targets of the kind a model's objective takes, for a batch of 4."""
    if name in ("fcn", "unet"):  # per-pixel classes
        return jnp.zeros(out.shape[:-1], jnp.int32)
    if name in ("srcnn", "espcn"):  # the high-resolution image
        return jnp.zeros(out.shape, jnp.float32)
    if name == "handwriting":  # the next steps (dx, dy, pen_up, valid)
        return jnp.zeros((4, *shape), jnp.float32)
    if name in ("show_tell", "show_attend_tell"):  # captions: <start> words <end> padded with 0
        return jnp.zeros((4, 10), jnp.int32)
    if name == "yolo":  # padded boxes and labels
        return {"boxes": jnp.zeros((4, 2, 4)), "labels": -jnp.ones((4, 2), jnp.int32)}
    return jnp.zeros((4, *shape) if name == "char_lstm" else 4, jnp.int32)  # a language model: next-token targets


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_builds_every_model_with_the_requested_shapes(name):
    shape = SHAPES.get(name, (28, 28, 1))
    model = jaxnets.build(name, shape, 10)
    assert model.input_shape == shape
    params, state = jax.eval_shape(model.init, jax.random.key(0))
    x = batch_of(shape)
    out = jax.eval_shape(lambda p, s, x: model.apply(p, s, x)[0], params, state, x)
    if model.objective is None:
        assert out.shape == (4, 10)
    else:  # not a classifier (autoencoders, dense vision): its own objective gives per-example metrics and a 'loss'
        y = targets(name, shape, out)
        metrics = jax.eval_shape(lambda p, s, x: model.metrics(p, s, x, y)[0], params, state, x)
        assert metrics["loss"].shape == (4,)
    assert model.head in jaxnets.losses.HEADS


def test_two_classes_use_one_output_unit_where_the_head_is_binary():
    for name, head in (("perceptron", "perceptron"), ("logistic", "sigmoid")):
        model = jaxnets.build(name, (3,), 2)
        assert model.head == head
        params, _ = jax.eval_shape(model.init, jax.random.key(0))
        assert params["out"]["w"].shape == (3, 1)


def test_apply_with_wrong_input_shape_names_the_expected_shape():
    model = jaxnets.build("small_cnn", (8, 8, 1), 3, features=4)
    params, state = jax.eval_shape(model.init, jax.random.key(0))  # the input check comes before any computation
    for bad in [(2, 8, 8, 3), (2, 9, 8, 1), (8, 8, 1), (2, 8, 8)]:
        with pytest.raises(ValueError, match=r"expects input of shape \(batch, 8, 8, 1\); got") as err:
            model.apply(params, state, jnp.zeros(bad))
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    mlp_model = jaxnets.build("mlp", (6,), 3, hidden=(4,))
    with pytest.raises(ValueError, match=r"\(batch, 6\)"):
        mlp_model.apply(*jax.eval_shape(mlp_model.init, jax.random.key(0)), jnp.zeros((2, 7)))


def test_unknown_model_name():
    with pytest.raises(ValueError, match=r"unknown model 'resnet' \(did you mean resnet18, .*\); choose one of") as err:
        jaxnets.build("resnet")
    assert "lenet5" in str(err.value) and "\n" not in str(err.value)


def test_bad_model_options_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown activation 'swish'") as err:
        jaxnets.build("mlp", (4,), 2, activation="swish")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="dropout rate"):
        jaxnets.build("mlp", (4,), 2, dropout=1.5)
    with pytest.raises(ValueError, match="unknown convolution strategy 'fft'"):
        jaxnets.build("small_cnn", strategy="fft")
    with pytest.raises(ValueError, match=r"\(height, width, channels\)"):
        jaxnets.build("lenet5", (32, 32))
    with pytest.raises(ValueError, match="unknown output head 'hinge'"):
        jaxnets.build("mlp", (4,), 2, head="hinge")


def _two_inputs(input_shape, num_classes=2):
    """A model of two inputs by name: dense on the concatenation."""
    out = nn.dense(num_classes, name="out")

    def init(key, shapes):
        params, _, shape = out.init(key, (shapes["u"][0] + shapes["v"][0],))
        return {"out": params}, {}, shape

    def apply(params, state, x, *, key=None, train=False):
        return out.apply(params["out"], {}, jnp.concatenate([x["u"], x["v"]], -1))[0], state

    return models.Model("two_inputs", nn.Layer(init, apply, "two_inputs"), input_shape)


def test_a_model_of_several_inputs_takes_a_dict_trains_and_names_wrong_inputs(tmp_path):
    model = _two_inputs({"u": [3], "v": (2,)})
    assert model.input_shape == {"u": (3,), "v": (2,)}
    assert hash(model) == hash(model) and hash(model.input_shape) == hash(models.input_shapes({"v": [2], "u": [3]}))
    rng = np.random.default_rng(0)
    x = {"u": rng.normal(size=(64, 3)).astype("float32"), "v": rng.normal(size=(64, 2)).astype("float32")}
    y = (x["u"][:, 0] > x["v"][:, 1]).astype("int32")
    result = train.fit(model, x, y, x, y, optimizer=optax.adam(0.05), epochs=8, batch_size=16, progress=False)
    assert result.history[-1]["test_loss"] < result.history[0]["test_loss"]
    params, state = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"takes a dict of inputs \['u', 'v'\]; got an array of shape \(64, 3\)"):
        model.apply(params, state, x["u"])
    with pytest.raises(ValueError, match="expects inputs of shapes"):
        model.apply(params, state, {"u": x["u"], "v": x["u"]})
    with pytest.raises(ValueError, match="expects examples of shape"):
        train.fit(model, {"u": x["u"], "v": x["u"]}, y, optimizer=optax.sgd(0.1), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"input_shape\['v'\] must be >= 1"):
        _two_inputs({"u": (3,), "v": (0,)})
