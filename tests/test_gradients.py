"""jax.grad of every layer and every registered model agrees with central finite differences in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from gradcheck import check_grad, x64
from helpers import abstract_init, model_params, random_like

import jaxnets
from jaxnets import losses, nn
from jaxnets.models import C3_TABLE, REGISTRY, perceptron, perceptron_rule, rbf_output

KEY = jax.random.key(0)


def _check_layer(
    layer: nn.Layer, in_shape, batch: int = 2, *, train: bool = False, key=None, seed: int = 0, **kwargs
) -> int:
    """Finite-difference check of ``sum(R * layer(x))`` with respect to the parameters and the input, in float64."""
    with x64():
        p_shapes, s_shapes, out_shape = abstract_init(layer, in_shape)
        rng = np.random.default_rng(seed)
        params = random_like(p_shapes, rng, 0.5, dtype=jnp.float64)  # no zero biases or unit scales: generic point
        state = random_like(s_shapes, rng, low=0.5, dtype=jnp.float64)  # e.g. positive running variances
        x = jnp.asarray(rng.standard_normal((batch, *in_shape)))
        proj = jnp.asarray(rng.standard_normal((batch, *out_shape)))

        def loss(args):
            p, xx = args
            y, _ = layer.apply(p, state, xx, key=key, train=train)
            assert y.dtype == jnp.float64, y.dtype
            assert y.shape == (batch, *out_shape), (y.shape, out_shape)
            return jnp.sum(proj * y)

        return check_grad(loss, (params, x), **kwargs)


def test_checker_catches_a_wrong_gradient():
    """The checker itself must fail on a function whose custom derivative is off by a factor."""

    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    f.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * 1.01 * jnp.cos(x),))
    with x64():
        x = jnp.linspace(0.1, 1.0, 5)
        check_grad(lambda v: jnp.sum(jnp.sin(v)), x)  # the true derivative passes
        with pytest.raises(AssertionError, match="disagree"):
            check_grad(lambda v: jnp.sum(f(v)), x)


def test_checker_refuses_float32():
    with pytest.raises(AssertionError, match="float64"):
        check_grad(lambda v: jnp.sum(v**2), jnp.ones(3, jnp.float32))


def test_x64_is_local():
    with x64():
        assert jnp.ones(2).dtype == jnp.float64
    assert jnp.ones(2).dtype == jnp.float32


def test_dense():
    assert _check_layer(nn.dense(4), (3,)) > 0
    _check_layer(nn.dense(3), (2, 5))  # dense over the last axis of a multi-axis input


@pytest.mark.parametrize("strategy", ["xla", "im2col"])
@pytest.mark.parametrize(
    ("ndim", "in_shape", "kwargs"),
    [
        (1, (9, 2), dict(features=3, kernel_size=3)),
        (1, (9, 4), dict(features=4, kernel_size=3, stride=2, padding=1, groups=2)),
        (1, (10, 2), dict(features=2, kernel_size=3, dilation=2, padding="SAME")),
        (2, (6, 5, 2), dict(features=3, kernel_size=(3, 2), stride=(2, 1), padding="SAME")),
        (2, (6, 6, 4), dict(features=6, kernel_size=3, padding="VALID", groups=2)),
        (2, (7, 7, 2), dict(features=2, kernel_size=3, dilation=2, padding=((1, 0), (0, 2)))),
        (3, (4, 4, 4, 2), dict(features=2, kernel_size=2, stride=2, padding="SAME")),
        (3, (4, 3, 4, 2), dict(features=4, kernel_size=(2, 2, 3), padding=1, groups=2)),
    ],
)
def test_conv(strategy, ndim, in_shape, kwargs):
    _check_layer(nn.conv(ndim=ndim, strategy=strategy, **kwargs), in_shape)


@pytest.mark.parametrize("strategy", ["xla", "im2col"])
def test_conv_c3_connection_table(strategy):
    _check_layer(nn.conv2d(16, 3, connections=C3_TABLE, strategy=strategy), (5, 5, 6), batch=1)


@pytest.mark.parametrize(
    "layer",
    [
        nn.max_pool(2),
        nn.max_pool(3, stride=1, padding="SAME"),
        nn.max_pool((2, 3), stride=(1, 2)),
        nn.avg_pool(2),
        nn.avg_pool(3, stride=2, padding="SAME"),
        nn.avg_pool(2, stride=1, padding=1),
        nn.subsample(2),
    ],
    ids=["max", "max_same", "max_rect", "avg", "avg_same", "avg_pad", "subsample"],
)
def test_pooling(layer):
    _check_layer(layer, (6, 6, 2))


def test_pooling_1d_and_3d():
    _check_layer(nn.max_pool(2), (8, 3))
    _check_layer(nn.avg_pool(2), (4, 4, 4, 2))


def test_adaptive_and_global_avg_pool():
    _check_layer(nn.adaptive_avg_pool((3, 2)), (7, 5, 2))  # overlapping windows down, repetition up
    _check_layer(nn.adaptive_avg_pool(4), (2, 2, 1))
    _check_layer(nn.global_avg_pool(), (3, 4, 2))


def test_lrn():
    """Local response normalisation: the paper's constants, then ones large enough for the denominator to matter."""
    _check_layer(nn.lrn(), (2, 2, 7), seed=1)
    _check_layer(nn.lrn(size=3, alpha=0.5, beta=0.75, k=1.0), (2, 2, 5))


def test_batch_norm_train():
    _check_layer(nn.batch_norm(), (3, 3, 2), batch=3, train=True)
    _check_layer(nn.batch_norm(), (4,), batch=5, train=True)


def test_batch_norm_eval():
    _check_layer(nn.batch_norm(), (4,), batch=3, train=False)


def test_dropout_fixed_key():
    """With a fixed key dropout is a fixed mask times 1/(1-rate): its gradient is that mask."""
    _check_layer(nn.dropout(0.5), (6,), batch=4, train=True, key=jax.random.key(3))


@pytest.mark.parametrize("name", sorted(nn.ACTIVATIONS))
def test_activations(name):
    _check_layer(nn.activation(name), (5,), batch=3)


def test_flatten():
    _check_layer(nn.flatten(), (2, 3, 2))


def test_serial_parallel_residual():
    _check_layer(nn.serial(nn.dense(4), nn.activation("tanh"), nn.dense(3)), (3,))
    _check_layer(nn.parallel(nn.dense(2), nn.serial(nn.dense(3), nn.activation("sigmoid"))), (4,))
    _check_layer(nn.parallel(nn.conv2d(2, 3, padding="SAME"), nn.max_pool(3, stride=1, padding="SAME")), (4, 4, 2))
    _check_layer(nn.residual(nn.serial(nn.dense(3), nn.activation("tanh"))), (3,))
    _check_layer(nn.residual(nn.dense(3), shortcut=nn.dense(3)), (4,))


def test_rbf_output():
    """LeNet-5's RBF head; its codes are state (not trained), so only the input is differentiated."""
    _check_layer(rbf_output(4), (6,), batch=3)


# --- models ------------------------------------------------------------------------------------------------------

MODEL_CASES = {
    "logistic": dict(input_shape=(3, 3, 1), num_classes=3),
    "mlp": dict(input_shape=(4, 4, 1), num_classes=3, hidden=(6, 5), activation="tanh", dropout=0.25),
    "small_cnn": dict(input_shape=(6, 6, 1), num_classes=3, features=4),
    "lenet5": dict(input_shape=(32, 32, 1), num_classes=10),
    "lenet5_modern": dict(input_shape=(28, 28, 1), num_classes=10),
    # The ImageNet-era CNNs, reduced: tiny widths, tiny images (their small-input layouts), fewer blocks or modules;
    # together they cover LRN (alexnet), inception modules with batch norm, basic and bottleneck blocks with
    # identity, projection (option B) and zero-padding (option A) shortcuts.
    "alexnet": dict(input_shape=(15, 15, 2), num_classes=3, channels=(2, 3, 3, 2, 2), hidden=(4,), dropout=0, lrn=True),
    "vgg11": dict(input_shape=(8, 8, 3), num_classes=3, widths=(4, 4, 6, 6, 6), hidden=(4,)),
    "googlenet": dict(input_shape=(8, 8, 2), num_classes=3, width=1 / 32, modules=("3a",)),
    "resnet50": dict(input_shape=(12, 12, 1), num_classes=2, width=1, blocks=(1, 1, 1, 1)),
    "resnet20": dict(input_shape=(6, 6, 2), num_classes=3, widths=(2, 3, 4)),
    # Recurrent classifiers reading 4 rows of 3 pixels, through lax.scan (masks and cells: tests/test_recurrent.py).
    "rnn": dict(input_shape=(4, 3), num_classes=3, hidden=3),
    "lstm": dict(input_shape=(4, 3, 1), num_classes=3, hidden=3, layers=2),
    "gru": dict(input_shape=(4, 3), num_classes=3, hidden=3),
    "cam_cnn": dict(input_shape=(8, 8, 1), num_classes=3, features=(2, 3)),
}
# The LeNets are checked through XLA's convolutions, which compile several times faster in float64 than im2col's
# gathers; im2col is checked layer by layer above (every conv case and the C3 table) and through small_cnn here.
CHECK_STRATEGY = {
    "lenet5": "xla",
    "lenet5_modern": "xla",
    "small_cnn": "im2col",
    **dict.fromkeys(["alexnet", "vgg11", "googlenet", "resnet50", "resnet20", "cam_cnn"], "xla"),
}

# Models trained on an objective of their own (not a classifier head) have it checked by finite differences on
# reduced configurations in their own files: tests/test_autoencoders.py, tests/test_rbm.py, tests/test_recurrent.py
# (char_lstm: its inputs are token ids).
CHECKED_ELSEWHERE = {"autoencoder", "dae", "conv_autoencoder", "conv_dae", "vae", "rbm", "char_lstm"}
CHECKED_ELSEWHERE |= {"mdn", "heteroscedastic", "triplet"}  # tests/test_mdn.py, tests/test_metric.py
CHECKED_ELSEWHERE |= {"handwriting"}  # tests/test_handwriting.py
CHECKED_ELSEWHERE |= {"gan", "dcgan", "dann", "avb"}  # tests/test_gan.py, test_dann.py, test_avb.py
CHECKED_ELSEWHERE |= {"fcn", "unet", "srcnn", "espcn", "yolo"}  # their objectives: test_dense_objective below
# Registered variants of a checked model, built by the same code: VGG-13/16/19 are vgg() with more convolutions per
# stage; ResNet-18/34 are resnet() with basic blocks, whose code (models._resnet._stage, basic_block) resnet20 checks.
SAME_CODE_AS = {"vgg13": "vgg11", "vgg16": "vgg11", "vgg19": "vgg11", "resnet18": "resnet50", "resnet34": "resnet50"}


def test_every_registered_model_is_checked():
    assert set(MODEL_CASES) | {"perceptron"} | CHECKED_ELSEWHERE | set(SAME_CODE_AS) == set(REGISTRY)
    assert all(REGISTRY[a][0].__module__ == REGISTRY[b][0].__module__ for a, b in SAME_CODE_AS.items())


@pytest.mark.parametrize("name", sorted(MODEL_CASES))
def test_model(name):
    """Gradient of the model's own head loss with respect to all parameters and the input, on a batch of 2."""
    kwargs = dict(MODEL_CASES[name])
    shape, classes = kwargs.pop("input_shape"), kwargs.pop("num_classes")
    if name in CHECK_STRATEGY:
        kwargs["strategy"] = CHECK_STRATEGY[name]
    model = jaxnets.build(name, shape, classes, **kwargs)
    with x64():
        rng = np.random.default_rng(1)
        params, state = model_params(model, rng, jnp.float64)  # a generic point: no zero biases
        x = jnp.asarray(rng.uniform(0, 1, (2, *model.input_shape)))
        labels = jnp.asarray([1, 2])
        loss_fn = losses.loss_for(model.head)

        def loss(args):
            p, xx = args
            out, _ = model.apply(p, state, xx, key=jax.random.key(5), train=True)  # mlp has dropout
            assert out.dtype == jnp.float64
            return jnp.mean(loss_fn(out, labels))

        n = check_grad(loss, (params, x), max_coords_per_leaf=24, n_directions=2)
    assert n >= 24


# Dense-vision models, reduced, with the targets their objectives take: per-pixel classes (segmentation), the
# high-resolution image (super-resolution), boxes and labels (detection; one digit per image, the rest padding -1).
DENSE_CASES = {
    "fcn": (dict(input_shape=(32, 32, 1), num_classes=3, channels=(3, 3, 4, 4, 4), fc=3), "mask"),
    "unet": (dict(input_shape=(8, 8, 1), num_classes=3, channels=(3, 4)), "mask"),
    "srcnn": (dict(input_shape=(6, 6, 1), features=(2, 2), kernel_sizes=(3, 1, 3)), "image"),
    "espcn": (dict(input_shape=(4, 4, 1), scale=2, features=(2, 2), kernel_sizes=(3, 3, 3)), "image"),
    "yolo": (dict(input_shape=(8, 8, 1), num_classes=2, features=(2,), head=3), "boxes"),
}


@pytest.mark.parametrize("name", sorted(DENSE_CASES))
def test_dense_objective(name):
    """Gradient of a dense-vision model's own objective (its mean 'loss') w.r.t. all parameters and the input."""
    kwargs, kind = DENSE_CASES[name]
    shape = kwargs["input_shape"]
    model = jaxnets.build(name, **kwargs, **({"strategy": "xla"} if kind == "mask" else {}))
    with x64():
        rng = np.random.default_rng(1)
        params, state = model_params(model, rng, jnp.float64)
        x = jnp.asarray(rng.uniform(0, 1, (2, *shape)))
        out = jax.eval_shape(lambda p, s, xx: model.apply(p, s, xx)[0], params, state, x)
        if kind == "mask":
            y = jnp.asarray(rng.integers(0, kwargs["num_classes"], out.shape[:-1]), jnp.int32)
        elif kind == "image":
            y = jnp.asarray(rng.uniform(0, 1, out.shape))
        else:
            boxes = np.full((2, 2, 4), -1.0)
            boxes[:, 0] = [[1.3, 0.6, 5.2, 4.9], [2.1, 2.7, 7.4, 6.2]]
            y = {"boxes": jnp.asarray(boxes), "labels": jnp.asarray([[1, -1], [0, -1]], jnp.int32)}

        def loss(args):
            p, xx = args
            metrics, _ = model.metrics(p, state, xx, y, train=True)
            assert metrics["loss"].dtype == jnp.float64 and metrics["loss"].shape == (2,)
            # YOLO's confidence target is the predicted box's IoU under stop_gradient (as in v1), which finite
            # differences would differentiate: its term, (confidence - IoU)^2, is checked by hand in test_detection.
            return jnp.mean(metrics["loss"] - metrics.get("object", 0.0))

        n = check_grad(loss, (params, x), max_coords_per_leaf=24, n_directions=2)
    assert n >= 24


@pytest.mark.parametrize("num_classes", [2, 3])
def test_perceptron_criterion_gradient_is_the_perceptron_rule(num_classes):
    """The step head has zero derivative almost everywhere; its criterion's gradient is -(t - o) x instead."""
    model = perceptron(input_shape=(3,), num_classes=num_classes)
    rng = np.random.default_rng(0)
    params, state = random_like(jax.eval_shape(model.init, KEY), rng)
    x = jnp.asarray(rng.standard_normal((8, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, num_classes, 8))

    def loss(p):
        out, _ = model.apply(p, state, x)
        return jnp.sum(losses.loss_for(model.head)(out, labels))

    g = jax.grad(loss)(params)
    z = np.asarray(x @ params["out"]["w"] + params["out"]["b"])
    fired = (z > 0).astype(np.float32)
    t = np.asarray(labels)[:, None] if num_classes == 2 else np.eye(num_classes)[np.asarray(labels)]
    delta = t - fired
    assert np.any(delta != 0)  # some examples are misclassified, so the expected gradient is not trivially zero
    np.testing.assert_allclose(g["out"]["w"], -np.asarray(x).T @ delta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g["out"]["b"], -delta.sum(0), rtol=1e-5, atol=1e-5)

    # one SGD step on the summed criterion is one perceptron-rule step
    lr = 0.5
    opt = optax.sgd(lr)
    updates, _ = opt.update(g, opt.init(params), params)
    stepped = optax.apply_updates(params, updates)
    ruled = perceptron_rule(params, x, labels, lr=lr)
    for k in ("w", "b"):
        np.testing.assert_allclose(stepped["out"][k], ruled["out"][k], rtol=1e-5, atol=1e-5)
    assert not np.allclose(ruled["out"]["w"], params["out"]["w"])


# Models of several inputs and the captioners (issue 19), reduced: the gradient of their own mean 'loss' w.r.t. all
# parameters and, where the input is an image, the image (word ids and 11-bit questions are not differentiated).
QA_CASES = {
    "memn2n": dict(input_shape={"story": (5, 4), "question": (4,)}, num_classes=9, embed=6, hops=2),
    "vqa_lstm_cnn": dict(
        input_shape={"image": (8, 8, 3), "question": (4,)},
        num_classes=4,
        vocab_size=7,
        channels=(2, 3),
        embed=3,
        hidden=4,
        fusion=4,
        mlp_hidden=4,
        dropout=0.0,
    ),
    "relation_network": dict(
        input_shape={"image": (24, 24, 3), "question": (11,)}, conv_features=2, g_widths=(4, 4), f_widths=(4,)
    ),
    "cnn_mlp": dict(input_shape={"image": (24, 24, 3), "question": (11,)}, conv_features=2, f_widths=(4,)),
    "show_tell": dict(input_shape=(8, 8, 3), num_classes=7, embed=3, hidden=4, features=(2, 3), max_len=5),
    "show_attend_tell": dict(
        input_shape=(8, 8, 3), num_classes=7, embed=3, hidden=4, attention=3, features=(2, 3), max_len=5
    ),
}
CHECKED_ELSEWHERE |= set(QA_CASES)


@pytest.mark.parametrize("name", sorted(QA_CASES))
def test_question_answering_and_captioning_objectives(name):
    """Dict inputs (word ids with an image or a story) and caption targets through each model's own loss."""
    kwargs = dict(QA_CASES[name])
    if name in ("relation_network", "cnn_mlp"):
        kwargs["dropout"] = 0.0
    model = jaxnets.build(name, **kwargs)
    with x64():
        rng = np.random.default_rng(1)
        params, state = model_params(model, rng, jnp.float64)
        shape = model.input_shape
        if name == "memn2n":
            x = {k: jnp.asarray(rng.integers(0, 9, (2, *v)), jnp.int32) for k, v in shape.items()}
            x["story"] = x["story"].at[:, -1].set(0)  # an empty memory: masked
        elif isinstance(shape, dict):
            question = rng.integers(0, 7, (2, *shape["question"]))
            x = {"image": jnp.asarray(rng.uniform(0, 1, (2, *shape["image"]))), "question": jnp.asarray(question)}
        else:
            x = jnp.asarray(rng.uniform(0, 1, (2, *shape)))
        if name.startswith("show"):
            y = jnp.asarray([[1, 3, 4, 2, 0], [1, 5, 6, 6, 2]], jnp.int32)  # <start> words <end>, padded
        else:
            y = jnp.asarray([1, 2], jnp.int32)
        image = "image" if isinstance(x, dict) and "image" in x else None

        def loss(args):
            p, img = args
            xx = x if image is None and isinstance(x, dict) else ({**x, "image": img} if image else img)
            metrics, _ = model.metrics(p, state, xx, y, key=jax.random.key(5), train=True)
            return jnp.mean(metrics["loss"])

        start = x[image] if image else (x if not isinstance(x, dict) else jnp.zeros(()))
        n = check_grad(loss, (params, start), max_coords_per_leaf=16, n_directions=2, require_nonzero=False)
    assert n >= 16
