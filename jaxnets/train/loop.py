"""``fit``: train a model, or any training step (``step.TrainStep``), on in-memory arrays, with per-epoch evaluation,
a validation hold-out with model selection and early stopping, checkpoints, metrics, resume, Ctrl-C/SIGTERM and the
non-finite guard. Built from parts: the argument checks (``_plan``), the restore (``rundir.RunDir``), the epochs of
steps and their end (``_Training``)."""

from __future__ import annotations

import functools
import hashlib
import math
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.data.batching import epoch_batches
from jaxnets.models import Model, example_shape, shape_record, zeros_like_inputs
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import metrics as mw
from jaxnets.train import parallel, safety
from jaxnets.train.distributed import from_process_0
from jaxnets.train.parallel import Shardings, data_parallel, is_main_process, replicate
from jaxnets.train.rundir import RESUMABLE, Record, RunDir, will_resume
from jaxnets.train.state import TrainState, epoch_key
from jaxnets.train.step import Batch, TrainStep, evaluate_state, indexed_train_step, supervised

__all__ = [
    "KEEP",
    "RESUMABLE",
    "FitResult",
    "ParameterError",
    "RunOptions",
    "check_selection",
    "check_workdir",
    "fit",
    "validation_split",
]

_shuffle = jax.jit(epoch_batches, static_argnums=(1, 2))  # (key, examples, batch) -> an epoch's batch indices
KEEP = ("last", "best")  # which parameters a run keeps: the last epoch's, or the best validation loss's


class ParameterError(ValueError):
    """A bad value of the parameter named ``param``; the message starts with that name (the CLI swaps in its flag)."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class RunOptions:
    """Where and how a run is recorded and reported: ``workdir`` (checkpoint.msgpack, metrics.jsonl, curves.png;
    None: nothing written), ``resume`` its checkpoint or ``overwrite`` it, ``config`` (saved with the checkpoint and
    compared on resume), a progress bar, ``log`` for the report lines, and ``on_save(state)``, called after each
    checkpoint is written (``train.run``: the weights file), ``tensorboard`` event files beside metrics.jsonl. ``fit``
    also takes each as a keyword."""

    workdir: str | Path | None = None
    resume: bool = False
    overwrite: bool = False
    config: dict[str, Any] | None = None
    progress: bool = True
    log: Callable[[str], None] = print
    on_save: Callable[[TrainState], None] | None = None
    tensorboard: bool = False  # also TensorBoard event files of the records in WORKDIR/tensorboard (tensorboardX)


@dataclass
class FitResult:
    """The final training state and one metrics record per epoch trained (including resumed-from epochs); with
    ``keep="best"``, ``best``: the state (without its optimiser state) of the epoch of lowest validation loss; with a
    validation split and test data, ``final``: the test metrics of the kept parameters (``test_*``, ``kept_epoch``),
    evaluated once at the end."""

    state: TrainState
    history: list[dict[str, Any]] = field(default_factory=list)
    best: TrainState | None = None
    final: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Plan:
    """What ``fit`` made of its arguments, all checked."""

    step: TrainStep
    data: Batch  # this process's training examples (x, y), on the host
    test: Batch | None
    val: Batch | None  # this process's validation hold-out (val_split), on the host
    epochs: int
    batch_size: int  # the global batch
    steps: int  # per epoch
    shardings: Shardings | None
    eval_batch_size: int
    val_split: float | None = None
    keep: str = "last"
    patience: int | None = None
    val_digest: str | None = None  # the SHA-256 of the hold-out's indices (recorded in the config)

    @property
    def processes(self) -> int:
        return jax.process_count()

    @property
    def examples(self) -> int:
        """This process's training examples."""
        return _length(self.data)


def check_workdir(workdir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """What ``fit`` would refuse about ``workdir``, checked before any data is loaded and without creating anything:
    ``safety.WorkdirError`` if it cannot be written, ``safety.WorkdirBusy`` if another run holds it;
    ``CheckpointError`` if its checkpoint is missing (``resume``), in the way (neither ``resume`` nor ``overwrite``)
    or corrupt. (Whether the checkpoint's config matches is checked by ``fit``.)"""
    safety.check_usable(workdir)
    path = Path(workdir) / ckpt.CHECKPOINT
    if will_resume(path, resume, overwrite):
        ckpt.read_config(path)


@safety.scoped  # the workdir lock and the signal handlers taken inside are released when fit returns or raises
def fit(
    model_or_step: Model | TrainStep,
    train_x: Any,
    train_y: Any = None,
    test_x: Any = None,
    test_y: Any = None,
    *,
    optimizer: optax.GradientTransformation | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    seed: int = 0,
    eval_batch_size: int = 1000,
    shardings: Shardings | Literal["auto"] | None = "auto",
    val_split: float | None = None,
    keep: str = "last",
    patience: int | None = None,
    run: RunOptions | None = None,
    **run_options: Any,
) -> FitResult:
    """Train a model (with ``optimizer``, on its objective: ``step.supervised``) or a ``TrainStep`` on
    (``train_x``, ``train_y``) for ``epochs`` epochs of shuffled fixed-size batches. ``x`` and ``y`` may be pytrees
    of arrays sharing the leading example axis (``y`` may be None for a step that needs no labels).

    Everything is reproducible from ``seed``. With a ``workdir`` (``run=RunOptions(...)``, or its fields as keywords:
    ``workdir``, ``resume``, ``overwrite``, ``config``, ``progress``, ``log``), each epoch writes
    ``checkpoint.msgpack`` (state, ``config`` and the epochs' records), ``metrics.jsonl`` and ``curves.png``;
    ``resume=True`` continues from the checkpoint and ends with the same state as an uninterrupted run.

    With several devices (``shardings``: "auto" = all of them, or as many as split the batch evenly; or
    ``parallel.data_parallel(devices)``), each batch of ``batch_size`` examples (the global batch) is split over
    them, the state replicated (``data_parallel(shard_state=True)``: its large arrays split over the devices too);
    the metrics are means over the global batch. With several processes (``jax.distributed``), the arrays given are
    this process's shard of the data (``distributed.shard``): each process shuffles its own shard and supplies
    ``batch_size / processes`` examples of each global batch; only process 0 logs and writes to ``workdir``.

    Model selection: ``val_split`` (a fraction in (0, 1)) holds out that share of the training examples
    (``validation_split``: fixed by ``seed``, recorded in the config), scored each epoch (``val_*`` in the epoch's
    record) instead of the test data, which is scored once at the end on the kept parameters (a ``final`` record of
    ``test_*``). ``keep="best"`` keeps the parameters of the epoch of lowest validation loss (``FitResult.best``;
    ``on_save`` gets them, and the workdir's ``best.msgpack``) while the checkpoint stays the latest state;
    ``patience`` stops training after that many epochs without a lower validation loss. Both are recorded in the
    checkpoint's records, so a resumed run stops and selects as the uninterrupted one.

    Safety: bad arguments (also class labels outside ``0..classes-1``) raise ``ValueError`` before anything is
    compiled. The workdir is locked for the run (``safety.WorkdirBusy`` for a second one). A step with a NaN or
    infinite metric is not committed and ``fit`` raises ``safety.TrainingDiverged`` within ~5% of an epoch, the last
    good checkpoint kept. Ctrl-C (SIGINT) or SIGTERM ends the current step, saves a checkpoint of it, and raises
    ``safety.TrainingInterrupted``; resuming from a mid-epoch checkpoint continues at that step, still ending with
    the uninterrupted run's state. On resume, ``epochs`` may change only under a constant schedule (``config``'s
    'schedule' absent or 'constant').
    """
    run = _run_options(run, run_options)
    log = run.log if is_main_process() else (lambda line: None)
    plan = _plan(
        model_or_step,
        optimizer,
        (train_x, train_y),
        (test_x, test_y),
        epochs,
        batch_size,
        eval_batch_size,
        shardings,
        log,
        (val_split, keep, patience, seed),
    )
    state = plan.step.init(jax.random.PRNGKey(seed))
    config = _config(model_or_step, plan, state, seed, run.config)
    state, history, carried, rd = _restore(run, config, state, plan.steps, log)
    best = _restore_best(plan, rd, state, history)
    stop = safety.hold(safety.signals_stop(enabled=plan.processes == 1))  # finish the step, save, stop
    training = _Training(plan, rd, run.workdir is not None, stop, log, run.progress and is_main_process(), best)
    return training.run(state, history, carried)


def check_selection(val_split: float | None, keep: str, patience: int | None) -> None:
    """``ParameterError`` naming the parameter unless ``val_split`` is None or a fraction in (0, 1), ``keep`` one of
    ``KEEP``, ``patience`` None or a whole number >= 1, and ``keep="best"`` and ``patience`` come with a
    ``val_split`` (they select on the validation loss)."""
    if val_split is not None and not (
        isinstance(val_split, int | float | np.floating) and not isinstance(val_split, bool) and 0 < val_split < 1
    ):
        raise ParameterError("val_split", f"val_split must be a fraction in (0, 1); got {val_split!r}")
    if keep not in KEEP:
        raise ParameterError("keep", f"keep must be one of {', '.join(KEEP)}; got {keep!r}")
    if patience is not None and not (
        isinstance(patience, int | np.integer) and not isinstance(patience, bool) and patience >= 1
    ):
        raise ParameterError("patience", f"patience must be a whole number >= 1; got {patience!r}")
    for name, given in (("keep", keep == "best"), ("patience", patience is not None)):
        if given and val_split is None:
            value = "best" if name == "keep" else patience
            raise ParameterError(
                name, f"{name} {value} selects on the validation loss: it needs `val_split` (e.g. 0.1)"
            )


def validation_split(examples: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the training examples kept for training and of those held out for validation (the last
    ``round(val_split * examples)`` of a permutation seeded by ``seed``), each sorted: disjoint, covering
    ``0..examples-1``, the same for the same arguments."""
    held = round(float(val_split) * examples)
    order = np.random.default_rng(seed).permutation(examples)
    return np.sort(order[: examples - held]), np.sort(order[examples - held :])


def _hold_out(data: Batch, val_split: float, seed: int, batch_size: int) -> tuple[Batch, Batch, str]:
    """The training examples without the validation hold-out, the hold-out, and the SHA-256 of its indices;
    ``ParameterError`` when it would hold no example or leave fewer than a batch."""
    n = _length(data)
    kept, held = validation_split(n, val_split, seed)
    if not len(held) or len(kept) < batch_size:
        why = "holds out no example" if not len(held) else f"leaves {len(kept)}, fewer than a batch of {batch_size}"
        raise ParameterError(
            "val_split", f"val_split {val_split} of the {n} training examples {why}: choose another fraction"
        )

    def take(idx: np.ndarray) -> Batch:
        return jax.tree.map(lambda a: np.asarray(a)[idx], data)

    return take(kept), take(held), hashlib.sha256(held.astype(np.int64).tobytes()).hexdigest()


def _run_options(run: RunOptions | None, options: dict[str, Any]) -> RunOptions:
    """``run`` with the keyword options given to ``fit`` (``TypeError`` for an unknown one)."""
    known = {f.name for f in fields(RunOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"fit() got unexpected keyword argument(s) {', '.join(unknown)}; the run options are "
            f"{', '.join(sorted(known))}"
        )
    run = RunOptions(**{**(run.__dict__ if run is not None else {}), **options})
    if run.tensorboard and run.workdir is None:
        raise ParameterError("tensorboard", "tensorboard writes its event files into the workdir: give a workdir")
    return run


def _plan(
    model_or_step: Model | TrainStep,
    optimizer: optax.GradientTransformation | None,
    data: Batch,
    test: Batch,
    epochs: int,
    batch_size: int,
    eval_batch_size: int,
    shardings: Shardings | Literal["auto"] | None,
    log: Callable[[str], None],
    selection: tuple[float | None, str, int | None, int],
) -> _Plan:
    """Check ``fit``'s arguments (``ValueError`` before anything is compiled) and work out its batches;
    ``selection``: ``(val_split, keep, patience, seed)``."""
    val_split, keep, patience, seed = selection
    check_selection(val_split, keep, patience)
    step = _as_step(model_or_step, optimizer)
    n = _check_examples(data, test)
    if not (isinstance(epochs, int | np.integer) and epochs >= 1) or not (
        isinstance(batch_size, int | np.integer) and batch_size >= 1
    ):
        raise ValueError(f"epochs and batch size must be whole numbers >= 1; got {epochs!r}, {batch_size!r}")
    if isinstance(model_or_step, Model):
        data, test = _check_model_data(model_or_step, data, test)
    elif test[0] is not None and step.evaluate is None:
        raise ValueError(f"{step.name} has no evaluate: it cannot score test data (pass no test_x, test_y)")
    processes = jax.process_count()
    val, digest = None, None
    if val_split is not None:
        data, val, digest = _validation(step, data, val_split, seed, int(batch_size), processes)
        n = _length(data)
    shardings = _auto_shardings(int(batch_size), log) if shardings == "auto" else shardings
    if processes > 1 and shardings is None:
        raise ValueError(f"{processes} processes train together only over a device mesh: pass shardings='auto'")
    if processes > 1:  # every process takes the same number of steps, over its first n examples
        n = parallel.global_min(n)
        data = jax.tree.map(lambda a: a[:n], data)
    steps = _steps_per_epoch(n, int(batch_size), processes, shardings, log)
    if val is not None:
        log(f"validation: {_length(val) * processes} examples held out of the training set ({val_split:g})")
    return _Plan(
        step,
        data,
        None if test[0] is None else test,
        val,
        int(epochs),
        int(batch_size),
        steps,
        shardings,
        eval_batch_size,
        val_split,
        keep,
        patience,
        digest,
    )


def _validation(
    step: TrainStep, data: Batch, val_split: float, seed: int, batch_size: int, processes: int
) -> tuple[Batch, Batch, str]:
    """``_hold_out`` of ``data`` for ``val_split``; ``ParameterError`` where no validation can be made."""
    if step.evaluate is None:
        raise ParameterError("val_split", f"val_split: {step.name} has no evaluate to score a validation set with")
    if processes > 1:
        raise ParameterError("val_split", f"val_split: not supported over {processes} processes (one process only)")
    return _hold_out(data, val_split, seed, batch_size // processes)


def _steps_per_epoch(
    n: int, batch_size: int, processes: int, shardings: Shardings | None, log: Callable[[str], None]
) -> int:
    """The steps of an epoch over ``n`` examples per process (``ValueError`` for a batch larger than the training
    set or one that does not split over the devices), and the log lines that say so."""
    if batch_size > n * processes:
        raise ValueError(
            f"batch size {batch_size} is larger than the {n * processes} training examples: use a batch "
            f"size of at most {n * processes}"
        )
    if shardings is not None and batch_size % shardings.num_devices:
        d = shardings.num_devices
        raise ValueError(
            f"batch size {batch_size} does not split evenly over the {d} devices: use a multiple of "
            f"{d}, e.g. {max(d, batch_size // d * d)}"
        )
    steps = n // (batch_size // processes)
    dropped = (n - steps * (batch_size // processes)) * processes
    log(
        f"{n * processes} examples, batch {batch_size} -> {steps} iterations per epoch"
        + (f", last partial batch of {dropped} dropped" if dropped else "")
    )
    log(f"devices: {_devices()}")
    if shardings is not None:
        log(
            f"data parallel over {shardings.num_devices} devices ({batch_size // shardings.num_devices} per device)"
            + (f", {processes} processes" if processes > 1 else "")
        )
    return steps


def _auto_shardings(batch_size: int, log: Callable[[str], None]) -> Shardings | None:
    """Every device, or (one process) the most devices that ``batch_size`` splits over evenly: each step's update is
    the same over any number of devices, so a batch of 100 on 8 devices trains, on 5 of them."""
    devices = jax.devices()
    if jax.process_count() == 1 and batch_size % len(devices):
        used = max(k for k in range(1, len(devices) + 1) if batch_size % k == 0)
        log(
            f"batch size {batch_size} does not split evenly over the {len(devices)} devices: training on {used} of "
            f"them (a multiple of {len(devices)} uses them all)"
        )
        devices = devices[:used]
    return data_parallel(devices)


def _devices() -> str:
    """The devices of the run, e.g. '8 x cpu' (over all processes)."""
    return f"{jax.device_count()} x {jax.devices()[0].platform}"


def _as_step(model_or_step: Model | TrainStep, optimizer: optax.GradientTransformation | None) -> TrainStep:
    if isinstance(model_or_step, TrainStep):
        if optimizer is not None:
            raise ValueError(
                f"{model_or_step.name} is a training step: its optimisers are part of it; pass no optimizer"
            )
        return model_or_step
    if not isinstance(model_or_step, Model):
        raise TypeError(f"fit trains a jaxnets Model or a TrainStep; got {type(model_or_step).__name__}")
    if optimizer is None:
        raise ValueError(f"fit({model_or_step.name}, ...) needs an optax optimizer=")
    return supervised(model_or_step, optimizer)


def _length(tree: Any) -> int:
    return len(jax.tree.leaves(tree)[0])


def _check_examples(data: Batch, test: Batch) -> int:
    """The number of training examples, after checking that every array of (x, y) holds as many (and of the test
    data likewise)."""
    for split, (x, y) in (("training", data), ("test", test)):
        if split == "test" and x is None and y is None:
            continue
        counts = {len(a) for a in jax.tree.leaves(x) if np.ndim(a)}
        if len(counts) != 1 or 0 in counts:
            raise ValueError(
                f"need {split} examples: arrays with the examples along their first axis, as many in "
                f"each; got {sorted(counts) or 'none'}"
            )
        labels = {len(a) for a in jax.tree.leaves(y)}
        if y is not None and labels != counts:
            got = "labels" if split == "training" else "test labels"
            raise ValueError(
                f"need as many {got} as {split} examples; got {counts.pop()} examples and "
                f"{', '.join(map(str, sorted(labels)))} labels"
            )
        if split == "test" and y is None:
            raise ValueError(f"need as many test labels as test examples; got {counts.pop()} examples and None labels")
    return _length(data[0])


def _check_model_data(model: Model, data: Batch, test: Batch) -> tuple[Batch, Batch]:
    """A model's examples must be arrays of its input shape, and its class labels integers in ``0..classes-1``
    (checked on the host, naming the first bad one); returns the data with the labels as int32 (float32 for
    regression targets)."""
    checked: list[Batch] = []
    for (x, y), (xname, yname) in ((data, ("train_x", "train_y")), (test, ("test_x", "test_y"))):
        if x is not None and example_shape(x) != model.input_shape:
            raise ValueError(
                f"{model.name} expects examples of shape {model.input_shape}; {xname} holds "
                f"examples of shape {example_shape(x)}"
            )
        if y is None:
            if x is not None:
                raise ValueError(f"{model.name} needs labels: pass {yname}")
            checked.append((x, y))
            continue
        if isinstance(y, Mapping):  # targets of several parts (boxes and labels): the model's objective reads them
            if model.objective is None:
                raise ValueError(f"{model.name} is a classifier: {yname} must be an array of class indices, not a dict")
            checked.append((x, jax.tree.map(_as_targets, y)))
            continue
        dtype = np.asarray(y).dtype
        if model.objective is None and not (
            np.issubdtype(dtype, np.integer)
            or dtype == np.bool_
            or (model.head == "linear" and np.issubdtype(dtype, np.floating))
        ):
            raise ValueError(
                f"{model.name}: {yname} must hold integer class indices; got {dtype}: pass {yname}.astype('int32')"
            )
        if model.objective is None and not np.issubdtype(dtype, np.floating):
            _check_labels(model, np.asarray(y), yname)
        checked.append((x, _as_targets(y)))
    return checked[0], checked[1]


def _as_targets(y: Any) -> np.ndarray:
    """Labels as int32, real-valued targets as float32."""
    return np.asarray(y, np.float32 if np.issubdtype(np.asarray(y).dtype, np.floating) else np.int32)


@functools.lru_cache(maxsize=64)
def _classes(model: Model) -> int:
    """The number of classes of a classifier: its outputs (one output unit: two classes). Nothing is computed."""
    params, state = jax.eval_shape(model.init, jax.random.PRNGKey(0))
    units = jax.eval_shape(lambda p, s: model.apply(p, s, zeros_like_inputs(model.input_shape, 1))[0], params, state)
    units = units.shape[-1]
    return 2 if units == 1 else units


def _check_labels(model: Model, y: np.ndarray, name: str) -> None:
    """``ValueError`` naming the first label of ``y`` outside ``0..classes-1``."""
    classes = _classes(model)
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}[{i}] is {y.flat[i]}, not a class of {model.name} (0 to {classes - 1}, "
            f"{classes} classes); {bad.size} label(s) out of range"
        )


def _config(
    model_or_step: Model | TrainStep, plan: _Plan, state: TrainState, seed: int, given: dict[str, Any] | None
) -> dict[str, Any]:
    """The config saved with the checkpoint (and compared on resume): ``given`` and what defines this run."""
    if isinstance(model_or_step, Model):
        shapes: Any = shape_record(model_or_step.input_shape)
    else:
        shapes = jax.tree.map(lambda a: list(np.shape(a)[1:]), plan.data[0])
    return {
        **(given or {}),
        "model": plan.step.name,
        "input_shape": shapes,
        "parameters": sum(int(np.size(p)) for p in jax.tree.leaves(state.params)),
        "batch_size": plan.batch_size,
        "seed": seed,
        "train_examples": plan.examples * plan.processes,
        "epochs": plan.epochs,
        "devices": _devices(),
        **(
            {}
            if plan.val is None
            else {
                "val_split": plan.val_split,
                "val_examples": _length(plan.val) * plan.processes,
                "val_sha256": plan.val_digest,
                "keep": plan.keep,
                "patience": plan.patience,
            }
        ),
    }


def _board(run: RunOptions) -> mw.TensorBoard | None:
    """The TensorBoard writer ``run.tensorboard`` asks for; ``ParameterError`` without tensorboardX."""
    if not run.tensorboard:
        return None
    assert run.workdir is not None  # (checked by _run_options)
    try:
        return mw.TensorBoard(Path(run.workdir) / mw.TENSORBOARD)
    except ImportError:
        raise ParameterError(
            "tensorboard",
            "tensorboard: its event files are written by tensorboardX: pip install 'jaxnets[tensorboard]'",
        ) from None


def _restore(
    run: RunOptions, config: dict[str, Any], state: TrainState, steps: int, log: Callable[[str], None]
) -> tuple[TrainState, list[Record], list[dict[str, np.ndarray]], RunDir | None]:
    """The state to start from, the records of the epochs done and the step metrics of a part-done epoch; process
    0 reads the workdir (``RunDir``) and sends the state to the others."""
    if run.workdir is None:
        return state, [], [], None
    rd = RunDir(run.workdir, config, log, run.on_save, _board(run)) if is_main_process() else None
    got: list[Any] = [state, [], []]

    def read() -> TrainState:
        assert rd is not None  # (read runs on process 0 only, which has the RunDir)
        got[:] = rd.restore(state, run.resume, run.overwrite)
        return got[0]

    state = from_process_0(read, state, "restoring the checkpoint")
    start = int(state.step)
    within = start % steps
    carried = got[2] if len(got[2]) == within and jax.process_count() == 1 else []
    path = Path(run.workdir) / ckpt.CHECKPOINT
    if start:
        log(
            f"resumed from {path} at epoch {start // steps}, step {start}"
            if not within
            else f"resumed from {path} in epoch {start // steps + 1} at step {start} "
            f"({within} of its {steps} steps done)"
        )
    return state, got[1], carried, rd


def _best_record(history: list[Record]) -> Record | None:
    """The epoch record of lowest validation loss (the first of equals; None before any finite one)."""
    scored = [r for r in history if "val_loss" in r and math.isfinite(r["val_loss"])]
    return min(scored, key=lambda r: r["val_loss"]) if scored else None


def _stopped_early(plan: _Plan, history: list[Record]) -> bool:
    """Whether ``patience`` epochs have passed without a lower validation loss than the best so far."""
    if plan.patience is None or not history:
        return False
    best = _best_record(history)
    return history[-1]["epoch"] - (best["epoch"] if best is not None else 0) >= plan.patience


def _kept_part(state: TrainState) -> TrainState:
    """What ``keep="best"`` keeps of a state, on the host: all but the optimiser state."""
    return jax.device_get(state.replace(opt_state=None))


def _restore_best(plan: _Plan, rd: RunDir | None, state: TrainState, history: list[Record]) -> TrainState | None:
    """On resume with ``keep="best"``: the best epoch's state, from the checkpoint when it is that epoch's, else
    from the workdir's ``best.msgpack``."""
    best = _best_record(history) if plan.keep == "best" else None
    if best is None:
        return None
    assert rd is not None  # (history is only restored from a workdir)
    return _kept_part(state) if best["step"] == int(state.step) else rd.read_best(_kept_part(state), best["step"])


class _Training:
    """One ``fit`` call's training: epochs of compiled steps over device-resident data, a host check every ~5% of
    an epoch (divergence, a stop signal, the progress bar), and each epoch's end (evaluation, record, run-directory
    duties)."""

    def __init__(
        self,
        plan: _Plan,
        rd: RunDir | None,
        writes: bool,
        stop: safety.StopFlag,
        log: Callable[[str], None],
        progress: bool,
        best: TrainState | None = None,
    ):
        self.plan, self.rd, self.writes, self.stop, self.log, self.progress = plan, rd, writes, stop, log, progress
        self.best = best  # keep="best": the best validation epoch's state so far, on the host (``_kept_part``)
        self.compiled = indexed_train_step(plan.step, plan.shardings)
        self.every = max(1, plan.steps // 20)
        self.bar: Any = None

    def run(self, state: TrainState, history: list[Record], carried: list) -> FitResult:
        plan = self.plan
        if plan.shardings is None:
            data = replicate(jax.tree.map(jnp.asarray, plan.data), None)
        else:  # each device holds its process's data and gathers its slice of every batch from it
            data = parallel.place_local_data(jax.tree.map(np.asarray, plan.data), plan.shardings)
        state = parallel.place_state(state, plan.shardings)  # replicated (or its large arrays split: shard_state)
        start_epoch, first = divmod(int(state.step), plan.steps)
        for epoch in range(start_epoch, plan.epochs):
            if _stopped_early(plan, history):
                self.log(f"early stop after epoch {epoch}: no lower validation loss for {plan.patience} epoch(s)")
                break
            t0 = time.perf_counter()
            step_metrics = list(carried) if epoch == start_epoch else []
            try:
                state = self._steps(state, data, epoch, first, step_metrics, t0, history)
            finally:
                self._close_bar()
            self._end_epoch(state, epoch, step_metrics, first, t0, history)
            first = 0
            if self.stop:
                raise self._interrupted(state, history, [])
        final = self._final(state, history) if plan.val is not None and plan.test is not None else None
        return FitResult(state, history, self.best, final)

    def _batches(self, state: TrainState, epoch: int) -> jax.Array:
        """The epoch's ``(steps, batch)`` example indices: a permutation that is a pure function of the run key."""
        plan = self.plan
        if plan.shardings is None:
            return _shuffle(epoch_key(state, epoch), plan.examples, plan.batch_size)
        key = jnp.asarray(jax.device_get(epoch_key(state, epoch)))  # (the same key on every device of a process)
        key = jax.random.fold_in(key, jax.process_index()) if plan.processes > 1 else key
        return parallel.epoch_indices(_shuffle(key, plan.examples, plan.batch_size // plan.processes), plan.shardings)

    def _steps(
        self,
        state: TrainState,
        data: Batch,
        epoch: int,
        first: int,
        step_metrics: list,
        t0: float,
        history: list[Record],
    ) -> TrainState:
        """Steps ``first..steps-1`` of ``epoch``; their metrics appended to ``step_metrics``."""
        plan = self.plan
        batches = self._batches(state, epoch)
        if self.progress and plan.steps >= 20:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=plan.steps, initial=first, desc=f"epoch {epoch + 1}/{plan.epochs}", unit="step", leave=False
            )
        for i in range(first, plan.steps):
            state, m = self.compiled(state, data, batches)
            step_metrics.append(m)
            if plan.shardings is not None and i - first >= parallel.IN_FLIGHT:
                jax.block_until_ready(step_metrics[-parallel.IN_FLIGHT - 1])  # see parallel.IN_FLIGHT
            if self.stop or (i + 1) % self.every == 0 or i + 1 == plan.steps:
                self._check(state, m, epoch * plan.steps + i + 1, (i + 1 - first) / (time.perf_counter() - t0))
                if self.bar is not None:
                    self.bar.update(i + 1 - self.bar.n)
                if self.stop and i + 1 < plan.steps:  # (at an epoch's end, the epoch is evaluated and saved first)
                    raise self._interrupted(state, history, step_metrics)
        return state

    def _check(self, state: TrainState, m: dict[str, jax.Array], want: int, steps_per_second: float) -> None:
        """The only per-step host read, every ~5% of the epoch: the metrics, and the step count, which stalls at a
        step with a non-finite metric (the guard does not commit it)."""
        done, m = jax.device_get((state.step, m))
        if int(done) != want:
            name = next((k for k, v in m.items() if not np.all(np.isfinite(v))), "loss")
            raise self._diverged(state, int(done), metric=name, value=float(np.asarray(m[name]).ravel()[0]))
        if self.bar is not None:
            shown = {k: f"{float(v):.4f}" for k, v in m.items() if "loss" in k and np.ndim(v) == 0}
            self.bar.set_postfix(**shown, img_s=f"{steps_per_second * self.plan.batch_size:.0f}")

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _end_epoch(
        self, state: TrainState, epoch: int, step_metrics: list, first: int, t0: float, history: list[Record]
    ) -> None:
        """Check the state, evaluate, append the epoch's record to ``history``, save, log."""
        plan = self.plan
        if not safety.all_finite((state.params, state.model_state)):  # a gradient overflowed with finite metrics
            raise self._diverged(state, int(state.step), epoch=epoch + 1)
        train = jax.device_get(jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *step_metrics))
        train_seconds = time.perf_counter() - t0
        record = {"epoch": epoch + 1, "step": int(state.step), **{f"train_{k}": float(v) for k, v in train.items()}}
        scored = ("val", plan.val) if plan.val is not None else ("test", plan.test)  # (val: test once, at the end)
        if scored[1] is not None:
            metrics = evaluate_state(plan.step, state, *scored[1], plan.eval_batch_size, plan.shardings)
            record.update({f"{scored[0]}_{k}": v for k, v in metrics.items()})
        if plan.keep == "best" and _best_record([*history, record]) is record:
            self.best = _kept_part(state)
        seconds = time.perf_counter() - t0
        rate = (plan.steps - first) * plan.batch_size / train_seconds  # (a resumed part-done epoch: steps run here)
        elapsed = sum(r["seconds"] for r in history) + seconds
        record.update(seconds=round(seconds, 3), images_per_second=round(rate, 1), elapsed=round(elapsed, 3))
        history.append(record)
        report = plan.epochs <= 50 or (epoch + 1) % math.ceil(plan.epochs / 20) == 0 or epoch + 1 == plan.epochs
        whole = parallel.gathered(state, plan.shardings) if self.writes else state  # (all processes take part)
        if self.rd is not None:
            self.rd.end_epoch(whole, history, plot=report, best=self.best)
        if report:
            self.log(_line(record, plan.epochs))

    def _final(self, state: TrainState, history: list[Record]) -> Record:
        """With a validation split: the test metrics of the kept parameters (the best epoch's or the last),
        evaluated once; recorded after the epochs' records (not in the checkpoint: a resumed run makes it again)."""
        plan = self.plan
        assert plan.test is not None
        best = _best_record(history) if self.best is not None else None
        kept = state if self.best is None else parallel.place_state(self.best, plan.shardings)
        test = evaluate_state(plan.step, kept, *plan.test, plan.eval_batch_size, plan.shardings)
        record = {
            "epoch": history[-1]["epoch"],
            "step": int(state.step),
            "final": True,
            "kept": plan.keep,
            "kept_epoch": (best or history[-1])["epoch"],
            **{f"test_{k}": v for k, v in test.items()},
        }
        if self.rd is not None:
            self.rd.finish(state, record, self.best)
        self.log(f"kept the parameters of epoch {record['kept_epoch']} ({plan.keep}): {_split(record, 'test')}")
        return record

    def _diverged(
        self,
        state: TrainState,
        done: int,
        *,
        metric: str | None = None,
        value: float | None = None,
        epoch: int | None = None,
    ) -> safety.TrainingDiverged:
        """The error for a step refused (``metric`` non-finite: the step after ``done``) or parameters gone
        non-finite by step ``done``."""
        saved = self.rd.saved if self.rd is not None else None
        kept = f"the last good checkpoint, {saved}, is kept" if saved else "no checkpoint of this run was written"
        if metric is not None:
            epoch, within = divmod(done, self.plan.steps)
            what = "the loss" if metric == "loss" else f"the metric {metric}"
            return safety.TrainingDiverged(
                f"{what} became {value} at step {done + 1} (epoch {epoch + 1}, step {within + 1} of "
                f"{self.plan.steps}): training stopped there; {kept}; try a lower learning rate",
                step=done + 1,
                epoch=epoch + 1,
                state=state,
            )
        assert epoch is not None  # (given when the parameters went non-finite)
        return safety.TrainingDiverged(
            f"the parameters became NaN or infinite in epoch {epoch} (by step {done}; a gradient overflowed): "
            f"training stopped; {kept}; try a lower learning rate",
            step=done,
            epoch=epoch,
            state=state,
        )

    def _interrupted(
        self, state: TrainState, history: list[Record], step_metrics: list
    ) -> safety.TrainingInterrupted | safety.TrainingDiverged:
        """After a stop signal: save the state (mid-epoch: with the epoch's step metrics so far; at an epoch's end
        it is saved already) and make the exception that reports it."""
        done = int(state.step)
        epoch, within = divmod(done, self.plan.steps)
        signum = self.stop.signum or signal.SIGINT
        how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        where = f"{how} at epoch {epoch + 1} step {done}" if within else f"{how} after epoch {epoch}"
        whole = parallel.gathered(state, self.plan.shardings) if self.writes and within else state
        if self.rd is not None and within:
            if not safety.all_finite((state.params, state.model_state)):
                return self._diverged(state, done, epoch=epoch + 1)
            self.rd.save(
                whole, history, f"the checkpoint of step {done} to {self.rd.checkpoint}", step_metrics, self.best
            )
        said = (
            f"{where}; checkpoint saved in {self.rd.path}"
            if self.rd is not None
            else f"{where}; no workdir, so nothing was saved (the state is in this exception's .state)"
        )
        return safety.TrainingInterrupted(
            said,
            step=done,
            epoch=epoch + 1 if within else epoch,
            state=state,
            saved=self.rd.checkpoint if self.rd is not None else None,
            signum=signum,
        )


def _split(r: dict[str, Any], name: str) -> str:
    """A record's metrics of one split (train, val, test), the loss first: 'test loss 0.1234 acc 97.50%'."""

    def fmt(metric: str, value: float) -> str:
        return f"acc {100 * value:.2f}%" if metric == "accuracy" else f"{metric} {value:.4f}"

    keys = sorted((k for k in r if k.startswith(f"{name}_")), key=lambda k: k != f"{name}_loss")
    return " ".join([name] + [fmt(k.removeprefix(f"{name}_"), r[k]) for k in keys])


def _line(r: dict[str, Any], epochs: int) -> str:
    scored = "".join(f"  {_split(r, s)}" for s in ("val", "test") if any(k.startswith(f"{s}_") for k in r))
    return (
        f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  {_split(r, 'train')}{scored}  {r['seconds']:.1f} s  "
        f"{r['images_per_second']:.0f} img/s"
    )
