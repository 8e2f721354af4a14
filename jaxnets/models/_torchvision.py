"""torchvision interchange: its ``state_dict`` <-> jaxnets ``(params, state)`` for the ImageNet CNNs built in
torchvision's layout (alexnet, vgg11/13/16/19 and their ``_bn`` forms, googlenet, resnet18/34/50), and its published
ImageNet weights (``pretrained_torchvision``).

Convolutions are (out, in, kh, kw) in torch and (kh, kw, in, out) here; dense layers (out, in) there and (in, out)
here; the first dense layer of alexnet and vgg reads the pooled maps flattened channel-first there and channel-last
here. Batch norms: weight/bias/running_mean/running_var = scale/bias/mean/var. The conversion needs no torch: any
mapping of names to arrays (or tensors) goes in, numpy arrays come out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jaxnets.models._alexnet import alexnet
from jaxnets.models._base import Model
from jaxnets.models._googlenet import googlenet
from jaxnets.models._resnet import resnet18, resnet34, resnet50
from jaxnets.models._vgg import CONFIGS, vgg
from jaxnets.nn import PyTree

LEAVES = {"w": "weight", "b": "bias", "scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}


def _alexnet_module(path: str, name: str) -> str:
    convs = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}
    return f"features.{convs[path]}" if path in convs else f"classifier.{ {'fc1': 1, 'fc2': 4, 'fc3': 6}[path] }"


def _vgg_module(path: str, name: str) -> str:
    if path.startswith("fc"):
        return f"classifier.{3 * (int(path[2:]) - 1)}"
    bn = name.endswith("_bn")
    stage, i = map(int, re.sub(r"^(conv|bn)", "", path).split("_"))
    blocks = CONFIGS[{"11": "A", "13": "B", "16": "D", "19": "E"}[name[3:5]]]
    index = sum(n * (3 if bn else 2) + 1 for n in blocks[: stage - 1]) + (i - 1) * (3 if bn else 2)  # conv (bn) relu
    return f"features.{index + path.startswith('bn')}"


def _resnet_module(path: str, name: str) -> str:
    if path.startswith("conv1/"):
        return "conv1" if path.endswith("conv") else "bn1"
    m = re.fullmatch(r"(layer\d)/block(\d+)/residual/body/conv(\d)/(conv|bn)", path)
    if m:
        return f"{m[1]}.{m[2]}.{m[4]}{m[3]}"
    m = re.fullmatch(r"(layer\d)/block(\d+)/residual/shortcut/(conv|bn)", path)
    if m:
        return f"{m[1]}.{m[2]}.downsample.{0 if m[3] == 'conv' else 1}"
    return path.replace("/", ".")


def _googlenet_module(path: str, name: str) -> str:
    path = re.sub(r"branch([23])/reduce/", r"branch\1/0/", path)
    path = re.sub(r"branch([23])/conv/", r"branch\1/1/", path)
    return path.replace("branch4/proj/", "branch4/1/").replace("/", ".")


# name -> (builder(input_shape, num_classes), module naming, side of the pooled maps the first dense layer reads)
ARCHITECTURES: dict[str, tuple[Callable[..., Model], Callable[[str, str], str], int | None]] = {
    "alexnet": (alexnet, _alexnet_module, 6),
    **{
        f"vgg{d}{'_bn' if bn else ''}": (lambda s, n, d=d, bn=bn: vgg(d, s, n, batch_norm=bn), _vgg_module, 7)
        for d in (11, 13, 16, 19)
        for bn in (False, True)
    },
    "googlenet": (googlenet, _googlenet_module, None),
    **{f"resnet{d}": (fn, _resnet_module, None) for d, fn in ((18, resnet18), (34, resnet34), (50, resnet50))},
}
TORCHVISION_ARCHITECTURES = tuple(ARCHITECTURES)  # the names from_torchvision converts
CLASSIFIER = {"alexnet": "classifier.6", "googlenet": "fc", **{f"resnet{d}": "fc" for d in (18, 34, 50)}}


def _architecture(name: str) -> tuple[Callable[..., Model], Callable[[str, str], str], int | None]:
    if name not in ARCHITECTURES:
        raise ValueError(f"no torchvision conversion for {name!r}; there is one for {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _named(tree: PyTree, prefix: str) -> list[tuple[str, list[str], Any]]:
    return [(prefix, [str(k.key) for k in path], leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _torch_name(name: str, keys: list[str]) -> str:
    return f"{_architecture(name)[1]('/'.join(keys[:-1]), name)}.{LEAVES[keys[-1]]}"


def _to_jaxnets(a: np.ndarray, flat_side: int | None) -> np.ndarray:
    if a.ndim == 4:
        return a.transpose(2, 3, 1, 0)
    if a.ndim == 2 and flat_side:  # (out, C*S*S) -> (S*S*C, out)
        return a.reshape(a.shape[0], -1, flat_side, flat_side).transpose(2, 3, 1, 0).reshape(-1, a.shape[0])
    return a.T if a.ndim == 2 else a


def _to_torch(a: np.ndarray, flat_side: int | None) -> np.ndarray:
    if a.ndim == 4:
        return a.transpose(3, 2, 0, 1)
    if a.ndim == 2 and flat_side:  # (S*S*C, out) -> (out, C*S*S)
        return a.reshape(flat_side, flat_side, -1, a.shape[1]).transpose(3, 2, 0, 1).reshape(a.shape[1], -1)
    return a.T if a.ndim == 2 else a


def from_torchvision(
    name: str, state_dict: Mapping[str, Any], input_shape: tuple[int, ...] = (224, 224, 3)
) -> tuple[Model, PyTree, PyTree]:
    """The jaxnets model ``name`` (for ``input_shape``; its number of classes that of the weights), its parameters
    and its state, from a torchvision ``state_dict`` of that architecture (tensors or arrays; auxiliary heads and
    ``num_batches_tracked`` are not used). ``ValueError`` naming a missing or mis-shaped entry."""
    builder, _, side = _architecture(name)
    arrays = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in state_dict.items()}
    head = f"{CLASSIFIER.get(name, 'classifier.6')}.weight"
    if head not in arrays:
        raise ValueError(f"the state_dict has no {head!r}: it is not torchvision's {name}")
    model = builder(tuple(input_shape), int(arrays[head].shape[0]))
    trees = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    filled = []
    for prefix, tree in zip(("params", "state"), trees, strict=True):
        leaves = []
        for _, keys, want in _named(tree, prefix):
            torch_name = _torch_name(name, keys)
            if torch_name not in arrays:
                raise ValueError(f"the state_dict has no {torch_name!r}: it is not torchvision's {name}")
            a = _to_jaxnets(arrays[torch_name], side if keys == ["fc1", "w"] else None).astype(np.float32)
            if a.shape != tuple(want.shape):
                raise ValueError(
                    f"{torch_name} of shape {arrays[torch_name].shape} does not fit {name}'s "
                    f"{prefix}/{'/'.join(keys)} of shape {tuple(want.shape)}"
                )
            leaves.append(a)
        filled.append(jax.tree.unflatten(jax.tree.structure(tree), leaves))
    return model, filled[0], filled[1]


def to_torchvision(name: str, params: PyTree, state: PyTree) -> dict[str, np.ndarray]:
    """A torchvision ``state_dict`` (numpy arrays: ``{k: torch.from_numpy(v)}``) of architecture ``name`` from
    jaxnets parameters and state (``num_batches_tracked`` 0 for each batch norm)."""
    _, _, side = _architecture(name)
    out = {}
    for prefix, tree in (("params", params), ("state", state)):
        for _, keys, leaf in _named(tree, prefix):
            out[_torch_name(name, keys)] = np.ascontiguousarray(
                _to_torch(np.asarray(leaf), side if keys == ["fc1", "w"] else None)
            )
            if keys[-1] == "mean":
                out[_torch_name(name, keys).replace("running_mean", "num_batches_tracked")] = np.array(0, np.int64)
    return out


def pretrained_torchvision(name: str, input_shape: tuple[int, ...] = (224, 224, 3)) -> tuple[Model, PyTree, PyTree]:
    """``from_torchvision`` of torchvision's published ImageNet weights of ``name`` (its ``DEFAULT`` weights), read
    from torch's cache or downloaded into it (needs ``torch`` and ``torchvision``: ``pip install
    'jaxnets[torch]'``). Inputs as torchvision's: RGB in [0, 1] normalised by mean (0.485, 0.456, 0.406) and std
    (0.229, 0.224, 0.225); for googlenet, whose weights expect ``transform_input``, by mean 0.5 and std 0.5.
    ``ValueError`` in one line without torchvision or when the weights can be neither read nor downloaded."""
    _architecture(name)
    try:
        import torchvision
    except ImportError:
        raise ValueError(
            f"pretrained {name} weights come from torchvision, which is not installed: pip install 'jaxnets[torch]'"
        ) from None
    weights = torchvision.models.get_model_weights(name).DEFAULT
    try:
        state_dict = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # URLError, OSError, hash mismatch: one line
        raise ValueError(
            f"torchvision's {weights} weights for {name} are neither in torch's cache nor downloadable "
            f"({type(e).__name__}: {' '.join(str(e).split())[:200]})"
        ) from None
    return from_torchvision(name, state_dict, input_shape)
