"""Optimisers by name, all from optax, with optional L2 weight decay and a cosine learning-rate schedule."""

from __future__ import annotations

import math

import optax

from jaxnets._names import unknown

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "lamb")
SCHEDULES = ("constant", "cosine")


def make_optimizer(
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    total_steps: int | None = None,
) -> optax.GradientTransformation:
    """An optax optimiser by name; ``momentum`` is used by 'momentum' and 'nesterov', ``weight_decay`` adds
    ``weight_decay * w`` to every gradient (L2), 'cosine' decays the rate to 0 over ``total_steps``."""
    if name not in OPTIMIZERS:
        raise ValueError(unknown("optimizer", name, OPTIMIZERS))
    if schedule not in SCHEDULES:
        raise ValueError(unknown("schedule", schedule, SCHEDULES))
    if not (0 < lr < math.inf and 0 <= weight_decay < math.inf and 0 <= momentum < 1):  # (NaN fails every test)
        raise ValueError(
            f"need finite lr > 0, weight decay >= 0 and 0 <= momentum < 1; got {lr}, {weight_decay}, {momentum}"
        )
    rate: float | optax.Schedule = lr
    if schedule == "cosine":
        if not total_steps:
            raise ValueError("the cosine schedule needs total_steps")
        rate = optax.cosine_decay_schedule(lr, total_steps)
    opt = {
        "sgd": lambda: optax.sgd(rate),
        "momentum": lambda: optax.sgd(rate, momentum=momentum),
        "nesterov": lambda: optax.sgd(rate, momentum=momentum, nesterov=True),
        "adagrad": lambda: optax.adagrad(rate),
        "rmsprop": lambda: optax.rmsprop(rate),
        "adam": lambda: optax.adam(rate),
        # Adam with each layer's step scaled to its weights' norm (You et al. 2019): layers of very different
        # scales, like the 1998 LeNet-5's fan-in-scaled ones, all move at the same relative rate.
        "lamb": lambda: optax.lamb(rate),
    }[name]()
    return optax.chain(optax.add_decayed_weights(weight_decay), opt) if weight_decay else opt
