"""Shared pieces of the benchmarks: the compared networks as one spec each, their builders in jaxnets, plain JAX,
Flax linen and PyTorch, analytic FLOP counts, and a timer that measures steady state with warm-up and medians."""

from __future__ import annotations

import datetime
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxnets
from jaxnets import losses
from jaxnets.models import C3_TABLE
from jaxnets.nn import conv_general, lecun_tanh
from jaxnets.nn._pooling import _avg, _max

# The MNIST files beside the checkout (../shared/data/mnist), or JAXNETS_MANUAL_DIR.
MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
BATCH = 128
LR, MOMENTUM = 0.01, 0.9

# Each network as a list of ops; every framework below builds exactly these.
# ('conv', features, window, padding[, table]), ('act', name), ('maxpool'|'subsample', window), ('flatten',),
# ('dense', features), ('rbf', classes)
SPECS: dict[str, tuple[tuple[int, ...], list[tuple]]] = {
    "lenet5_modern": (
        (28, 28, 1),
        [
            ("conv", 6, 5, 2),
            ("act", "relu"),
            ("maxpool", 2),
            ("conv", 16, 5, 0),
            ("act", "relu"),
            ("maxpool", 2),
            ("conv", 120, 5, 0),
            ("act", "relu"),
            ("flatten",),
            ("dense", 84),
            ("act", "relu"),
            ("dense", 10),
        ],
    ),
    "lenet5": (
        (32, 32, 1),
        [
            ("conv", 6, 5, 0),
            ("act", "lecun_tanh"),
            ("subsample", 2),
            ("act", "lecun_tanh"),
            ("conv", 16, 5, 0, C3_TABLE),
            ("act", "lecun_tanh"),
            ("subsample", 2),
            ("act", "lecun_tanh"),
            ("conv", 120, 5, 0),
            ("act", "lecun_tanh"),
            ("flatten",),
            ("dense", 84),
            ("act", "lecun_tanh"),
            ("rbf", 10),
        ],
    ),
    "small_cnn": ((28, 28, 1), [("conv", 64, 3, 1), ("act", "relu"), ("maxpool", 2), ("flatten",), ("dense", 10)]),
    "mlp": (
        (28, 28, 1),
        [("flatten",), ("dense", 1024), ("act", "relu"), ("dense", 1024), ("act", "relu"), ("dense", 10)],
    ),
}


def build_jaxnets(name: str) -> jaxnets.Model:
    """The jaxnets model under test (strategy 'auto')."""
    return jaxnets.models.mlp(hidden=(1024, 1024)) if name == "mlp" else jaxnets.build(name)


def train_flops(name: str, batch: int = BATCH) -> float:
    """Analytic FLOPs of one training step (forward, input and weight gradients; 2 per multiply-add; the first
    layer has no input gradient; elementwise work is not counted)."""
    shape, ops = SPECS[name]
    h, w, c = shape
    total, first = 0.0, True
    for op in ops:
        if op[0] == "conv":
            f, k, p = op[1:4]
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
            macs = batch * h * w * k * k * c * f
            c = f
        elif op[0] in ("maxpool", "subsample"):
            h, w = h // op[1], w // op[1]
            continue
        elif op[0] == "flatten":
            c, h, w = h * w * c, 1, 1
            continue
        elif op[0] in ("dense", "rbf"):
            macs, c = batch * c * op[1], op[1]
        else:
            continue
        total += 2 * macs * (2 if first else 3)
        first = False
    return total


ACTS = {"relu": jax.nn.relu, "lecun_tanh": lecun_tanh}


def plain_jax(name: str, key: jax.Array) -> tuple[dict, Callable]:
    """The network hand-written as plain JAX over a dict of arrays, with the same convolution and pooling kernels
    as jaxnets (``conv_general``, the pooling reductions) but no layers, combinators or model wrapper."""
    shape, ops = SPECS[name]
    params, c, hw = {}, shape[-1], shape[:2]
    for i, op in enumerate(ops):
        key, sub = jax.random.split(key)
        if op[0] == "conv":
            params[i] = {"w": 0.1 * jax.random.normal(sub, (op[2], op[2], c, op[1])), "b": jnp.zeros(op[1])}
            hw, c = tuple(n + 2 * op[3] - op[2] + 1 for n in hw), op[1]
        elif op[0] == "subsample":
            params[i] = {"coef": jnp.ones(c), "b": jnp.zeros(c)}
            hw = tuple(n // op[1] for n in hw)
        elif op[0] == "maxpool":
            hw = tuple(n // op[1] for n in hw)
        elif op[0] == "flatten":
            c, hw = c * math.prod(hw), ()
        elif op[0] == "dense":
            params[i] = {"w": 0.05 * jax.random.normal(sub, (c, op[1])), "b": jnp.zeros(op[1])}
            c = op[1]
        elif op[0] == "rbf":
            codes = jnp.where(jax.random.bernoulli(sub, 0.5, (c, op[1])), 1.0, -1.0)
    masks = {i: jnp.asarray(op[4], jnp.float32) for i, op in enumerate(ops) if op[0] == "conv" and len(op) > 4}

    def apply(p, x):
        for i, op in enumerate(ops):
            if op[0] == "conv":
                wk = p[i]["w"] * masks[i] if i in masks else p[i]["w"]
                x = conv_general(x, wk, (1, 1), ((op[3], op[3]),) * 2) + p[i]["b"]
            elif op[0] == "act":
                x = ACTS[op[1]](x)
            elif op[0] == "maxpool":
                x = _max(x, (op[1],) * 2, (op[1],) * 2, ((0, 0),) * 2)
            elif op[0] == "subsample":
                x = _avg(x, (op[1],) * 2, (op[1],) * 2, ((0, 0),) * 2) * p[i]["coef"] + p[i]["b"]
            elif op[0] == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif op[0] == "dense":
                x = x @ p[i]["w"] + p[i]["b"]
            elif op[0] == "rbf":
                x = -(jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ codes + jnp.sum(codes * codes, 0))
        return x

    return params, apply


def flax_model(name: str):
    """The network as a Flax linen module (lax convolutions and reduce_window pooling, as Flax users write it)."""
    import flax.linen as fnn

    shape, ops = SPECS[name]

    class Net(fnn.Module):
        @fnn.compact
        def __call__(self, x):
            for i, op in enumerate(ops):
                if op[0] == "conv":
                    conv = fnn.Conv(op[1], (op[2], op[2]), padding=[(op[3], op[3])] * 2, name=f"conv{i}")
                    if len(op) > 4:  # C3's connection table: a full convolution with the unconnected weights zeroed
                        kernel = self.param(
                            f"kernel{i}", fnn.initializers.lecun_normal(), (op[2], op[2], x.shape[-1], op[1])
                        )
                        bias = self.param(f"bias{i}", fnn.initializers.zeros, (op[1],))
                        x = (
                            jax.lax.conv_general_dilated(
                                x,
                                kernel * jnp.asarray(op[4], x.dtype),
                                (1, 1),
                                "VALID",
                                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                            )
                            + bias
                        )
                    else:
                        x = conv(x)
                elif op[0] == "act":
                    x = ACTS[op[1]](x)
                elif op[0] == "maxpool":
                    x = fnn.max_pool(x, (op[1],) * 2, (op[1],) * 2)
                elif op[0] == "subsample":
                    coef = self.param(f"coef{i}", fnn.initializers.ones, (x.shape[-1],))
                    b = self.param(f"b{i}", fnn.initializers.zeros, (x.shape[-1],))
                    x = fnn.avg_pool(x, (op[1],) * 2, (op[1],) * 2) * coef + b
                elif op[0] == "flatten":
                    x = x.reshape(x.shape[0], -1)
                elif op[0] == "dense":
                    x = fnn.Dense(op[1], name=f"dense{i}")(x)
                elif op[0] == "rbf":
                    codes = jnp.where(jax.random.bernoulli(jax.random.key(i), 0.5, (x.shape[-1], op[1])), 1.0, -1.0)
                    x = -(jnp.sum(x * x, -1, keepdims=True) - 2.0 * x @ codes + jnp.sum(codes * codes, 0))
            return x

    return Net(), shape


def torch_model(name: str):
    """The network as a PyTorch module (NCHW), or None when torch is not importable."""
    try:
        import torch
        from torch import nn as tnn
    except ImportError:
        return None
    shape, ops = SPECS[name]

    class Scale(tnn.Module):  # LeNet-5's trainable subsampling: avg pool * coef + b per channel
        def __init__(self, c: int, k: int):
            super().__init__()
            self.pool, self.coef, self.b = tnn.AvgPool2d(k), tnn.Parameter(torch.ones(c)), tnn.Parameter(torch.zeros(c))

        def forward(self, x):
            return self.pool(x) * self.coef.view(1, -1, 1, 1) + self.b.view(1, -1, 1, 1)

    class Masked(tnn.Conv2d):  # C3: a full convolution with the unconnected weights zeroed
        def __init__(self, cin: int, f: int, k: int, table):
            super().__init__(cin, f, k)
            self.register_buffer("mask", torch.as_tensor(np.asarray(table, np.float32).T[:, :, None, None]))

        def forward(self, x):
            return self._conv_forward(x, self.weight * self.mask, self.bias)

    class RBF(tnn.Module):
        def __init__(self, c: int, classes: int):
            super().__init__()
            self.register_buffer("codes", torch.where(torch.rand(c, classes) < 0.5, 1.0, -1.0))

        def forward(self, x):
            return -((x * x).sum(-1, keepdim=True) - 2.0 * x @ self.codes + (self.codes**2).sum(0))

    class LecunTanh(tnn.Module):
        def forward(self, x):
            return 1.7159 * torch.tanh(2.0 * x / 3.0)

    layers, c, hw = [], shape[-1], shape[:2]
    for op in ops:
        if op[0] == "conv":
            layers.append(Masked(c, op[1], op[2], op[4]) if len(op) > 4 else tnn.Conv2d(c, op[1], op[2], padding=op[3]))
            c, hw = op[1], tuple(n + 2 * op[3] - op[2] + 1 for n in hw)
        elif op[0] == "act":
            layers.append(tnn.ReLU() if op[1] == "relu" else LecunTanh())
        elif op[0] == "maxpool":
            layers.append(tnn.MaxPool2d(op[1]))
            hw = tuple(n // op[1] for n in hw)
        elif op[0] == "subsample":
            layers.append(Scale(c, op[1]))
            hw = tuple(n // op[1] for n in hw)
        elif op[0] == "flatten":
            layers.append(tnn.Flatten())
            c = c * math.prod(hw)
        elif op[0] == "dense":
            layers.append(tnn.Linear(c, op[1]))
            c = op[1]
        elif op[0] == "rbf":
            layers.append(RBF(c, op[1]))
    return tnn.Sequential(*layers), (shape[-1], *shape[:2])


def _busy_seconds() -> float:
    """CPU seconds spent by every process on the machine so far (Linux; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def measure(
    step: Callable[[], object],
    sync: Callable[[object], object] = jax.block_until_ready,
    *,
    iters: int = 20,
    repeats: int = 7,
    warmup: int = 5,
    retries: int = 10,
) -> dict[str, float]:
    """Seconds per call of ``step`` in steady state: ``warmup`` calls, then the median of ``repeats`` timings of
    ``iters`` calls each. A repeat during which other processes used over 10% of a core is retried (up to
    ``retries`` times) so that a busy machine disturbs the figures less; 'disturbed' counts the accepted ones."""
    out = None
    for _ in range(warmup):
        out = step()
    sync(out)
    times, disturbed, tries = [], 0, 0
    while len(times) < repeats:
        b0, s0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
        for _ in range(iters):
            out = step()
        sync(out)
        dt = time.perf_counter() - t0
        other = (_busy_seconds() - b0) - (_own_seconds() - s0)
        if other > 0.1 * dt + 0.02:
            tries += 1
            if tries <= retries:
                time.sleep(0.2)
                continue
            disturbed += 1
        times.append(dt / iters)
    return {"seconds": statistics.median(times), "min": min(times), "disturbed": disturbed}


def sgd():
    """The optimiser of every comparison: SGD with momentum."""
    return optax.sgd(LR, momentum=MOMENTUM)


def jax_step(apply: Callable, params):
    """A jitted, state-donating SGD+momentum step on softmax cross-entropy for ``apply(params, x) -> logits``."""
    tx = sgd()

    def step(p, o, x, y):
        def loss(p):
            return losses.softmax_cross_entropy(apply(p, x), y).mean()

        value, g = jax.value_and_grad(loss)(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o, value

    return jax.jit(step, donate_argnums=(0, 1)), tx.init(params)


def command_line(script: str, argv: list[str] | None, setting: str) -> str:
    """The line a benchmark prints above its table: the command that reproduces it, the date and the setting."""
    args = " ".join(sys.argv[1:] if argv is None else argv)
    return f"\n`python bench/{Path(script).name} {args}` ({datetime.date.today()}; {setting})\n"


def timed_fit(model: jaxnets.Model, ds, optimizer: optax.GradientTransformation, **options) -> tuple:
    """``train.fit`` on a dataset's train and test arrays, quietly unless ``log`` is given (``options``: fit's
    keywords); its result and wall seconds (compiling and the per-epoch test passes included)."""
    start = time.perf_counter()
    options = {"progress": False, "log": lambda line: None, **options}
    result = jaxnets.train.fit(model, ds.train_x, ds.train_y, ds.test_x, ds.test_y, optimizer=optimizer, **options)
    return result, time.perf_counter() - start
