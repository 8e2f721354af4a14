"""``fit``: train any jaxnets model on in-memory arrays, with per-epoch evaluation, checkpoints and metrics."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets.data.batching import epoch_batches
from jaxnets.models.base import Model
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import metrics as mw
from jaxnets.train import parallel, safety
from jaxnets.train.distributed import from_process_0
from jaxnets.train.parallel import Shardings, data_parallel, is_main_process, replicate
from jaxnets.train.state import TrainState, create_train_state, epoch_key
from jaxnets.train.step import evaluate, make_indexed_train_step

# Config entries that may change between a run and its resumption.
RESUMABLE = ("epochs", "workdir", "resume", "overwrite", "manual_dir", "data_dir")


@dataclass
class FitResult:
    """The final training state and one metrics record per epoch trained (including resumed-from epochs)."""

    state: TrainState
    history: list[dict[str, Any]] = field(default_factory=list)


def _mismatch(saved: dict[str, Any], now: dict[str, Any]) -> str:
    keys = sorted((set(saved) | set(now)) - set(RESUMABLE))
    return ", ".join(f"{k}={saved.get(k)!r} there but {now.get(k)!r} here" for k in keys if saved.get(k) != now.get(k))


def _restore(path: Path, state: TrainState, config: dict[str, Any], resume: bool, overwrite: bool,
             log: Callable[[str], None]) -> TrainState:
    """The state to start from: the checkpoint at ``path`` when resuming (after checking its config), else fresh."""
    if not _will_resume(path, resume, overwrite):
        return state
    diff = _mismatch(ckpt.read_config(path), config)
    if diff:
        raise ckpt.CheckpointError(f"the checkpoint in {path.parent} was made with another config ({diff}); "
                                   "resume with the same settings or choose another --workdir")
    state, _ = ckpt.load_checkpoint(path, state)
    return state


def _will_resume(path: Path, resume: bool, overwrite: bool) -> bool:
    """Whether to load the checkpoint at ``path``; ``CheckpointError`` if it does not fit ``resume``/``overwrite``."""
    if not path.exists():
        if resume:
            raise ckpt.CheckpointError(f"--resume: {path.parent} holds no checkpoint ({path.name}): check --workdir, "
                                       "or drop --resume to start a new run there")
        return False
    if not resume:
        if overwrite:
            return False
        raise ckpt.CheckpointError(f"{path.parent} already holds a checkpoint: pass --resume to continue it, "
                                   "--overwrite to start afresh over it, or another --workdir")
    return True


def check_workdir(workdir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """What ``fit`` would refuse about ``workdir``, checked before any data is loaded and without creating anything:
    ``safety.WorkdirError`` if it cannot be written, ``safety.WorkdirBusy`` if another run holds it;
    ``CheckpointError`` if its checkpoint is missing (``resume``), in the way (neither ``resume`` nor ``overwrite``)
    or corrupt. (Whether the checkpoint's config matches is checked by ``fit``.)"""
    safety.check_usable(workdir)
    path = Path(workdir) / ckpt.CHECKPOINT
    if _will_resume(path, resume, overwrite):
        ckpt.read_config(path)


@safety.scoped  # the workdir lock and the Ctrl-C handler taken inside are released when fit returns or raises
def fit(model: Model, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray | None = None,
        test_y: np.ndarray | None = None, *, optimizer: optax.GradientTransformation, epochs: int = 10,
        batch_size: int = 128, seed: int = 0, workdir: str | Path | None = None, resume: bool = False,
        overwrite: bool = False, config: dict[str, Any] | None = None, eval_batch_size: int = 1000,
        shardings: Shardings | str | None = "auto", progress: bool = True,
        log: Callable[[str], None] = print) -> FitResult:
    """Train ``model`` on (``train_x``, ``train_y``) for ``epochs`` epochs of shuffled fixed-size batches.

    Everything is reproducible from ``seed``. With a ``workdir``, each epoch writes ``checkpoint.msgpack`` (state and
    ``config``), ``metrics.jsonl`` and ``curves.png``; ``resume=True`` continues from the checkpoint there and ends
    with the same parameters as an uninterrupted run.

    With several devices (``shardings``: "auto" = all of them, or ``parallel.data_parallel(devices)``), each batch
    of ``batch_size`` examples (the global batch) is split over them, parameters and optimiser state replicated
    (``data_parallel(shard_state=True)``: their large arrays split over the devices too); the metrics are means over
    the global batch. With several processes (``jax.distributed``), the arrays given are this
    process's shard of the data (``distributed.shard``): each process shuffles its own shard and supplies
    ``batch_size / processes`` examples of each global batch; only process 0 logs and writes to ``workdir``.

    Safety: bad arguments raise ``ValueError`` before anything is compiled. The workdir is locked for the run
    (``safety.WorkdirBusy`` for a second one). A step whose loss is NaN or infinite is not committed and ``fit``
    raises ``safety.TrainingDiverged`` within ~5% of an epoch, the last good checkpoint kept. Ctrl-C (SIGINT) ends
    the current step, saves a checkpoint of it, and raises ``safety.TrainingInterrupted``; resuming from a mid-epoch
    checkpoint continues at that step, still ending with the uninterrupted run's parameters.
    """
    n = len(train_x)
    if n == 0 or len(train_y) != n:
        raise ValueError(f"need as many labels as training examples; got {n} examples and {len(train_y)} labels")
    _check_arguments(model, train_x, train_y, test_x, test_y, epochs, batch_size)
    if shardings == "auto":
        shardings = data_parallel()
    processes = jax.process_count()
    if not is_main_process():
        log, progress = (lambda s: None), False
    if processes > 1 and shardings is None:
        raise ValueError(f"{processes} processes train together only over a device mesh: pass shardings='auto'")
    if processes > 1:  # every process takes the same number of steps, over its first n examples
        n = parallel.global_min(n)
        train_x, train_y = train_x[:n], train_y[:n]
    if batch_size > n * processes:
        raise ValueError(f"batch size {batch_size} is larger than the {n * processes} training examples: use a batch "
                         f"size of at most {n * processes}")
    if shardings is not None and batch_size % shardings.num_devices:
        d = shardings.num_devices
        raise ValueError(f"batch size {batch_size} does not split evenly over the {d} devices: use a multiple of "
                         f"{d}, e.g. {max(d, batch_size // d * d)}")
    local_batch = batch_size // processes
    steps = n // local_batch
    dropped = (n - steps * local_batch) * processes
    log(f"{n * processes} examples, batch {batch_size} -> {steps} iterations per epoch"
        + (f", last partial batch of {dropped} dropped" if dropped else ""))
    if shardings is not None:
        log(f"data parallel over {shardings.num_devices} devices ({batch_size // shardings.num_devices} per device)"
            + (f", {processes} processes" if processes > 1 else ""))
    state = create_train_state(model, optimizer, jax.random.PRNGKey(seed))
    config = {**(config or {}), "model": model.name, "input_shape": list(model.input_shape),
              "parameters": sum(int(np.size(p)) for p in jax.tree.leaves(state.params)),
              "batch_size": batch_size, "seed": seed, "train_examples": n * processes, "epochs": epochs}
    ckpt_path = metrics_path = None
    history: list[dict[str, Any]] = []
    if workdir is not None:
        workdir = Path(workdir)
        if is_main_process():  # only process 0 reads and writes the workdir; it sends the state to the others
            safety.hold(safety.lock_workdir(workdir))  # creates it; WorkdirError/WorkdirBusy if unusable
        ckpt_path, metrics_path = workdir / ckpt.CHECKPOINT, workdir / mw.METRICS
        template = state
        state = from_process_0(lambda: _restore(ckpt_path, template, config, resume, overwrite, log), template,
                               "restoring the checkpoint")
    start_step = int(state.step)
    start_epoch, start_within = divmod(start_step, steps)  # a checkpoint saved on Ctrl-C may be mid-epoch
    # (the step metrics of a part-done epoch come back from its checkpoint, so that epoch's means are the same)
    carried = _carried_metrics(ckpt_path, start_within) if start_within and processes == 1 else []
    if metrics_path is not None and is_main_process():
        history = [r for r in mw.read_metrics(metrics_path) if r["epoch"] <= start_epoch] if start_epoch else []
        mw.write_metrics(metrics_path, history)
    if start_step:
        log(f"resumed from {ckpt_path} at epoch {start_epoch}, step {start_step}" if not start_within else
            f"resumed from {ckpt_path} in epoch {start_epoch + 1} at step {start_step} ({start_within} of its "
            f"{steps} steps done)")
    saved = f"{ckpt_path} (step {start_step})" if start_step else None  # this run's last good checkpoint

    state = parallel.place_state(state, shardings)  # replicated (or its large arrays split: shard_state)
    if shardings is None:
        data_x, data_y = replicate((jnp.asarray(train_x), jnp.asarray(train_y, _label_dtype(train_y))), None)
    else:  # each device holds its process's data and gathers its slice of every batch from it
        data_x, data_y = parallel.place_local_data((np.asarray(train_x), np.asarray(train_y, _label_dtype(train_y))),
                                                   shardings)
    train_step = make_indexed_train_step(model, optimizer, shardings)
    shuffle = jax.jit(epoch_batches, static_argnums=(1, 2))
    elapsed = sum(r["seconds"] for r in history)
    every = max(1, steps // 20)
    stop = safety.hold(safety.sigint_stops(enabled=processes == 1))  # Ctrl-C: finish the step, save, stop
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        if shardings is None:
            batches = shuffle(epoch_key(state, epoch), n, batch_size)
        else:  # this process's permutation of its examples (the same key on every device of the process)
            key = jnp.asarray(jax.device_get(epoch_key(state, epoch)))
            key = jax.random.fold_in(key, jax.process_index()) if processes > 1 else key
            batches = parallel.epoch_indices(shuffle(key, n, local_batch), shardings)
        first = start_within if epoch == start_epoch else 0
        bar = None
        if progress and steps >= 20:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, initial=first, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False)
        step_metrics = carried if epoch == start_epoch else []
        for i in range(first, steps):
            state, m = train_step(state, data_x, data_y, batches)
            step_metrics.append(m)
            if shardings is not None and i - first >= parallel.IN_FLIGHT:
                jax.block_until_ready(step_metrics[-parallel.IN_FLIGHT - 1])  # see parallel.IN_FLIGHT
            if stop or (i + 1) % every == 0 or i + 1 == steps:
                # The only per-step host read, every ~5% of the epoch: the loss, and the step count, which stalls
                # at a step whose loss is not finite (the step does not commit it).
                done, loss = jax.device_get((state.step, m["loss"]))
                done = int(done)
                if done != epoch * steps + i + 1:
                    _close(bar)
                    raise _diverged(state, steps, saved, done=done, loss=float(loss))
                if bar is not None:
                    bar.update(i + 1 - bar.n)
                    bar.set_postfix(loss=f"{float(loss):.4f}",
                                    img_s=f"{(i + 1 - first) * batch_size / (time.perf_counter() - t0):.0f}")
                if stop and i + 1 < steps:  # (at an epoch's end, the epoch is evaluated and saved first)
                    _close(bar)
                    raise _interrupted(state, steps, saved, done, step_metrics, ckpt_path, config, shardings)
        if not safety.all_finite((state.params, state.model_state)):  # a gradient overflowed with a finite loss
            _close(bar)
            raise _diverged(state, steps, saved, done=int(state.step), epoch=epoch + 1)
        train = jax.device_get(jax.tree.map(lambda *xs: jnp.mean(jnp.stack(xs)), *step_metrics))
        train_seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        record = {"epoch": epoch + 1, "step": int(state.step), **{f"train_{k}": float(v) for k, v in train.items()}}
        if test_x is not None:
            test = evaluate(model, state.params, state.model_state, test_x, test_y, eval_batch_size, shardings)
            record.update({f"test_{k}": v for k, v in test.items()})
        seconds = time.perf_counter() - t0
        elapsed += seconds
        rate = (steps - first) * batch_size / train_seconds  # (a resumed part-done epoch: the steps trained here)
        record.update(seconds=round(seconds, 3), images_per_second=round(rate, 1), elapsed=round(elapsed, 3))
        history.append(record)
        report = epochs <= 50 or (epoch + 1) % math.ceil(epochs / 20) == 0 or epoch + 1 == epochs
        whole = parallel.gathered(state, shardings) if workdir is not None else state  # (all processes take part)
        if workdir is not None and is_main_process():
            with _writing(f"the checkpoint of epoch {epoch + 1} to {ckpt_path}", saved):
                ckpt.save_checkpoint(ckpt_path, whole, config)  # checkpoint first: metrics never run ahead of it
            saved = f"{ckpt_path} (epoch {epoch + 1}, step {record['step']})"
            with _writing(str(metrics_path), saved):
                mw.append_metrics(metrics_path, record)
                if report:
                    mw.plot_curves(history, workdir / mw.CURVES)
        if report:
            log(_line(record, epochs))
        if stop:
            raise _interrupted(state, steps, saved, record["step"], [], ckpt_path, config, shardings)
    return FitResult(state, history)


def _check_arguments(model: Model, train_x, train_y, test_x, test_y, epochs: int, batch_size: int) -> None:
    """``ValueError`` for arguments ``fit`` cannot train on, before anything is compiled."""
    if not (isinstance(epochs, int | np.integer) and epochs >= 1) or not (
            isinstance(batch_size, int | np.integer) and batch_size >= 1):
        raise ValueError(f"epochs and batch size must be whole numbers >= 1; got {epochs!r}, {batch_size!r}")
    for name, x in (("train_x", train_x), ("test_x", test_x)):
        if x is not None and tuple(np.shape(x)[1:]) != tuple(model.input_shape):
            raise ValueError(f"{model.name} expects examples of shape {tuple(model.input_shape)}; {name} holds "
                             f"examples of shape {tuple(np.shape(x)[1:])}")
    if test_x is not None and (test_y is None or len(test_y) != len(test_x)):
        raise ValueError(f"need as many test labels as test examples; got {len(test_x)} examples and "
                         f"{None if test_y is None else len(test_y)} labels")
    if model.objective is None and model.head != "linear":  # a classifier: integer class indices
        for name, y in (("train_y", train_y), ("test_y", test_y)):
            dtype = np.asarray(y).dtype if y is not None else np.dtype(int)
            if not (np.issubdtype(dtype, np.integer) or dtype == np.bool_):
                raise ValueError(f"{model.name}: {name} must hold integer class indices; got {dtype}: pass "
                                 f"{name}.astype('int32')")


def _label_dtype(y) -> np.dtype:
    """int32 for class indices and tokens, float32 for regression targets (a 'linear' head)."""
    return np.dtype(np.float32 if np.issubdtype(np.asarray(y).dtype, np.floating) else np.int32)


def _carried_metrics(path: Path, within: int) -> list[dict[str, np.ndarray]]:
    """The step metrics of a part-done epoch, saved with its checkpoint on Ctrl-C (empty if absent)."""
    saved = ckpt.read_extra(path).get("epoch_metrics", {})
    if not saved or any(len(v["values"]) != within for v in saved.values()):
        return []
    return [{k: np.asarray(v["values"][j], v["dtype"]) for k, v in saved.items()} for j in range(within)]


def _close(bar) -> None:
    if bar is not None:
        bar.close()


@contextlib.contextmanager
def _writing(what: str, saved: str | None):
    """Turn an ``OSError`` while writing ``what`` (a full disk) into one line that says what is still safe."""
    try:
        yield
    except OSError as e:
        kept = f"the last good checkpoint, {saved}, is intact" if saved else "no checkpoint of this run was written"
        again = "then continue with --resume" if saved else "then run again"
        raise safety.CheckpointWriteError(f"could not write {what} ({e.strerror or e}): {kept}; free some space "
                                          f"(or fix the folder), {again}") from e


def _diverged(state: TrainState, steps: int, saved: str | None, *, done: int, loss: float | None = None,
              epoch: int | None = None) -> safety.TrainingDiverged:
    """The error for a loss (``loss`` given: the step after ``done`` was refused) or parameters gone non-finite."""
    kept = f"the last good checkpoint, {saved}, is kept" if saved else "no checkpoint of this run was written"
    if loss is not None:
        epoch, within = divmod(done, steps)
        return safety.TrainingDiverged(
            f"the loss became {loss} at step {done + 1} (epoch {epoch + 1}, step {within + 1} of {steps}): training "
            f"stopped there; {kept}; try a lower learning rate", step=done + 1, epoch=epoch + 1, state=state)
    return safety.TrainingDiverged(
        f"the parameters became NaN or infinite in epoch {epoch} (by step {done}; a gradient overflowed): training "
        f"stopped; {kept}; try a lower learning rate", step=done, epoch=epoch, state=state)


def _interrupted(state: TrainState, steps: int, saved: str | None, done: int, step_metrics: list,
                 ckpt_path: Path | None, config: dict[str, Any], shardings: Shardings | None
                 ) -> safety.TrainingInterrupted:
    """After Ctrl-C: save the state of step ``done`` (mid-epoch: with the epoch's step metrics so far) and make the
    exception that reports it."""
    epoch, within = divmod(done, steps)
    where = f"interrupted at epoch {epoch + 1} step {done}" if within else f"interrupted after epoch {epoch}"
    path = None
    if ckpt_path is not None and is_main_process():
        if within:  # (at an epoch's end its checkpoint is already saved)
            if not safety.all_finite((state.params, state.model_state)):
                raise _diverged(state, steps, saved, done=done, epoch=epoch + 1)
            host = jax.device_get(step_metrics)
            extra = {"epoch_metrics": {k: {"dtype": str(np.asarray(host[0][k]).dtype),
                                           "values": [float(m[k]) for m in host]} for k in host[0]}}
            with _writing(f"the checkpoint of step {done} to {ckpt_path}", saved):
                ckpt.save_checkpoint(ckpt_path, parallel.gathered(state, shardings), config, extra)
        path = ckpt_path
    said = (f"{where}; checkpoint saved in {ckpt_path.parent}" if path is not None
            else f"{where}; no workdir, so nothing was saved (the state is in this exception's .state)")
    return safety.TrainingInterrupted(said, step=done, epoch=epoch + 1 if within else epoch, state=state, saved=path)


def _line(r: dict[str, Any], epochs: int) -> str:
    def fmt(metric: str, value: float) -> str:
        return f"acc {100 * value:.2f}%" if metric == "accuracy" else f"{metric} {value:.4f}"

    def split(name: str) -> str:  # the loss first, then the other metrics
        keys = sorted((k for k in r if k.startswith(f"{name}_")), key=lambda k: k != f"{name}_loss")
        return " ".join([name] + [fmt(k.removeprefix(f"{name}_"), r[k]) for k in keys])

    test = f"  {split('test')}" if "test_loss" in r else ""
    return (f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  {split('train')}{test}  {r['seconds']:.1f} s  "
            f"{r['images_per_second']:.0f} img/s")
