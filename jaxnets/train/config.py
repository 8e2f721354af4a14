"""A training run from a flat config: ``TrainConfig`` (its fields' metadata document them, for the CLI's flags), the
per-model and per-dataset defaults, ``build_for`` (a registered model for a dataset, with the model's own options)
and ``run`` (load the dataset, build the model, make the optimiser, ``fit``; record the run in ``config.json``)."""

from __future__ import annotations

import collections.abc
import dataclasses
import importlib.metadata
import inspect
import json
import math
import os
import platform
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jax
import optax

from jaxnets import data, models
from jaxnets._names import unknown
from jaxnets.data.text import PREFIX, TOKENS
from jaxnets.models import Model
from jaxnets.train import distributed
from jaxnets.train._recipes import DTYPES, augmented, mixed_precision
from jaxnets.train._weights import WEIGHTS, model_record, save_weights
from jaxnets.train.loop import (
    KEEP,
    FitResult,
    ParameterError,
    RunOptions,
    check_selection,
    check_workdir,
    fit,
    validation_split,
)
from jaxnets.train.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from jaxnets.train.parallel import data_parallel, is_main_process
from jaxnets.train.safety import TrainingInterrupted
from jaxnets.train.state import TrainState
from jaxnets.viz import write_images

# Per-model defaults (fields left unset take these), measured on MNIST: lenet5_modern 99.4% after 10 epochs (shifts,
# one-cycle, weight decay; README "Recipes"), lenet5 (1998) 99.10% after 20 (99.26% with --augment affine), mlp
# 98.23%, logistic 92.1%. The 1998 LeNet-5 needs LAMB's per-layer relative
# steps (see README); the others train with SGD + momentum.
BASE = {
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "momentum",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "normalisation": "standard",
    "augment": "none",
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lenet5_modern": {"lr": 0.05, "schedule": "onecycle", "augment": "shift", "weight_decay": 5e-4},
    "lenet5": {"epochs": 20, "optimizer": "lamb", "lr": 0.01, "normalisation": "lenet1998"},
    "mlp": {"epochs": 10},
    "logistic": {"lr": 0.01, "schedule": "constant"},
    "perceptron": {"optimizer": "sgd", "lr": 1.0, "schedule": "constant"},
    # Autoencoders and the RBM reconstruct pixels in [0, 1]; see jaxnets/models/_autoencoders.py, README.
    **{
        name: {"optimizer": "adam", "lr": 1e-3, "normalisation": "unit"}
        for name in ("autoencoder", "dae", "conv_autoencoder", "conv_dae", "vae")
    },
    "rbm": {"optimizer": "momentum", "lr": 0.1, "batch_size": 100, "schedule": "constant", "normalisation": "unit"},
    # Recurrent models (README "Recurrent networks"), MNIST row by row after 5 epochs: lstm 98.59%, gru 98.83%,
    # rnn 96.23%; char_lstm trains on dataset text:FILE.
    **{name: {"optimizer": "adam", "lr": 2e-3, "epochs": 5} for name in ("rnn", "lstm", "gru")},
    "char_lstm": {"optimizer": "adam", "lr": 2e-3, "batch_size": 32, "epochs": 30, "normalisation": "none"},
    # Handwriting strokes on dataset hershey (bench/handwriting.py): Adam, Graves' gradient clipping, the offsets as
    # they are (the glyph id is an input channel: it must not be normalised).
    "handwriting": {
        "optimizer": "adam",
        "lr": 2e-3,
        "batch_size": 64,
        "epochs": 20,
        "normalisation": "none",
        "clip_norm": 1.0,
    },
    # Segmentation on mnist_canvas (bench/segmentation.py): Adam on pixels in [0, 1].
    **{name: {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "normalisation": "unit"} for name in ("fcn", "unet")},
    # Localisation (mnist_canvas_single) and detection (mnist_canvas_detection): bench/localisation.py, detection.py.
    "cam_cnn": {"optimizer": "adam", "lr": 2e-3, "batch_size": 64, "epochs": 4, "normalisation": "unit"},
    "yolo": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 10, "normalisation": "unit"},
    # Super-resolution (mnist_canvas_sr, _sr3; bench/superres.py): Adam on pixels in [0, 1], as the PSNR takes them.
    **{m: {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "normalisation": "unit"} for m in ("srcnn", "espcn")},
    # Visual question answering (bench/vqa.py): Adam, inputs as stored (uint8 images are scaled inside the models).
    "vqa_lstm_cnn": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 2, "normalisation": "none"},
    **{
        m: {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 1, "normalisation": "none"}
        for m in ("relation_network", "cnn_mlp")
    },
    # Captioning on shapes_captions (bench/captioning.py): Adam with clipping, images in [0, 1] as generated.
    **{
        name: {
            "optimizer": "adam",
            "lr": 3e-3,
            "batch_size": 64,
            "epochs": 8,
            "normalisation": "unit",
            "clip_norm": 5.0,
        }
        for name in ("show_tell", "show_attend_tell")
    },
    # End-to-end memory networks on babi:T (bench/memn2n.py): the paper's SGD on the summed batch loss (lr 0.01,
    # clip 40, batch 32, halved every 25 of 100 epochs) is lr 0.32 and clip 1.25 on our mean loss; word ids as they
    # are.
    "memn2n": {
        "optimizer": "sgd",
        "lr": 0.32,
        "batch_size": 32,
        "epochs": 100,
        "schedule": "halving",
        "clip_norm": 1.25,
        "normalisation": "none",
    },
}
# The embedded toy sets are tiny: many short epochs of small batches, the points as they are (no normalisation).
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "xor": {"epochs": 100, "batch_size": 4, "lr": 0.1, "schedule": "constant", "normalisation": "none"},
    "spirals": {
        "epochs": 200,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 0.01,
        "schedule": "constant",
        "normalisation": "none",
    },
}
RUN_RECORD = "config.json"  # in the workdir: the resolved config, versions and devices of the run
RECORD_KEYS = ("config", "versions", "devices", "model")
ACTIONS = ("resume", "overwrite")  # what to do with the workdir's checkpoint: not part of what a run is
RESERVED = ("input_shape", "num_classes", "name")  # builder parameters that are not model options


SELECTION = ("val_split", "keep", "patience")  # model selection: in a checkpoint's config only when used
RECIPE_DEFAULTS = {"augment": "none", "clip_norm": None, "dtype": "float32"}  # likewise, the recipes' settings
MAX_SKIPPED = 100  # float16: consecutive overflowed steps skipped before the run diverges


def _doc(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field whose metadata documents it: ``help``, and for the CLI ``metavar``, ``choices`` (shown in the
    help; checked by ``resolved`` with a did-you-mean) or ``flag`` (the flag's name when not the field's)."""
    return field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run; ``None`` fields take the model's (then the dataset's) defaults."""

    model: str = _doc("lenet5_modern", "model name (see --list-models)", metavar="NAME")
    dataset: str = _doc(
        "mnist",
        "dataset: embedded (xor, spirals), a TFDS name (see --list-datasets), or text:FILE "
        "(the characters of a UTF-8 file, for char_lstm)",
        metavar="NAME",
    )
    tokens: str = _doc(
        "chars",
        "what a text:FILE dataset's tokens are: its characters, or jamo (each Hangul syllable as its 2-3 letters)",
        choices=TOKENS,
    )
    epochs: int | None = _doc(None, "passes over the training set")
    batch_size: int | None = _doc(None, "examples per step (over all devices); the last partial batch is dropped")
    optimizer: str | None = _doc(None, "optimiser (lamb: Adam with layer-wise relative steps)", choices=OPTIMIZERS)
    lr: float | None = _doc(None, "(peak) learning rate")
    momentum: float | None = _doc(None, "momentum of the momentum and nesterov optimisers")
    weight_decay: float | None = _doc(None, "L2 weight decay added to the gradients")
    schedule: str | None = _doc(
        None,
        "learning-rate schedule over the run (cosine: decay to 0; step: x0.1 at half and three quarters of it; "
        "exponential: down to lr/100; warmup_cosine: a linear warm-up over its first 1/20, then cosine; onecycle: "
        "up from lr/25 over its first 3/10, then down)",
        choices=SCHEDULES,
    )
    clip_norm: float | None = _doc(
        None, "clip the gradients to this global norm before the optimiser (default: no clipping)", metavar="C"
    )
    augment: str | None = _doc(
        None,
        "random augmentation of each training batch, on device inside the step (shift: up to 2 pixels; affine: "
        "rotation, scale, squeeze, shear, translation; elastic: Simard et al. 2003, sigma 4, alpha 34)",
        choices=data.AUGMENTATIONS,
    )
    augment_strength: float = _doc(1.0, "multiplies the augmentation's magnitudes", metavar="S")
    dtype: str = _doc(
        "float32",
        "training's compute dtype: bfloat16 or float16 on float32 parameters, evaluation in float32 (a GPU/TPU "
        "speed feature, slower on most CPUs; float16 with static loss scaling, overflowed steps skipped)",
        choices=DTYPES,
    )
    normalisation: str | None = _doc(
        None,
        "how inputs are scaled (standard: mean 0, std 1 per channel; lenet1998: "
        "background -0.1, foreground 1.175; unit: [0, 1]; none: as stored)",
        choices=data.NORMALISATIONS,
    )
    seed: int = _doc(0, "seed of everything random: init, shuffling, dropout, the validation split")
    val_split: float | None = _doc(
        None,
        "hold out this fraction of the training set (fixed by --seed) to validate each epoch; the test set is then "
        "evaluated once, at the end, on the kept parameters",
        metavar="FRACTION",
    )
    keep: str = _doc(
        "last",
        "which parameters the weights file keeps: the last epoch's or those of the lowest validation loss (needs "
        "--val-split); the checkpoint stays the latest state",
        choices=KEEP,
    )
    patience: int | None = _doc(
        None, "stop after this many epochs without a lower validation loss (needs --val-split)", metavar="N"
    )
    workdir: str | None = _doc(
        None,
        "folder for checkpoint.msgpack, metrics.jsonl, curves.png and config.json (default runs/MODEL-DATASET)",
        metavar="DIR",
    )
    resume: bool = _doc(False, "continue from the checkpoint in the workdir")
    overwrite: bool = _doc(False, "start afresh even if the workdir holds a checkpoint")
    tensorboard: bool = _doc(
        False,
        "also write the metrics as TensorBoard event files to WORKDIR/tensorboard (pip install 'jaxnets[tensorboard]')",
    )
    manual_dir: str | None = _doc(
        None,
        "folder holding the dataset's original files, for offline preparation (or set JAXNETS_MANUAL_DIR)",
        metavar="DIR",
    )
    data_dir: str | None = _doc(
        None, "TFDS data dir for the prepared datasets (default: TFDS's own, ~/tensorflow_datasets)", metavar="DIR"
    )
    model_args: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "an option of the model's builder, e.g. batch_norm=true (vgg*), layout=paper (googlenet), "
            'shortcut=B (resnet20), hidden=[64,32] (mlp); VALUE is JSON (true, 3, 0.5, [1,2], "text"), else a '
            "comma-separated list (64,32), else a bare string; repeatable",
            "flag": "model_arg",
            "metavar": "NAME=VALUE",
        },
    )

    def resolved(self) -> TrainConfig:
        """This config with every unset field filled from the defaults, after checking names and values."""
        if self.model not in models.REGISTRY:
            raise ValueError(unknown("model", self.model, sorted(models.REGISTRY)))
        defaults = {**BASE, **MODEL_DEFAULTS.get(self.model, {}), **DATASET_DEFAULTS.get(self.dataset, {})}
        filled = {k: (defaults[k] if getattr(self, k) is None else getattr(self, k)) for k in defaults}
        for kind, choices in (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("normalisation", data.NORMALISATIONS),
            ("augment", data.AUGMENTATIONS),
        ):
            if filled[kind] not in choices:
                raise ValueError(unknown(kind, filled[kind], choices))
        if filled["epochs"] < 1 or filled["batch_size"] < 1:
            raise ValueError(f"epochs and batch size must be >= 1; got {filled['epochs']}, {filled['batch_size']}")
        for name, ok, accepted in (
            ("lr", lambda v: v > 0, "> 0"),
            ("momentum", lambda v: 0 <= v < 1, "in [0, 1)"),
            ("weight_decay", lambda v: v >= 0, ">= 0"),
        ):
            value = filled[name]
            if not (isinstance(value, int | float) and math.isfinite(value) and ok(value)):
                raise ParameterError(name, f"{name} must be a finite number {accepted}; got {value}")
        for name, value, accepted in (
            ("clip_norm", self.clip_norm, "> 0"),
            ("augment_strength", self.augment_strength, ">= 0"),
        ):
            if value is not None and not (
                isinstance(value, int | float)
                and math.isfinite(value)
                and (value > 0 if name == "clip_norm" else value >= 0)
            ):
                raise ParameterError(name, f"{name} must be a finite number {accepted}; got {value}")
        if self.dtype not in DTYPES:
            raise ValueError(unknown("dtype", self.dtype, DTYPES))
        if self.tokens not in TOKENS:
            raise ValueError(unknown("tokens", self.tokens, TOKENS))
        if self.tokens != "chars" and not self.dataset.startswith(PREFIX):
            raise ParameterError("tokens", f"tokens {self.tokens} is for a text:FILE dataset; got {self.dataset}")
        check_selection(self.val_split, self.keep, self.patience)
        check_model_args(self.model, self.model_args)
        workdir = self.workdir or f"runs/{self.model}-{self.dataset.replace('/', '-').replace(':', '-')}"
        return dataclasses.replace(self, workdir=workdir, model_args=self._model_args(), **filled)

    def _model_args(self) -> dict[str, Any]:
        """``model_args``, with a super-resolution dataset's scale for a model that takes one and is not given it."""
        scale = data.SUPERRES_DATASETS.get(self.dataset)
        if scale is None or "scale" not in model_options(self.model) or "scale" in self.model_args:
            return dict(self.model_args)
        return {**self.model_args, "scale": scale}

    def to_dict(self) -> dict[str, Any]:
        """The fields that define the run (all but ``resume`` and ``overwrite``), JSON-able: ``from_dict``'s input."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ACTIONS}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> TrainConfig:
        """A config from a mapping of field names (``to_dict``'s output, JSON); ``ValueError`` naming an unknown key or
        a value of the wrong type."""
        hints = typing.get_type_hints(cls)
        for key, value in fields.items():
            if key not in hints:
                raise ValueError(unknown("config key", key, list(hints)))
            if not _accepts(hints[key], value):
                raise ParameterError(key, f"{key} takes {_shown(hints[key])}; got {value!r}")
        return cls(**fields)


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config fields held by a JSON file: a run's ``config.json`` (its ``"config"``) or a bare mapping of
    fields. ``ValueError`` in one line if it cannot be read, is not such JSON, or holds an unknown key."""
    try:
        held = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"config file {path} cannot be read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"config file {path} is not JSON ({e})") from None
    if isinstance(held, dict) and isinstance(held.get("config"), dict):
        extra = sorted(set(held) - set(RECORD_KEYS))
        if extra:
            raise ValueError(
                f"config file {path}: unknown key {extra[0]!r} beside 'config'; a run record holds "
                f"{', '.join(RECORD_KEYS)}"
            )
        held = held["config"]
    if not isinstance(held, dict):
        raise ValueError(f"config file {path} must hold a JSON object of config fields; got {type(held).__name__}")
    try:
        TrainConfig.from_dict(held)
    except ValueError as e:  # (about the file's keys, not parameters or flags)
        raise ValueError(f"config file {path}: {e}") from None
    return held


# --- model options --------------------------------------------------------------------------------------------------


def model_options(name: str) -> dict[str, inspect.Parameter]:
    """The options of registered model ``name``: its builder's keyword parameters other than ``input_shape``,
    ``num_classes`` and ``name`` and, where the builder passes ``**options`` on (``vgg11`` -> ``vgg``,
    ``resnet20`` -> ``cifar_resnet``, ``dae`` -> ``autoencoder``), those of the function it calls that come after
    that function's ``input_shape``. Annotations are evaluated where they can be."""
    if name not in models.REGISTRY:
        raise ValueError(unknown("model", name, sorted(models.REGISTRY)))
    return _options(models.REGISTRY[name][0])


def _options(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    params = inspect.signature(fn).parameters
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be evaluated here: such options are not type-checked
        hints = {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    out = {
        k: p.replace(annotation=hints.get(k, inspect.Parameter.empty))
        for k, p in params.items()
        if p.kind in kinds and k not in RESERVED
    }
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        for target in _callees(fn):
            names = list(inspect.signature(target).parameters)
            after = names[names.index("input_shape") + 1 :] if "input_shape" in names else names
            out.update({k: p for k, p in _options(target).items() if k in after and k not in out})
    return out


def _callees(fn: Callable[..., Any]) -> list[Callable[..., Any]]:
    """The functions of its module that ``fn``'s code names (where its ``**options`` go)."""
    names = getattr(getattr(fn, "__code__", None), "co_names", ())
    scope = getattr(fn, "__globals__", {})
    return [scope[n] for n in names if inspect.isfunction(scope.get(n))]


def _accepts(tp: Any, value: Any) -> bool:
    """Whether ``value`` (from JSON: bool, int, float, str, list, None) fits the annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is inspect.Parameter.empty or tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if origin is dict:
        return isinstance(value, dict)
    if origin is typing.Literal:
        return value in args
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin in (tuple, list, collections.abc.Sequence) or tp in (tuple, list):
        if not isinstance(value, list | tuple):
            return False
        if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis):
            return all(_accepts(args[0], v) for v in value)
        return not args or (len(args) == len(value) and all(map(_accepts, args, value)))
    return isinstance(value, tp) if isinstance(tp, type) else True


def check_model_args(name: str, model_args: dict[str, Any]) -> None:
    """``ParameterError`` (``model_args``) in one line for an option model ``name`` does not take (naming the
    closest and all it takes) or a value of the wrong type."""
    options = model_options(name)
    for key, value in model_args.items():
        if key not in options:
            listing = f"{name} takes {', '.join(sorted(options)) or 'no options'}"
            raise ParameterError("model_args", f"model_args: {unknown(f'{name} option', key, options, listing)}")
        annotation = options[key].annotation
        if not _accepts(annotation, value):
            shown = _shown(annotation)
            hint = f" (a list: [{json.dumps(value)}])" if _accepts(annotation, [value]) else ""
            raise ParameterError("model_args", f"model_args: {name} option {key} takes {shown}; got {value!r}{hint}")


def _shown(annotation: Any) -> str:
    """An annotation as its source reads, without module paths: ``Sequence[int]``, ``int | None``."""
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", inspect.formatannotation(annotation))


def _as_builder_value(value: Any) -> Any:
    """JSON's lists as the tuples builders take (hashable, as static model settings must be)."""
    return tuple(map(_as_builder_value, value)) if isinstance(value, list | tuple) else value


def build_model(
    name: str,
    input_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    num_classes: int | None = None,
    model_args: dict[str, Any] | None = None,
) -> models.Model:
    """``models.build`` with the model options ``model_args`` as JSON holds them (checked by ``check_model_args``;
    lists passed as tuples)."""
    check_model_args(name, model_args or {})
    options = {k: _as_builder_value(v) for k, v in (model_args or {}).items()}
    return models.build(name, input_shape=input_shape, num_classes=num_classes, **options)


def build_for(name: str, dataset: data.Dataset, model_args: dict[str, Any] | None = None) -> models.Model:
    """Build model ``name`` (with the options ``model_args``) for a dataset's example shape and classes;
    ``ValueError`` if it cannot take them."""
    shape, classes = dataset.input_shape, dataset.num_classes
    check_model_args(name, model_args or {})
    try:
        model = build_model(name, shape, classes, model_args)
        data.check_fits(shape, model.input_shape)
        params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
        zeros = models.zeros_like_inputs(model.input_shape, 2)
        out = jax.eval_shape(lambda p, s: model.apply(p, s, zeros)[0], params, state)
    except (ValueError, TypeError, IndexError) as e:
        raise ValueError(
            f"model {name} cannot take dataset {dataset.name} (examples of shape {shape}, "
            f"{classes} classes): {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    if model.objective is None and out.shape[-1] not in (classes, 1 if classes == 2 else classes):
        raise ValueError(f"model {name} gives {out.shape[-1]} outputs but dataset {dataset.name} has {classes} classes")
    return model


# --- the run --------------------------------------------------------------------------------------------------------


def run_record(config: TrainConfig, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``config.json`` holds: the resolved config (``TrainConfig.to_dict``), the versions of Python, jax, jaxlib
    and jaxnets, the devices the run uses (platform, kind, count, processes) and, given, the ``model`` record
    (``_weights.model_record``: what rebuilds the model and prepares its inputs, for ``jaxnets.load``)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "jaxnets"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    devices = jax.devices()
    return {
        "config": config.to_dict(),
        "versions": versions,
        "devices": {
            "platform": devices[0].platform,
            "kind": devices[0].device_kind,
            "count": len(devices),
            "processes": jax.process_count(),
        },
        **({"model": model} if model is not None else {}),
    }


def write_record(config: TrainConfig, model: dict[str, Any] | None = None) -> Path:
    """Write ``run_record(config, model)`` to ``WORKDIR/config.json`` atomically (a temp file renamed over it)."""
    if config.workdir is None:
        raise ValueError("write_record needs a config with a workdir (config.resolved() sets one)")
    path = Path(config.workdir) / RUN_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(run_record(config, model), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class _Prepared(NamedTuple):
    """A config's data, prepared for its model, and the model's record (what ``jaxnets.load`` rebuilds it from)."""

    raw: data.Dataset
    model: Model
    ds: data.Dataset
    record: dict[str, Any]


def _prepare(config: TrainConfig, progress: bool) -> _Prepared:
    """Load the config's dataset, build its model, normalise the data (statistics from the examples trained on: a
    validation hold-out is left out of them) and make the model record."""
    assert config.normalisation is not None
    raw = data.load_raw(
        config.dataset, data_dir=config.data_dir, manual_dir=config.manual_dir, progress=progress, tokens=config.tokens
    )
    model = build_for(config.model, raw, config.model_args)
    rows = (
        None
        if config.val_split is None
        else validation_split(models.num_examples(raw.train_x), config.val_split, config.seed)[0]
    )
    ds = data.prepare(raw, model.input_shape, config.normalisation, rows)
    text = isinstance(raw, data.TextDataset) or isinstance(raw.train_x, dict)  # (token ids, dicts: used as they are)
    pre = None if text else data.preprocessing(raw, tuple(model.input_shape), config.normalisation, rows)
    if isinstance(raw.train_x, dict):  # (questions: the names of their answers, where the dataset has them)
        names = list(getattr(raw, "answers", ())) or None
    else:
        names = None if text or config.dataset in data.EMBEDDED else data.label_names(config.dataset, config.data_dir)
    vocab = getattr(raw, "vocab", None)  # (a text's characters, or the words of questions and captions)
    vocab = list(vocab) if isinstance(vocab, tuple) else vocab
    args = (config.model, model, raw.input_shape, raw.num_classes, config.model_args, config.dataset, pre)
    return _Prepared(raw, model, ds, model_record(*args, class_names=names, vocab=vocab))


def _optimizer(config: TrainConfig, examples: int) -> optax.GradientTransformation:
    """The config's optimiser over its whole run (a schedule spans every step); ``ParameterError`` for a batch
    larger than the training set."""
    assert config.batch_size is not None and config.epochs is not None and config.optimizer is not None
    assert config.lr is not None and config.momentum is not None and config.weight_decay is not None
    assert config.schedule is not None
    if config.batch_size > examples:
        raise ParameterError(
            "batch_size",
            f"batch_size {config.batch_size} is larger than the {examples} "
            f"training examples of {config.dataset}: use at most {examples}",
        )
    steps = examples // config.batch_size
    optimizer = make_optimizer(
        config.optimizer,
        config.lr,
        config.momentum,
        config.weight_decay,
        config.schedule,
        total_steps=steps * config.epochs,
        clip_norm=config.clip_norm,
    )  # float16: a step whose loss-scaled gradients overflowed is skipped (see mixed_precision)
    return optax.apply_if_finite(optimizer, MAX_SKIPPED) if config.dtype == "float16" else optimizer


def _augmentation(config: TrainConfig, model: Model) -> data.Augment | None:
    """The config's augmentation; ``ParameterError`` for a model whose inputs are not images."""
    assert config.augment is not None
    if config.augment != "none" and len(model.input_shape) != 3:
        raise ParameterError(
            "augment",
            f"augment {config.augment}: {config.model} takes inputs of shape {tuple(model.input_shape)}, not images "
            "(height, width, channels)",
        )
    return data.augmentation(config.augment, config.augment_strength)


def _describe(config: TrainConfig) -> str:
    """The run's first log line."""
    return (
        f"{config.model} on {config.dataset}: {config.optimizer} lr {config.lr}"
        + (f" momentum {config.momentum}" if config.optimizer in ("momentum", "nesterov") else "")
        + (f" weight decay {config.weight_decay}" if config.weight_decay else "")
        + (f" clip norm {config.clip_norm}" if config.clip_norm is not None else "")
        + f", {config.schedule} schedule"
        + (f", {config.tokens} tokens" if config.tokens != "chars" else "")
        + (f", {config.augment} augmentation" if config.augment != "none" else "")
        + (
            f" (strength {config.augment_strength})"
            if config.augment != "none" and config.augment_strength != 1
            else ""
        )
        + (f", {config.dtype} compute" if config.dtype != "float32" else "")
        + f", {config.epochs} epochs, seed {config.seed}, workdir {config.workdir}"
        + (f", model options {json.dumps(config.model_args)}" if config.model_args else "")
    )


def _checkpoint_config(config: TrainConfig, raw: data.Dataset) -> dict[str, Any]:
    """What the checkpoint holds of the config (compared on resume): the fields a run of its time had."""
    saved = {**dataclasses.asdict(config), **({"vocab": raw.vocab} if isinstance(raw, data.TextDataset) else {})}
    if not config.model_args:  # (checkpoints made before model options existed resume as they were)
        del saved["model_args"]
    if config.val_split is None:  # (likewise before model selection)
        for key in SELECTION:
            del saved[key]
    for key, default in RECIPE_DEFAULTS.items():  # (and before the recipes' settings)
        if saved[key] == default:
            del saved[key]
    if config.augment == "none":
        del saved["augment_strength"]
    if config.tokens == "chars":  # (and before jamo tokens)
        del saved["tokens"]
    return saved


def run(
    config: TrainConfig, progress: bool = True, log: Callable[[str], None] = print, shard_params: bool = False
) -> FitResult:
    """Run a config: load and prepare the data for the model, then ``fit`` with checkpoints in ``workdir``, on every
    device (``shard_params``: the large parameter and optimiser arrays split over them rather than replicated).
    ``WORKDIR/config.json`` records the run (``run_record``): written before training starts or, when resuming,
    once the resumed run ends or is interrupted (a resume refused for another config leaves the file as it was).
    With each checkpoint, ``WORKDIR/weights.safetensors`` holds the parameters and state without the optimiser
    (``keep="best"``: those of the lowest validation loss), with the model record (also ``config.json``'s
    ``"model"``: the normalisation statistics, class names) for ``jaxnets.load``. ``val_split``, ``keep`` and
    ``patience``: see ``fit``."""
    config = config.resolved()
    assert config.workdir is not None and config.epochs is not None and config.batch_size is not None
    main = is_main_process()
    if main:  # fail fast, before loading data: a workdir that cannot be written or does not fit resume
        check_workdir(config.workdir, config.resume, config.overwrite)
    raw, model, ds, record = _prepare(config, progress)
    optimizer = _optimizer(config, models.num_examples(ds.train_x))
    log(_describe(config))
    # With several processes (jax.distributed) each keeps only its share of the examples, normalised above with the
    # whole training set's statistics; fit makes the global batches from the shares.
    train_x, train_y, test_x, test_y = distributed.shard((ds.train_x, ds.train_y, ds.test_x, ds.test_y))
    if main and not config.resume:
        write_record(config, record)
    weights = Path(config.workdir) / WEIGHTS

    def on_save(state: TrainState) -> None:
        save_weights(weights, state.params, state.model_state, record)

    trained = augmented(mixed_precision(model, config.dtype), _augmentation(config, model))
    try:
        result = fit(
            trained,
            train_x,
            train_y,
            test_x,
            test_y,
            optimizer=optimizer,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=config.seed,
            val_split=config.val_split,
            keep=config.keep,
            patience=config.patience,
            run=RunOptions(
                workdir=config.workdir,
                resume=config.resume,
                overwrite=config.overwrite,
                config=_checkpoint_config(config, raw),
                progress=progress,
                log=log,
                on_save=on_save,
                tensorboard=config.tensorboard,
            ),
            shardings=data_parallel(shard_state=True) if shard_params else "auto",
        )
    except TrainingInterrupted:
        if main and config.resume:
            write_record(config, record)
        raise
    if main and config.resume:
        write_record(config, record)
    # Models that reconstruct their input (autoencoders, the RBM) also show test reconstructions (VAE: samples).
    if main:  # (process 0 only, from a local copy of the state)
        kept = result.best or result.state
        params, model_state = jax.device_get((kept.params, kept.model_state))
        vocab, names = getattr(raw, "vocab", None), record["class_names"]
        images = write_images(
            model, params, model_state, ds.test_x, config.workdir, y=ds.test_y, vocab=vocab, class_names=names
        )
        for path in images:
            log(f"wrote {path}")
    return result
