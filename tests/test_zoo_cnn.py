"""The ImageNet-era CNNs (AlexNet, VGG, GoogLeNet, ResNet): published parameter counts and shapes without allocating
them, the inception module and its 1x1 reductions, LRN against its formula, batch-norm state, flax.linen references
for a residual and an inception block, the per-layer summary, and a short training run per family."""

from __future__ import annotations

import contextlib
import io

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import abstract_init, model_params, random_like

import jaxnets
from jaxnets import layer_table, model_summary, nn, num_params
from jaxnets.cli.summary import main as summary_main
from jaxnets.models import INCEPTION, basic_block, googlenet_aux, inception, main_params
from jaxnets.models._resnet import _projection
from jaxnets.train import TrainState, make_train_step

KEY = jax.random.key(0)
ZOO = ["alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "googlenet", "resnet18", "resnet34", "resnet50", "resnet20"]


def _shapes(model, *paths):
    rows, _ = layer_table(model)
    table = {"/".join(r.path): r.out_shape for r in rows}
    return [table[p] for p in paths]


def _out_shape(model, batch=2):
    params, state = jax.eval_shape(model.init, KEY)
    x = jax.ShapeDtypeStruct((batch, *model.input_shape), jnp.float32)
    return jax.eval_shape(lambda p, s, x: model.apply(p, s, x)[0], params, state, x).shape


# --- published parameter counts, by abstract init (nothing allocated) ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "count"),
    [
        ("alexnet", {}, 61_100_840),  # torchvision alexnet
        ("vgg11", {}, 132_863_336),  # torchvision vgg11
        ("vgg13", {}, 133_047_848),  # torchvision vgg13
        ("vgg16", {}, 138_357_544),  # torchvision vgg16
        ("vgg19", {}, 143_667_240),  # torchvision vgg19
        ("vgg16", {"batch_norm": True}, 138_365_992),  # torchvision vgg16_bn
        ("googlenet", {}, 6_624_904),  # torchvision googlenet, aux_logits=False
        ("googlenet", {"layout": "paper"}, 6_998_552),
        ("resnet18", {}, 11_689_512),
        ("resnet34", {}, 21_797_672),
        ("resnet50", {}, 25_557_032),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "-".join(f"{k}={x}" for k, x in v.items()) or "default",
)
def test_imagenet_parameter_counts(name, options, count):
    model = jaxnets.build(name, (224, 224, 3), 1000, **options)
    assert num_params(model) == count


def test_cifar_resnet20_counts_and_shortcut_options():
    assert num_params(jaxnets.build("resnet20")) == 269_722  # the paper's "0.27M": option A adds no parameters
    # option B: a 1x1 convolution + batch norm where 16 -> 32 and 32 -> 64 maps
    assert num_params(jaxnets.build("resnet20", shortcut="B")) == 269_722 + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    _, state = jax.eval_shape(jaxnets.build("resnet20").init, KEY)
    assert set(state["conv1"]["bn"]) == {"mean", "var"}  # running statistics are state, not parameters


def test_googlenet_aux_heads_add_their_parameters():
    aux = googlenet_aux()
    params, _ = jax.eval_shape(aux.init, KEY)
    main, _ = jax.eval_shape(jaxnets.build("googlenet").init, KEY)
    # each head: 1x1 conv to 128 maps + batch norm, fc 4*4*128 -> 1024, fc 1024 -> classes
    heads = (512 * 128 + 256 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000) + (
        528 * 128 + 256 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    )
    assert num_params(aux) == 6_624_904 + heads == 13_004_888  # torchvision googlenet with aux_logits=True
    assert jax.tree.structure(main_params(params)) == jax.tree.structure(main)
    assert _out_shape(aux) == (2, 3, 1000)


# --- shapes ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ZOO)
def test_output_shapes_at_224_and_32(name):
    """Traced abstractly; 28x28x1 (MNIST) is in test_models' registry test."""
    if name != "resnet20":
        assert _out_shape(jaxnets.build(name, (224, 224, 3), 1000)) == (2, 1000)
    assert _out_shape(jaxnets.build(name, (32, 32, 3), 10)) == (2, 10)


def test_layer_shapes_at_224():
    assert _shapes(jaxnets.build("alexnet"), "conv1", "pool1", "pool2", "pool5", "avgpool") == [
        (55, 55, 64),
        (27, 27, 64),
        (13, 13, 192),
        (6, 6, 256),
        (6, 6, 256),
    ]
    assert _shapes(jaxnets.build("vgg16"), "conv1_2", "pool1", "pool5", "fc1") == [
        (224, 224, 64),
        (112, 112, 64),
        (7, 7, 512),
        (4096,),
    ]
    assert _shapes(
        jaxnets.build("googlenet"),
        "pool1",
        "pool2",
        "inception3a",
        "inception3b",
        "inception4a",
        "inception4e",
        "pool4",
        "inception5b",
    ) == [
        (56, 56, 64),
        (28, 28, 192),
        (28, 28, 256),
        (28, 28, 480),
        (14, 14, 512),
        (14, 14, 832),
        (7, 7, 832),
        (7, 7, 1024),
    ]
    assert _shapes(jaxnets.build("resnet50"), "conv1", "maxpool", "layer1", "layer2", "layer3", "layer4") == [
        (112, 112, 64),
        (56, 56, 64),
        (56, 56, 256),
        (28, 28, 512),
        (14, 14, 1024),
        (7, 7, 2048),
    ]


def test_small_input_layouts():
    alex = jaxnets.build("alexnet", (32, 32, 3), 10)  # chosen automatically below 64 pixels a side
    assert _shapes(alex, "conv1", "pool1", "pool5", "fc1") == [(32, 32, 64), (15, 15, 64), (3, 3, 256), (1024,)]
    assert _shapes(jaxnets.build("vgg11", (28, 28, 1), 10), "pool1", "pool3", "pool5") == [
        (14, 14, 64),
        (4, 4, 256),
        (1, 1, 512),
    ]
    assert _shapes(jaxnets.build("resnet18", (32, 32, 3), 10), "conv1", "layer1", "layer4") == [
        (32, 32, 64),
        (32, 32, 64),
        (4, 4, 512),
    ]
    assert _shapes(jaxnets.build("googlenet", (32, 32, 3), 10), "conv1", "inception3b", "inception5b") == [
        (32, 32, 192),
        (32, 32, 480),
        (8, 8, 1024),
    ]
    assert _shapes(jaxnets.build("resnet20"), "layer1", "layer2", "layer3") == [(32, 32, 16), (16, 16, 32), (8, 8, 64)]
    # and by option: the ImageNet layout at 64x64, the small one at 224x224
    assert _shapes(jaxnets.build("alexnet", (64, 64, 3), 10), "pool5")[0] == (1, 1, 256)
    assert _shapes(jaxnets.build("alexnet", (64, 64, 3), 10, small_input=True), "pool5")[0] == (7, 7, 256)
    assert _shapes(jaxnets.build("resnet18", (224, 224, 3), 10, small_input=True), "layer4")[0] == (28, 28, 512)


def test_bad_zoo_options_raise_clear_errors():
    with pytest.raises(ValueError, match=r"alexnet takes images of shape \(height, width, channels\)"):
        jaxnets.build("alexnet", (784,))
    with pytest.raises(ValueError, match="unknown VGG configuration 'F'"):
        jaxnets.models.vgg("F")
    with pytest.raises(ValueError, match="unknown GoogLeNet layout 'keras'"):
        jaxnets.build("googlenet", layout="keras")
    with pytest.raises(ValueError, match="depth 6n"):
        jaxnets.models.cifar_resnet(21)
    with pytest.raises(ValueError, match="shortcut must be 'A'"):
        jaxnets.build("resnet20", shortcut="C")
    with pytest.raises(ValueError, match="needs inception modules 4a and 4d"):
        googlenet_aux(modules=("3a", "5b"))


# --- the inception module and 1x1 reductions -------------------------------------------------------------------------


def _conv_cost(k: int, cin: int, cout: int, h: int = 28, w: int = 28) -> tuple[int, int]:
    """(weights, multiplies) of a k x k convolution, 'same' size, from cin to cout maps of h x w."""
    return k * k * cin * cout, h * w * k * k * cin * cout


def test_inception_3a_takes_192_maps_to_256():
    layer = inception(*INCEPTION["3a"])  # paper layout: 5x5 branch, biases, no batch norm
    params, state, out = abstract_init(layer, (28, 28, 192))
    assert out == (28, 28, 64 + 128 + 32 + 32) == (28, 28, 256) and state == {}
    expected = {
        "branch1": _conv_cost(1, 192, 64)[0] + 64,
        "branch2": _conv_cost(1, 192, 96)[0] + 96 + _conv_cost(3, 96, 128)[0] + 128,
        "branch3": _conv_cost(1, 192, 16)[0] + 16 + _conv_cost(5, 16, 32)[0] + 32,
        "branch4": _conv_cost(1, 192, 32)[0] + 32,
    }
    assert jaxnets.count_params(params) == {**expected, "total": 163_696}
    assert params["branch3"]["conv"]["conv"]["w"].shape == (5, 5, 16, 32)
    tv, _, out_tv = abstract_init(inception(*INCEPTION["3a"], layout="torchvision"), (28, 28, 192))
    assert out_tv == (28, 28, 256) and tv["branch3"]["conv"]["conv"]["w"].shape == (3, 3, 16, 32)  # the quirk
    assert "b" not in tv["branch1"]["conv"] and tv["branch1"]["bn"]["scale"].shape == (64,)


def test_1x1_reduction_savings():
    """192 maps of 28x28 reduced to 64 by a 1x1 convolution; and 5x5 192 -> 32 directly vs via a 1x1 to 16."""
    params, _, out = abstract_init(nn.conv2d(64, 1), (28, 28, 192))
    assert out == (28, 28, 64) and params["w"].size == 192 * 64 == 12_288
    assert _conv_cost(1, 192, 64) == (12_288, 9_633_792)  # 28*28 positions x 192 inputs for each of 64 outputs
    direct_w, direct_mul = _conv_cost(5, 192, 32)
    reduce_w = _conv_cost(1, 192, 16)[0] + _conv_cost(5, 16, 32)[0]
    reduce_mul = _conv_cost(1, 192, 16)[1] + _conv_cost(5, 16, 32)[1]
    assert (direct_w, direct_mul) == (153_600, 120_422_400)
    assert (reduce_w, reduce_mul) == (15_872, 12_443_648)  # ~9.7x fewer weights and multiplies
    assert direct_mul / reduce_mul > 9.6
    # the layers agree with the arithmetic
    direct, _, _ = abstract_init(nn.conv2d(32, 5, padding=2, use_bias=False), (28, 28, 192))
    reduced, _, shape = abstract_init(
        nn.serial(nn.conv2d(16, 1, use_bias=False), nn.conv2d(32, 5, padding=2, use_bias=False)), (28, 28, 192)
    )
    assert shape == (28, 28, 32)
    assert jaxnets.count_params({"d": direct})["total"] == direct_w
    assert jaxnets.count_params(reduced)["total"] == reduce_w


# --- LRN, adaptive pooling ---------------------------------------------------------------------------------------


def _lrn_numpy(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. 2012, section 3.3, term by term."""
    channels = a.shape[-1]
    b = np.empty_like(a)
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + (n - 1) // 2)
        b[..., i] = a[..., i] / (k + alpha * np.sum(a[..., lo : hi + 1] ** 2, axis=-1)) ** beta
    return b


@pytest.mark.parametrize(
    ("kwargs", "scale"),
    [({}, 60.0), ({"size": 3, "alpha": 0.1, "beta": 0.5, "k": 1.0}, 1.0), ({"size": 4, "alpha": 0.2}, 1.0)],
)
def test_lrn_matches_the_papers_formula(kwargs, scale):
    a = np.random.default_rng(0).standard_normal((2, 3, 3, 9)) * scale
    b, _ = nn.lrn(**kwargs).apply({}, {}, jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(
        b, _lrn_numpy(a, **{"n" if k == "size" else k: v for k, v in kwargs.items()}), rtol=1e-5, atol=1e-6
    )


def test_adaptive_avg_pool():
    x = np.random.default_rng(0).standard_normal((2, 13, 5, 3)).astype(np.float32)
    y, _ = nn.adaptive_avg_pool((6, 2)).apply({}, {}, jnp.asarray(x))
    rows = [(i * 13 // 6, -(-(i + 1) * 13 // 6)) for i in range(6)]
    cols = [(j * 5 // 2, -(-(j + 1) * 5 // 2)) for j in range(2)]
    ref = np.stack([np.stack([x[:, a:b, c:d].mean((1, 2)) for c, d in cols], 1) for a, b in rows], 1)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
    same, _ = nn.adaptive_avg_pool((6, 5)).apply({}, {}, jnp.asarray(x[:, :6]))
    np.testing.assert_array_equal(same, x[:, :6])  # already the output size: unchanged, as AlexNet's 6x6 at 224
    up, _ = nn.adaptive_avg_pool(3).apply({}, {}, jnp.asarray(x[:, :1, :1]))
    np.testing.assert_array_equal(up, np.broadcast_to(x[:, :1, :1], (2, 3, 3, 3)))  # 1x1 is repeated
    assert abstract_init(nn.adaptive_avg_pool(6), (13, 13, 256))[2] == (6, 6, 256)
    g, _ = nn.global_avg_pool().apply({}, {}, jnp.asarray(x))
    np.testing.assert_allclose(g, x.mean((1, 2)), rtol=1e-5, atol=1e-6)


# --- batch norm in ResNet: state, train and eval modes -------------------------------------------------------------


def test_resnet_batch_norm_state_updates_only_in_training():
    model = jaxnets.models.cifar_resnet(8, (8, 8, 3), 4, widths=(4, 4, 4))  # ResNet-8: one block per stage
    params, state = model_params(model, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.standard_normal((6, 8, 8, 3)), jnp.float32)
    x_other = x.at[2:].set(jnp.asarray(rng.standard_normal((4, 8, 8, 3)), jnp.float32))  # same first two examples
    apply = jax.jit(model.apply, static_argnames="train")

    y_eval, s_eval = apply(params, state, x, train=False)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), s_eval, state))
    y_eval_other, _ = apply(params, state, x_other, train=False)  # eval: each example on its own (running stats)
    np.testing.assert_allclose(y_eval_other[:2], y_eval[:2], rtol=1e-5, atol=1e-5)

    y_train, s_train = apply(params, state, x, train=True)
    y_train_other, _ = apply(params, state, x_other, train=True)  # training: batch statistics, the batch matters
    assert not np.allclose(y_train_other[:2], y_train[:2], atol=1e-3)
    # the stem's running statistics moved 10% of the way to the batch statistics of its convolution's output
    conv = jax.lax.conv_general_dilated(
        x, params["conv1"]["conv"]["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    old = state["conv1"]["bn"]
    np.testing.assert_allclose(
        s_train["conv1"]["bn"]["mean"], 0.9 * old["mean"] + 0.1 * conv.mean((0, 1, 2)), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        s_train["conv1"]["bn"]["var"], 0.9 * old["var"] + 0.1 * conv.var((0, 1, 2)), rtol=1e-4, atol=1e-5
    )
    changed = jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.all(a != b)), s_train, state))
    assert all(changed) and len(changed) == 2 * 7  # every batch norm of ResNet-8 (stem + 3 blocks x 2), mean and var

    # eval normalises with the (updated) running statistics
    y_after, _ = apply(params, s_train, x, train=False)
    assert not np.allclose(y_after, y_eval, atol=1e-4)


# --- independent references: flax.linen with the same weights -------------------------------------------------------


class FlaxBasicBlock(fnn.Module):
    features: int
    stride: int

    @fnn.compact
    def __call__(self, x, train: bool):
        def bn(name):
            return fnn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name)

        pad = ((1, 1), (1, 1))
        y = fnn.Conv(self.features, (3, 3), self.stride, padding=pad, use_bias=False, name="conv1")(x)
        y = fnn.relu(bn("bn1")(y))
        y = bn("bn2")(fnn.Conv(self.features, (3, 3), padding=pad, use_bias=False, name="conv2")(y))
        short = fnn.Conv(self.features, (1, 1), self.stride, padding="VALID", use_bias=False, name="proj")(x)
        return fnn.relu(y + bn("bn_proj")(short))


@pytest.mark.parametrize("train", [True, False])
def test_basic_block_matches_flax(train):
    block = basic_block(6, 2, shortcut=_projection(6, 2))
    p_shapes, s_shapes, out = abstract_init(block, (7, 7, 4))
    rng = np.random.default_rng(0)
    params = random_like(p_shapes, rng, 0.5)
    state = random_like(s_shapes, rng, low=0.5)
    x = jnp.asarray(rng.standard_normal((3, 7, 7, 4)), jnp.float32)
    y, new_state = jax.jit(block.apply, static_argnames="train")(params, state, x, train=train)

    body, short = params["residual"]["body"], params["residual"]["shortcut"]
    sb, ss = state["residual"]["body"], state["residual"]["shortcut"]
    units = {"conv1": (body["conv1"], sb["conv1"]), "conv2": (body["conv2"], sb["conv2"]), "proj": (short, ss)}
    bns = {"conv1": "bn1", "conv2": "bn2", "proj": "bn_proj"}
    variables = {
        "params": {
            **{k: {"kernel": p["conv"]["w"]} for k, (p, _) in units.items()},
            **{bns[k]: dict(p["bn"]) for k, (p, _) in units.items()},
        },
        "batch_stats": {bns[k]: dict(s["bn"]) for k, (_, s) in units.items()},
    }
    ref, updates = jax.jit(lambda v, x: FlaxBasicBlock(6, 2).apply(v, x, train, mutable=["batch_stats"]))(variables, x)
    assert y.shape == ref.shape == (3, *out) == (3, 4, 4, 6)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    for k, bn_name in bns.items():
        mine = (new_state["residual"]["shortcut"] if k == "proj" else new_state["residual"]["body"][k])["bn"]
        for stat in ("mean", "var"):
            np.testing.assert_allclose(mine[stat], updates["batch_stats"][bn_name][stat], rtol=1e-4, atol=1e-5)


class FlaxInception(fnn.Module):
    c: tuple[int, ...]

    @fnn.compact
    def __call__(self, x):
        c1, c3r, c3, c5r, c5, pp = self.c

        def conv(f, k, name, h):
            return fnn.relu(fnn.Conv(f, (k, k), padding="SAME", name=name)(h))

        b1 = conv(c1, 1, "b1", x)
        b2 = conv(c3, 3, "b2", conv(c3r, 1, "b2r", x))
        b3 = conv(c5, 5, "b3", conv(c5r, 1, "b3r", x))
        b4 = conv(pp, 1, "b4", fnn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME"))
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


def test_inception_block_matches_flax():
    c = (3, 2, 4, 2, 3, 2)
    layer = inception(*c)
    p_shapes, _, out = abstract_init(layer, (6, 6, 5))
    params = random_like(p_shapes, np.random.default_rng(0), 0.5)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 6, 6, 5)), jnp.float32)
    y, _ = jax.jit(layer.apply)(params, {}, x)

    def cv(p):
        return {"kernel": p["conv"]["w"], "bias": p["conv"]["b"]}

    ref_params = {
        "b1": cv(params["branch1"]),
        "b2r": cv(params["branch2"]["reduce"]),
        "b2": cv(params["branch2"]["conv"]),
        "b3r": cv(params["branch3"]["reduce"]),
        "b3": cv(params["branch3"]["conv"]),
        "b4": cv(params["branch4"]["proj"]),
    }
    ref = jax.jit(FlaxInception(c).apply)({"params": ref_params}, x)
    assert y.shape == ref.shape == (2, *out) == (2, 6, 6, 3 + 4 + 3 + 2)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


# --- the summary -----------------------------------------------------------------------------------------------------


def test_summary_lists_nested_layers_shapes_and_counts():
    text = model_summary(jaxnets.build("resnet20"))
    lines = text.splitlines()
    assert lines[-2].split()[0] == "total" and lines[-2].endswith("269,722")
    row = next(line for line in lines if line.startswith("layer2/block0/residual/shortcut "))
    assert "(16, 16, 32)" in row and row.endswith(" 0")  # option A: zero-padding identity, no parameters
    row = next(line for line in lines if line.startswith("layer3 "))
    assert "(8, 8, 64)" in row and row.endswith(f"{203_520:,}")
    rows, whole = layer_table(jaxnets.build("resnet20"))
    assert sum(r.params for r in rows if len(r.path) == 1) == whole.params == 269_722
    names = [r.path for r in rows]
    assert names.index(("layer1",)) < names.index(("layer1", "block0")) < names.index(("layer2",))  # pre-order
    # title, header, conv1, layer1-3, avgpool, fc, total, the state note
    assert len(model_summary(jaxnets.build("resnet20"), depth=1).splitlines()) == 2 + 6 + 1 + 1


def test_summary_cli_on_a_138m_parameter_model_allocates_nothing():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert summary_main(["vgg16", "--input-shape", "224,224,3", "--num-classes", "1000", "--depth", "1"]) == 0
    text = out.getvalue()
    assert "pool5" in text and "(7, 7, 512)" in text and "138,357,544" in text
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert summary_main(["vgg17"]) == 2
    assert "unknown model 'vgg17'" in err.getvalue()


# --- training: each family learns a small structured problem -----------------------------------------------------


def _templates(n=64, shape=(16, 16, 3), classes=4, seed=0):
    """Each class is a fixed random smooth pattern; examples are their class's pattern plus noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.standard_normal((classes, 4, 4, shape[-1]))
    pattern = np.repeat(np.repeat(coarse, shape[0] // 4, 1), shape[1] // 4, 2)
    y = np.arange(n) % classes
    x = pattern[y] + 0.8 * rng.standard_normal((n, *shape))
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)


def _train(model, optimizer, epochs, batch=32):
    """Epochs of make_train_step over the 64 examples; the mean of each metric per epoch.

    The parameters start at a generic point made in numpy (weights N(0, 1/fan-in), see helpers.model_params), not
    from ``model.init``: compiling the initialisers (threefry and truncated normals, one per array) costs more CPU
    time here than compiling the train step."""
    x, y = _templates(shape=model.input_shape)
    params, model_state = model_params(model, np.random.default_rng(0))
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=jax.jit(optimizer.init)(params),
        key=jax.random.key(1),
    )
    step = make_train_step(model, optimizer)
    history = []
    for _ in range(epochs):
        epoch = []
        for i in range(0, len(x), batch):
            state, metrics = step(state, x[i : i + batch], y[i : i + batch])
            epoch.append({k: float(v) for k, v in metrics.items()})
        history.append({k: np.mean([m[k] for m in epoch]) for k in epoch[0]})
    return state, history


@pytest.mark.parametrize(
    ("name", "options", "epochs"),
    [
        ("alexnet", dict(channels=(16, 32, 32, 32, 32), hidden=(64, 64), lrn=True), 30),
        ("vgg11", dict(widths=(8, 16, 16, 32, 32), hidden=(64, 64), batch_norm=True), 30),
        ("resnet20", {}, 10),  # the real ResNet-20, on 16x16 images
    ],
)
def test_family_trains(name, options, epochs):
    """Small-input layouts (the default under 64 pixels a side) learn 64 noisy 16x16x3 images of 4 classes."""
    model = jaxnets.build(name, (16, 16, 3), 4, strategy="xla", **options)
    _, history = _train(model, optax.adam(1e-3), epochs)
    curve = [h["loss"] for h in history]
    assert np.isfinite(curve).all()
    assert curve[-1] < 0.5 * curve[0], curve


def test_googlenet_with_aux_heads_trains_and_drops_them_for_inference():
    """The aux model trains through the ordinary train step (its objective adds 0.3 x each auxiliary loss); its
    main parameters then run in the plain googlenet with the same logits."""
    options = dict(layout="paper", width=1 / 8, modules=("4a", "4d"))  # 4a, 4d carry the heads
    with nn.conv_strategy("xla"):
        model = googlenet_aux((8, 8, 3), 4, **options)
    state, history = _train(model, optax.adam(3e-3), 15)
    for metric in ("loss", "main_loss"):
        assert history[-1][metric] < 0.5 * history[0][metric], history
    assert history[0]["loss"] > history[0]["main_loss"] * 1.3  # the two heads' losses are in the objective
    params, model_state = state.params, state.model_state
    x, _ = _templates(shape=(8, 8, 3))
    main_model = jaxnets.build("googlenet", (8, 8, 3), 4, strategy="xla", **options)
    logits, _ = jax.jit(main_model.apply)(main_params(params), main_params(model_state), x)
    stacked, _ = jax.jit(model.apply)(params, model_state, x)
    np.testing.assert_allclose(logits, stacked[:, 0], rtol=1e-5, atol=1e-5)
