"""A trained model without its optimiser or dataset: ``load`` (from a run's weights file, ``_weights``) and
``export`` (a ``jax.export`` artifact callable without jaxnets)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import data, models
from jaxnets.nn import PyTree
from jaxnets.train import checkpoint as ckpt
from jaxnets.train._weights import RECORD, WEIGHTS, flat, named_leaves, read_weights
from jaxnets.train.config import RUN_RECORD, build_model


@dataclass(frozen=True)
class Trained:
    """A trained model: ``model``, ``params``, ``state``, the ``preprocessing`` of its raw inputs (``None`` for token
    ids), its ``class_names`` where known and ``record`` (``model_record``: how it was built and trained)."""

    model: models.Model
    params: PyTree
    state: PyTree
    preprocessing: data.Preprocessing | None
    class_names: tuple[str, ...] | None
    record: dict[str, Any]

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """The model's outputs (logits) for a batch of raw examples (as the dataset stores them: uint8 pixels of
        ``preprocessing.data_shape``, or the points themselves)."""
        x = self.preprocessing(np.asarray(raw)) if self.preprocessing is not None else np.asarray(raw)
        outputs, _ = self.model.apply(self.params, self.state, jnp.asarray(x))
        return np.asarray(outputs)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, classes)`` for a batch of raw examples (softmax or sigmoid heads)."""
        return class_probabilities(self.model.head, self.predict(raw))


def class_probabilities(head: str, outputs: np.ndarray) -> np.ndarray:
    """Class probabilities from a head's outputs: softmax over several, ``[1 - p, p]`` for one sigmoid unit."""
    logits = jnp.asarray(outputs)
    if head == "softmax":
        return np.asarray(jax.nn.softmax(logits, axis=-1))
    if head == "sigmoid" and logits.shape[-1] == 1:
        p = jax.nn.sigmoid(logits)
        return np.asarray(jnp.concatenate([1 - p, p], axis=-1))
    raise ValueError(
        f"a {head} head with {logits.shape[-1]} outputs gives no class probabilities "
        "(softmax, or sigmoid with one output, do)"
    )


def _unflat(prefix: str, template: PyTree, tensors: dict[str, np.ndarray], where: str) -> PyTree:
    wanted = named_leaves(prefix, template)
    missing = [k for k in wanted if k not in tensors]
    if missing:
        raise ValueError(f"{where} has no array {missing[0]!r}: it was not written for this model")
    for k, want in wanted.items():  # (safetensors reads a scalar, e.g. a step counter, back as shape (1,))
        if tensors[k].shape != tuple(want.shape) and not (want.shape == () and tensors[k].shape == (1,)):
            raise ValueError(f"{where}: {k} has shape {tensors[k].shape}, the model's is {want.shape}")
    leaves = [jnp.asarray(tensors[k]).reshape(wanted[k].shape) for k in wanted]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def load(workdir: str | os.PathLike) -> Trained:
    """The trained model of a run's workdir (``jaxnets.train.run``, ``jaxnets-train``): model, parameters, state,
    preprocessing and class names; no optimiser, no dataset. Reads ``weights.safetensors``, else (a run of an older
    jaxnets, or a copied checkpoint) the parameters in ``checkpoint.msgpack`` with ``config.json``'s model record."""
    workdir = Path(workdir)
    weights = workdir / WEIGHTS
    if weights.exists():
        tensors, record = read_weights(weights)
        source = str(weights)
    else:
        record = _record_of(workdir)
        source = str(workdir / ckpt.CHECKPOINT)
        held = ckpt._read(source)["state"]
        tensors = {**flat("params", held["params"]), **flat("state", held.get("model_state") or {})}
    missing = sorted(set(RECORD) - set(record))
    if missing:
        raise ValueError(f"{source}: its model record lacks {', '.join(missing)}: it was written by another jaxnets")
    built_for = models.input_shapes(record["built_for"])
    model = build_model(record["name"], built_for, record["num_classes"], record["model_args"])
    if models.shape_record(model.input_shape) != record["input_shape"]:
        raise ValueError(
            f"{source}: {record['name']} built for examples of shape {built_for} "
            f"takes {model.input_shape} here but took {models.input_shapes(record['input_shape'])} in the run"
        )
    params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    params, state = _unflat("params", params, tensors, source), _unflat("state", state, tensors, source)
    pre = record.get("preprocessing")
    names = record.get("class_names")
    return Trained(
        model,
        params,
        state,
        None if pre is None else data.Preprocessing.from_dict(pre),
        None if names is None else tuple(names),
        record,
    )


def _record_of(workdir: Path) -> dict[str, Any]:
    try:
        record = json.loads((workdir / RUN_RECORD).read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict):
        raise ValueError(
            f"{workdir} holds no trained model: neither {WEIGHTS} nor a {RUN_RECORD} with its model "
            "record (written by jaxnets.train.run / jaxnets-train)"
        )
    if not (workdir / ckpt.CHECKPOINT).exists():
        raise ValueError(f"{workdir} holds neither {WEIGHTS} nor {ckpt.CHECKPOINT}")
    return record


def export(
    source: str | os.PathLike | Trained, path: str | os.PathLike, platforms: tuple[str, ...] | None = None
) -> Path:
    """Write a ``jax.export`` artifact of a trained model (``source``: a workdir or ``load``'s result) to ``path``:
    ``outputs = jax.export.deserialize(bytearray(Path(path).read_bytes())).call(x)`` for a batch ``x`` of prepared
    inputs ``(batch, *input_shape)`` (any batch size; float32, int32 token ids for text models), with no jaxnets
    code. The parameters are constants of the artifact; ``platforms`` (e.g. ``("cpu", "cuda")``) default to this
    machine's."""
    trained = source if isinstance(source, Trained) else load(source)
    model, params, state = trained.model, trained.params, trained.state
    dtype = jnp.int32 if trained.record.get("vocab") is not None else jnp.float32
    (batch,) = jax.export.symbolic_shape("batch")
    fn = jax.jit(lambda x: model.apply(params, state, x)[0])
    exported = jax.export.export(fn, platforms=platforms)(jax.ShapeDtypeStruct((batch, *model.input_shape), dtype))
    path = Path(path)
    path.write_bytes(exported.serialize())
    return path


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_examples(path: str | os.PathLike, preprocessing: data.Preprocessing, invert: bool = False) -> np.ndarray:
    """The raw examples in a file, ready for ``preprocessing``: an image (PNG/JPEG: converted to the channels and
    resized to the height and width of ``preprocessing.data_shape``, uint8) or a ``.npy`` array of one example or a
    batch (a missing channel axis of 1 is added). ``invert``: images as 255 - pixels (dark strokes on white paper
    for a dataset of light strokes on black, as MNIST's). ``ValueError`` in one line when that is impossible."""
    path = Path(path)
    shape = tuple(preprocessing.data_shape)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        if len(shape) != 3 or shape[-1] not in (1, 3) or preprocessing.scale != 255.0:
            raise ValueError(f"{path}: the model takes examples of shape {shape}, not images (pass a .npy array)")
        try:
            with Image.open(path) as opened:
                image = opened.convert("L" if shape[-1] == 1 else "RGB").resize(
                    (shape[1], shape[0]), Image.Resampling.BILINEAR
                )
                x = np.asarray(image, np.uint8).reshape(1, *shape)
        except (OSError, UnidentifiedImageError) as e:
            raise ValueError(f"{path}: not a readable image ({e})") from None
        return 255 - x if invert else x
    if path.suffix.lower() != ".npy":
        raise ValueError(f"{path}: unknown file type {path.suffix or '(none)'}; accepted: .png, .jpg, .jpeg, .npy")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    bare = shape[:-1] if shape[-1:] == (1,) else None
    if bare is not None and x.shape[-len(bare) :] == bare and x.ndim in (len(bare), len(bare) + 1):
        x = x[..., None]
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape or x.ndim != len(shape) + 1:
        raise ValueError(
            f"{path}: an array of shape {x.shape}; the model takes {shape} or a batch (n, {', '.join(map(str, shape))})"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{path}: an array of {x.dtype}; numbers are accepted")
    return 255 - x if invert else x


def evaluate_trained(
    trained: Trained,
    dataset: str | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    batch_size: int = 1000,
) -> dict[str, float]:
    """The model's metrics (``test_loss``, ``test_accuracy``, ...) on the test set of ``dataset`` (default: the
    run's), prepared with the run's recorded preprocessing and evaluated as ``fit`` evaluates each epoch (same
    batches, same devices), so the run's own test set gives its last epoch's test metrics exactly."""
    from jaxnets.train.parallel import data_parallel
    from jaxnets.train.step import evaluate

    raw = data.load_raw(dataset or trained.record["dataset"], data_dir=data_dir, manual_dir=manual_dir)
    if trained.preprocessing is None:
        x = raw.test_x
    else:
        data.check_fits(raw.input_shape, trained.model.input_shape)
        x = trained.preprocessing(raw.test_x)
    y = raw.test_y.astype(np.int32)
    metrics = evaluate(trained.model, trained.params, trained.state, x, y, batch_size, data_parallel())
    return {f"test_{k}": v for k, v in metrics.items()}
