"""torchvision interchange: a randomly initialised torchvision model (batch-norm statistics randomised, eval mode) and
the jaxnets model converted from its state_dict give the same logits, at 224x224 and 160x160; the conversion back
gives torchvision's state_dict again. The logit tests are skipped without torch and torchvision (the ``torch`` extra:
CI without it skips them); the name mapping's round trip and the errors need no torch. Nothing is downloaded: the
pretrained path is checked offline for its one-line error."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_params

from jaxnets import models

FAST = ["resnet18"]
SLOW = [n for n in models.TORCHVISION_ARCHITECTURES if n not in FAST]


def _torch():
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install 'jaxnets[torch]')")
    torchvision = pytest.importorskip(
        "torchvision", reason="torchvision is not installed (pip install 'jaxnets[torch]')"
    )
    return torch, torchvision


def _torch_model(name: str):
    """torchvision's ``name`` with random weights and random batch-norm statistics, in eval mode."""
    torch, torchvision = _torch()
    torch.manual_seed(0)
    options = {"init_weights": True} if name == "googlenet" or name.startswith("vgg") else {}
    net = torchvision.models.get_model(name, weights=None, **options)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
    return net.eval()


def _check(name: str) -> None:
    torch, _ = _torch()
    net = _torch_model(name)
    state_dict = net.state_dict()
    for size in (224, 160):
        model, params, state = models.from_torchvision(name, state_dict, (size, size, 3))
        x = np.random.default_rng(size).standard_normal((2, 3, size, size)).astype(np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        got = np.asarray(
            jax.jit(lambda p, s, x, model=model: model.apply(p, s, x)[0])(
                params, state, jnp.asarray(x.transpose(0, 2, 3, 1))
            )
        )
        assert got.shape == want.shape == (2, 1000)
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 1e-4, f"{name} at {size}x{size}: relative error {error:.2e}"
    back = models.to_torchvision(name, params, state)
    used = {k: v for k, v in state_dict.items() if not k.startswith("aux")}
    assert set(back) == set(used)
    for k, v in used.items():
        np.testing.assert_array_equal(back[k], v.numpy(), err_msg=k)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()}, strict=name != "googlenet")


@pytest.mark.parametrize("name", FAST)
def test_converted_torchvision_model_gives_the_same_logits(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_converted_torchvision_model_gives_the_same_logits_slow(name):
    _check(name)


def _round_trip_marks(name: str) -> list:
    """vgg and alexnet (60-144M parameters) are slow; vgg13/16/19 (25-110 s each) repeat vgg11's and vgg11_bn's naming
    scheme with more layers, so CI (-m 'not long') checks those two and `-m long` the rest."""
    slow = [pytest.mark.slow] if name.startswith(("vgg", "alex")) else []
    return slow + ([pytest.mark.long] if name.startswith(("vgg13", "vgg16", "vgg19")) else [])


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=_round_trip_marks(n)) for n in models.TORCHVISION_ARCHITECTURES],
)
def test_to_and_from_torchvision_round_trip(name):
    builder = models.build(
        name.removesuffix("_bn"), num_classes=10, **({"batch_norm": True} if name.endswith("_bn") else {})
    )
    params, state = model_params(builder, np.random.default_rng(0))
    state_dict = models.to_torchvision(name, params, state)
    model, params2, state2 = models.from_torchvision(name, state_dict)
    assert model.input_shape == builder.input_shape
    for a, b in zip(jax.tree.leaves((params, state)), jax.tree.leaves((params2, state2)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)


def test_bad_state_dicts_and_names_are_one_line_errors():
    with pytest.raises(ValueError, match="no torchvision conversion for 'lenet5'"):
        models.from_torchvision("lenet5", {})
    state_dict = models.to_torchvision("resnet18", *model_params(models.build("resnet18"), np.random.default_rng(0)))
    del state_dict["layer2.0.downsample.0.weight"]
    with pytest.raises(ValueError, match=re.escape("no 'layer2.0.downsample.0.weight': it is not torchvision's")):
        models.from_torchvision("resnet18", state_dict)
    state_dict["layer2.0.downsample.0.weight"] = np.zeros((128, 64, 3, 3), np.float32)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "layer2.0.downsample.0.weight of shape (128, 64, 3, 3) does not "
            "fit resnet18's params/layer2/block0/residual/shortcut/conv/w"
        ),
    ):
        models.from_torchvision("resnet18", state_dict)


def test_pretrained_weights_offline_are_a_one_line_error(monkeypatch, tmp_path):
    _torch()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # and no network
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="neither in torch's cache nor downloadable") as e:
        models.pretrained_torchvision("resnet18")
    assert "\n" not in str(e.value)
