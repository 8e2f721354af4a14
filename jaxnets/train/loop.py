"""``fit``: train any jaxnets model on in-memory arrays, with per-epoch evaluation, checkpoints and metrics."""

from __future__ import annotations

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
from jaxnets.train.parallel import Shardings, data_parallel, replicate
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
    if not path.exists():
        if resume:
            log(f"no checkpoint in {path.parent}: starting afresh")
        return state
    if not resume:
        if overwrite:
            return state
        raise ckpt.CheckpointError(f"{path.parent} already holds a checkpoint: pass --resume to continue it, "
                                   "--overwrite to start afresh over it, or another --workdir")
    diff = _mismatch(ckpt.read_config(path), config)
    if diff:
        raise ckpt.CheckpointError(f"the checkpoint in {path.parent} was made with another config ({diff}); "
                                   "resume with the same settings or choose another --workdir")
    state, _ = ckpt.load_checkpoint(path, state)
    return state


def fit(model: Model, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray | None = None,
        test_y: np.ndarray | None = None, *, optimizer: optax.GradientTransformation, epochs: int = 10,
        batch_size: int = 128, seed: int = 0, workdir: str | Path | None = None, resume: bool = False,
        overwrite: bool = False, config: dict[str, Any] | None = None, eval_batch_size: int = 1000,
        shardings: Shardings | str | None = "auto", progress: bool = True,
        log: Callable[[str], None] = print) -> FitResult:
    """Train ``model`` on (``train_x``, ``train_y``) for ``epochs`` epochs of shuffled fixed-size batches.

    Everything is reproducible from ``seed``. With a ``workdir``, each epoch writes ``checkpoint.msgpack`` (state and
    ``config``), ``metrics.jsonl`` and ``curves.png``; ``resume=True`` continues from the checkpoint there and ends
    with the same parameters as an uninterrupted run. With several devices, batches are split over them.
    """
    n = len(train_x)
    if n == 0 or len(train_y) != n:
        raise ValueError(f"need as many labels as training examples; got {n} examples and {len(train_y)} labels")
    if shardings == "auto":
        shardings = data_parallel()
    if batch_size > n:
        log(f"batch size {batch_size} > {n} training examples: using {n}")
        batch_size = n
    if shardings is not None and batch_size % shardings.num_devices:
        raise ValueError(f"batch size {batch_size} must be a multiple of the {shardings.num_devices} devices")
    steps = n // batch_size
    log(f"{n} examples, batch {batch_size} -> {steps} iterations per epoch"
        + (f", last partial batch of {n - steps * batch_size} dropped" if n % batch_size else ""))
    if shardings is not None:
        log(f"data parallel over {shardings.num_devices} devices ({batch_size // shardings.num_devices} per device)")
    state = create_train_state(model, optimizer, jax.random.PRNGKey(seed))
    config = {**(config or {}), "model": model.name, "input_shape": list(model.input_shape),
              "parameters": sum(int(np.size(p)) for p in jax.tree.leaves(state.params)),
              "batch_size": batch_size, "seed": seed, "train_examples": n, "epochs": epochs}
    ckpt_path = metrics_path = None
    history: list[dict[str, Any]] = []
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        ckpt_path, metrics_path = workdir / ckpt.CHECKPOINT, workdir / mw.METRICS
        state = _restore(ckpt_path, state, config, resume, overwrite, log)
    start_epoch = int(state.step) // steps
    if metrics_path is not None:
        history = [r for r in mw.read_metrics(metrics_path) if r["epoch"] <= start_epoch] if start_epoch else []
        mw.write_metrics(metrics_path, history)
    if start_epoch:
        log(f"resumed from {ckpt_path} at epoch {start_epoch}, step {int(state.step)}")

    state = replicate(state, shardings)
    data_x, data_y = replicate((jnp.asarray(train_x), jnp.asarray(train_y, jnp.int32)), shardings)
    train_step = make_indexed_train_step(model, optimizer, shardings)
    shuffle = jax.jit(epoch_batches, static_argnums=(1, 2))
    elapsed = sum(r["seconds"] for r in history)
    every = max(1, steps // 20)
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        batches = shuffle(epoch_key(state, epoch), n, batch_size)
        bar = None
        if progress and steps >= 20:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="step", leave=False)
        step_metrics = []
        for i in range(steps):
            state, m = train_step(state, data_x, data_y, batches)
            step_metrics.append(m)
            if bar is not None and ((i + 1) % every == 0 or i + 1 == steps):
                loss = float(m["loss"])  # the only per-step host read, every ~5% of the epoch
                bar.update(i + 1 - bar.n)
                bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{(i + 1) * batch_size / (time.perf_counter() - t0):.0f}")
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
        record.update(seconds=round(seconds, 3), images_per_second=round(steps * batch_size / train_seconds, 1),
                      elapsed=round(elapsed, 3))
        history.append(record)
        report = epochs <= 50 or (epoch + 1) % math.ceil(epochs / 20) == 0 or epoch + 1 == epochs
        if workdir is not None:
            ckpt.save_checkpoint(ckpt_path, state, config)  # checkpoint first: metrics never run ahead of it
            mw.append_metrics(metrics_path, record)
            if report:
                mw.plot_curves(history, workdir / mw.CURVES)
        if report:
            log(_line(record, epochs))
    return FitResult(state, history)


def _line(r: dict[str, Any], epochs: int) -> str:
    def fmt(metric: str, value: float) -> str:
        return f"acc {100 * value:.2f}%" if metric == "accuracy" else f"{metric} {value:.4f}"

    def split(name: str) -> str:
        return " ".join([name] + [fmt(k.removeprefix(f"{name}_"), v) for k, v in r.items() if k.startswith(f"{name}_")])

    test = f"  {split('test')}" if "test_loss" in r else ""
    return (f"epoch {r['epoch']:>{len(str(epochs))}}/{epochs}  {split('train')}{test}  {r['seconds']:.1f} s  "
            f"{r['images_per_second']:.0f} img/s")
