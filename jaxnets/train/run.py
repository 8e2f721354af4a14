"""A training run from a flat config: load the dataset, build the model for it, make the optimiser, ``fit``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from jaxnets import data, models
from jaxnets._names import unknown
from jaxnets.train import distributed
from jaxnets.train.loop import FitResult, check_workdir, fit
from jaxnets.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from jaxnets.train.parallel import data_parallel, is_main_process

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
    # Autoencoders and the RBM reconstruct pixels in [0, 1]; see jaxnets/models/autoencoders.py, boltzmann.py, README.
    **{name: {"optimizer": "adam", "lr": 1e-3, "normalisation": "unit"}
       for name in ("autoencoder", "dae", "conv_autoencoder", "conv_dae", "vae")},
    "rbm": {"optimizer": "momentum", "lr": 0.1, "batch_size": 100, "schedule": "constant", "normalisation": "unit"},
    # Recurrent models (README "Recurrent networks"), MNIST row by row after 5 epochs: lstm 98.59%, gru 98.83%,
    # rnn 96.23%; char_lstm trains on --dataset text:FILE.
    **{name: {"optimizer": "adam", "lr": 2e-3, "epochs": 5} for name in ("rnn", "lstm", "gru")},
    "char_lstm": {"optimizer": "adam", "lr": 2e-3, "batch_size": 32, "epochs": 30, "normalisation": "none"},
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
            raise ValueError(unknown("model", self.model, sorted(models.REGISTRY)))
        defaults = {**BASE, **MODEL_DEFAULTS.get(self.model, {}), **DATASET_DEFAULTS.get(self.dataset, {})}
        filled = {k: (defaults[k] if getattr(self, k) is None else getattr(self, k)) for k in defaults}
        for kind, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("normalisation", data.NORMALISATIONS)):
            if filled[kind] not in choices:
                raise ValueError(unknown(kind, filled[kind], choices))
        if filled["epochs"] < 1 or filled["batch_size"] < 1:
            raise ValueError(f"epochs and batch size must be >= 1; got {filled['epochs']}, {filled['batch_size']}")
        for flag, value, ok, accepted in (
                ("lr", filled["lr"], lambda v: v > 0, "> 0"),
                ("momentum", filled["momentum"], lambda v: 0 <= v < 1, "in [0, 1)"),
                ("weight-decay", filled["weight_decay"], lambda v: v >= 0, ">= 0")):
            if not (isinstance(value, int | float) and math.isfinite(value) and ok(value)):
                raise ValueError(f"--{flag} must be a finite number {accepted}; got {value}")
        workdir = self.workdir or f"runs/{self.model}-{self.dataset.replace('/', '-').replace(':', '-')}"
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
    if model.objective is None and out.shape[-1] not in (classes, 1 if classes == 2 else classes):
        raise ValueError(f"model {name} gives {out.shape[-1]} outputs but dataset {dataset.name} has {classes} classes")
    return model


def run(config: TrainConfig, progress: bool = True, log: Callable[[str], None] = print,
        shard_params: bool = False) -> FitResult:
    """Run a config: load and prepare the data for the model, then ``fit`` with checkpoints in ``workdir``, on every
    device (``shard_params``: the large parameter and optimiser arrays split over them rather than replicated)."""
    config = config.resolved()
    if is_main_process():  # fail fast, before loading data: a workdir that cannot be written or does not fit --resume
        check_workdir(config.workdir, config.resume, config.overwrite)
    raw = data.load_raw(config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir)
    model = build_for(config.model, raw)
    ds = data.prepare(raw, model.input_shape, "none" if config.dataset in data.EMBEDDED else config.normalisation)
    if config.batch_size > len(ds.train_x):
        raise ValueError(f"--batch-size {config.batch_size} is larger than the {len(ds.train_x)} training examples of "
                         f"{config.dataset}: use at most {len(ds.train_x)}")
    steps = len(ds.train_x) // config.batch_size
    optimizer = make_optimizer(config.optimizer, config.lr, config.momentum, config.weight_decay, config.schedule,
                               total_steps=steps * config.epochs)
    log(f"{config.model} on {config.dataset}: {config.optimizer} lr {config.lr}"
        + (f" momentum {config.momentum}" if config.optimizer in ("momentum", "nesterov") else "")
        + (f" weight decay {config.weight_decay}" if config.weight_decay else "")
        + f", {config.schedule} schedule, {config.epochs} epochs, seed {config.seed}, workdir {config.workdir}")
    saved = {**dataclasses.asdict(config), **({"vocab": raw.vocab} if isinstance(raw, data.TextDataset) else {})}
    # With several processes (jax.distributed) each keeps only its share of the examples, normalised above with the
    # whole training set's statistics; fit makes the global batches from the shares.
    train_x, train_y, test_x, test_y = distributed.shard((ds.train_x, ds.train_y, ds.test_x, ds.test_y))
    result = fit(model, train_x, train_y, test_x, test_y, optimizer=optimizer, epochs=config.epochs,
                 batch_size=config.batch_size, seed=config.seed, workdir=config.workdir, resume=config.resume,
                 overwrite=config.overwrite, config=saved, progress=progress, log=log,
                 shardings=data_parallel(shard_state=True) if shard_params else "auto")
    # Models that reconstruct their input (autoencoders, the RBM) also show test reconstructions (VAE: samples).
    if is_main_process():  # (process 0 only, from a local copy of the state)
        params, model_state = jax.device_get((result.state.params, result.state.model_state))
        for path in models.autoencoders.write_images(model, params, model_state, ds.test_x, config.workdir):
            log(f"wrote {path}")
    return result
