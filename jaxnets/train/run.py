"""A training run from a flat config: load the dataset, build the model for it, make the optimiser, ``fit``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets import data, models
from jaxnets.train.loop import FitResult, fit
from jaxnets.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer

# Per-model defaults (flags left unset take these), measured on MNIST: lenet5_modern 99.06% after 10 epochs,
# lenet5 (1998) 99.10% after 20, mlp 98.23%, logistic 92.1%. The 1998 LeNet-5 needs LAMB's per-layer relative
# steps (see README); the others train with SGD + momentum.
BASE = {"epochs": 10, "batch_size": 128, "optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0,
        "schedule": "cosine", "normalisation": "standard"}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lenet5_modern": {"lr": 0.01},
    "lenet5": {"epochs": 20, "optimizer": "lamb", "lr": 0.01, "normalisation": "lenet1998"},
    "mlp": {"epochs": 10},
    "logistic": {"lr": 0.01, "schedule": "constant"},
    "perceptron": {"optimizer": "sgd", "lr": 1.0, "schedule": "constant"},
}
# The embedded toy sets are tiny: many short epochs of small batches.
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "xor": {"epochs": 100, "batch_size": 4, "lr": 0.1, "schedule": "constant"},
    "spirals": {"epochs": 200, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "schedule": "constant"},
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; ``None`` fields take the model's (then the dataset's) defaults."""

    model: str = "lenet5_modern"
    dataset: str = "mnist"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    normalisation: str | None = None
    seed: int = 0
    workdir: str | None = None
    resume: bool = False
    overwrite: bool = False
    manual_dir: str | None = None
    data_dir: str | None = None

    def resolved(self) -> TrainConfig:
        """This config with every unset field filled from the defaults, after checking names and values."""
        if self.model not in models.REGISTRY:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(sorted(models.REGISTRY))}")
        defaults = {**BASE, **MODEL_DEFAULTS.get(self.model, {}), **DATASET_DEFAULTS.get(self.dataset, {})}
        filled = {k: (defaults[k] if getattr(self, k) is None else getattr(self, k)) for k in defaults}
        if filled["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {filled['optimizer']!r}; choose one of {', '.join(OPTIMIZERS)}")
        if filled["schedule"] not in SCHEDULES:
            raise ValueError(f"unknown schedule {filled['schedule']!r}; choose one of {', '.join(SCHEDULES)}")
        if filled["normalisation"] not in data.NORMALISATIONS:
            raise ValueError(f"unknown normalisation {filled['normalisation']!r}; "
                             f"choose one of {', '.join(data.NORMALISATIONS)}")
        if filled["epochs"] < 1 or filled["batch_size"] < 1:
            raise ValueError(f"epochs and batch size must be >= 1; got {filled['epochs']}, {filled['batch_size']}")
        workdir = self.workdir or f"runs/{self.model}-{self.dataset.replace('/', '-')}"
        return dataclasses.replace(self, workdir=workdir, **filled)


def build_for(name: str, dataset: data.Dataset) -> models.Model:
    """Build model ``name`` for a dataset's example shape and classes; ``ValueError`` if it cannot take them."""
    shape, classes = dataset.input_shape, dataset.num_classes
    try:
        model = models.build(name, input_shape=shape, num_classes=classes)
        data.check_fits(shape, model.input_shape)
        params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
        out = jax.eval_shape(lambda p, s: model.apply(p, s, jnp.zeros((2, *model.input_shape)))[0], params, state)
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(f"model {name} cannot take dataset {dataset.name} (examples of shape {shape}, "
                         f"{classes} classes): {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if out.shape[-1] not in (classes, 1 if classes == 2 else classes):
        raise ValueError(f"model {name} gives {out.shape[-1]} outputs but dataset {dataset.name} has {classes} classes")
    return model


def run(config: TrainConfig, progress: bool = True, log: Callable[[str], None] = print) -> FitResult:
    """Run a config: load and prepare the data for the model, then ``fit`` with checkpoints in ``workdir``."""
    config = config.resolved()
    raw = data.load_raw(config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir)
    model = build_for(config.model, raw)
    ds = data.prepare(raw, model.input_shape, "none" if config.dataset in data.EMBEDDED else config.normalisation)
    steps = max(1, len(ds.train_x) // min(config.batch_size, len(ds.train_x)))
    optimizer = make_optimizer(config.optimizer, config.lr, config.momentum, config.weight_decay, config.schedule,
                               total_steps=steps * config.epochs)
    log(f"{config.model} on {config.dataset}: {config.optimizer} lr {config.lr}"
        + (f" momentum {config.momentum}" if config.optimizer in ("momentum", "nesterov") else "")
        + (f" weight decay {config.weight_decay}" if config.weight_decay else "")
        + f", {config.schedule} schedule, {config.epochs} epochs, seed {config.seed}, workdir {config.workdir}")
    return fit(model, ds.train_x, ds.train_y, ds.test_x, ds.test_y, optimizer=optimizer, epochs=config.epochs,
               batch_size=config.batch_size, seed=config.seed, workdir=config.workdir, resume=config.resume,
               overwrite=config.overwrite, config=dataclasses.asdict(config), progress=progress, log=log)
