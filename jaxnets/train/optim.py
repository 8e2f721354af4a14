"""Optimisers by name, all from optax, with optional L2 weight decay, gradient clipping and a learning-rate
schedule over the run."""

from __future__ import annotations

import math

import optax

from jaxnets._names import unknown

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "lamb")
SCHEDULES = ("constant", "cosine", "step", "halving", "exponential", "warmup_cosine", "onecycle")
STEP_DROPS = (0.5, 0.75)  # 'step': the rate times 0.1 at these fractions of the run
HALVINGS = (0.25, 0.5, 0.75)  # 'halving': the rate times 0.5 at these (Sukhbaatar et al. 2015: every 25 of 100 epochs)
EXPONENTIAL_END = 0.01  # 'exponential': the rate at the end of the run, as a fraction of lr
WARMUP = 0.05  # 'warmup_cosine': the fraction of the run warming up linearly from 0
ONECYCLE = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4}  # 'onecycle': Smith & Topin 2019's


def make_schedule(schedule: str, lr: float, total_steps: int | None = None) -> float | optax.Schedule:
    """The learning rate of ``schedule`` over a run of ``total_steps`` (every schedule but 'constant' spans the
    run): 'cosine' decays ``lr`` to 0; 'step' multiplies it by 0.1 at half and three quarters of the run;
    'halving' by 0.5 at each quarter;
    'exponential' decays it as ``lr * 0.01 ** (step / total_steps)``; 'warmup_cosine' rises linearly from 0 over
    the first 5% and decays as a cosine to 0; 'onecycle' rises from ``lr / 25`` to ``lr`` over 30% (a half cosine)
    and falls to ``lr / 25e4``."""
    if schedule not in SCHEDULES:
        raise ValueError(unknown("schedule", schedule, SCHEDULES))
    if schedule == "constant":
        return lr
    if not total_steps:
        raise ValueError(f"the {schedule} schedule needs total_steps")
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, total_steps)
    if schedule == "step":
        return optax.piecewise_constant_schedule(lr, {round(f * total_steps): 0.1 for f in STEP_DROPS})
    if schedule == "halving":
        return optax.piecewise_constant_schedule(lr, {round(f * total_steps): 0.5 for f in HALVINGS})
    if schedule == "exponential":
        return optax.exponential_decay(lr, total_steps, EXPONENTIAL_END)
    if schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(0.0, lr, max(1, round(WARMUP * total_steps)), total_steps)
    return optax.cosine_onecycle_schedule(total_steps, lr, **ONECYCLE)


def make_optimizer(
    name: str,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str = "constant",
    total_steps: int | None = None,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """An optax optimiser by name; ``momentum`` is used by 'momentum' and 'nesterov', ``weight_decay`` adds
    ``weight_decay * w`` to every gradient (L2), ``schedule`` sets the rate over ``total_steps`` (see
    ``make_schedule``), ``clip_norm`` rescales the gradients to a global norm of at most ``clip_norm`` first
    (``optax.clip_by_global_norm``, before the weight decay). 'adadelta' (Zeiler 2012) is defined without a rate:
    ``lr`` 1 is the paper's."""
    if name not in OPTIMIZERS:
        raise ValueError(unknown("optimizer", name, OPTIMIZERS))
    if not (0 < lr < math.inf and 0 <= weight_decay < math.inf and 0 <= momentum < 1):  # (NaN fails every test)
        raise ValueError(
            f"need finite lr > 0, weight decay >= 0 and 0 <= momentum < 1; got {lr}, {weight_decay}, {momentum}"
        )
    if clip_norm is not None and not 0 < clip_norm < math.inf:
        raise ValueError(f"clip_norm must be a finite number > 0; got {clip_norm}")
    rate = make_schedule(schedule, lr, total_steps)
    opt = {
        "sgd": lambda: optax.sgd(rate),
        "momentum": lambda: optax.sgd(rate, momentum=momentum),
        "nesterov": lambda: optax.sgd(rate, momentum=momentum, nesterov=True),
        "adagrad": lambda: optax.adagrad(rate),
        "adadelta": lambda: optax.adadelta(rate),
        "rmsprop": lambda: optax.rmsprop(rate),
        "adam": lambda: optax.adam(rate),
        # Adam with each layer's step scaled to its weights' norm (You et al. 2019): layers of very different
        # scales, like the 1998 LeNet-5's fan-in-scaled ones, all move at the same relative rate.
        "lamb": lambda: optax.lamb(rate),
    }[name]()
    first = ([optax.clip_by_global_norm(clip_norm)] if clip_norm is not None else []) + (
        [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    )
    return optax.chain(*first, opt) if first else opt
