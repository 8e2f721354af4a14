"""A run's folder: the lock, the checkpoint (which carries the run's record of epochs), metrics.jsonl rebuilt from that
record on resume, curves.png, and (``keep="best"``) best.msgpack, the best validation epoch's state. Only process 0
writes it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxnets import viz
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import metrics as mw
from jaxnets.train import safety
from jaxnets.train.state import TrainState

# Config entries that may change between a run and its resumption.
RESUMABLE = ("epochs", "workdir", "resume", "overwrite", "manual_dir", "data_dir", "devices", "tensorboard")
CONSTANT_SCHEDULES = (None, "constant")  # the learning-rate schedules that do not depend on the number of epochs
BEST = "best.msgpack"  # keep="best": the best validation epoch's state without its optimiser state (a checkpoint)

Record = dict[str, Any]


class RunDir:
    """Process 0's view of the workdir of a run with ``config``: ``saved`` names its last good checkpoint."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        config: dict[str, Any],
        log: Callable[[str], None],
        on_save: Callable[[TrainState], None] | None = None,
        board: mw.TensorBoard | None = None,
    ):
        self.path = Path(workdir)
        self.checkpoint, self.metrics = self.path / ckpt.CHECKPOINT, self.path / mw.METRICS
        self.config, self.log, self.on_save, self.board = config, log, on_save, board
        self.saved: str | None = None
        self.best = self.path / BEST
        self.best_step: int | None = None  # the step of the state best.msgpack holds (written or read by this run)

    def restore(
        self, template: TrainState, resume: bool, overwrite: bool
    ) -> tuple[TrainState, list[Record], list[dict[str, np.ndarray]]]:
        """Lock the workdir (held until the enclosing ``safety.scoped`` call ends); then the state to start from
        (the checkpoint's when resuming, else ``template``), the records of the epochs it completed (metrics.jsonl
        and the TensorBoard files made to agree with them) and the step metrics of its part-done epoch."""
        safety.hold(safety.lock_workdir(self.path))  # creates it; WorkdirError/WorkdirBusy if unusable
        state, history, carried = template, [], {}
        if will_resume(self.checkpoint, resume, overwrite):
            self._check_config(ckpt.read_config(self.checkpoint))
            state, _ = ckpt.load_checkpoint(self.checkpoint, template)
            extra = ckpt.read_extra(self.checkpoint)
            history = self._recover_history(extra.get("history"), int(state.step))
            carried = extra.get("epoch_metrics", {})
            self.saved = f"{self.checkpoint} (step {int(state.step)})"
        else:
            mw.write_metrics(self.metrics, [])
        if self.board is not None:
            self.board.rewrite(history)
        return state, history, _step_metrics(carried)

    def _check_config(self, saved: dict[str, Any]) -> None:
        """``CheckpointError`` if the checkpoint was made with another config, or for another number of epochs
        under a schedule that depends on it."""
        now = self.config
        diff = ckpt.config_difference(saved, now, RESUMABLE)
        if diff:
            raise ckpt.CheckpointError(
                f"the checkpoint in {self.path} was made with another config ({diff}); "
                "resume with the same settings or choose another --workdir"
            )
        schedule = now.get("schedule")
        if saved.get("epochs") != now.get("epochs") and schedule not in CONSTANT_SCHEDULES:
            raise ckpt.CheckpointError(
                f"the checkpoint in {self.path} is of a run of {saved.get('epochs')} epochs whose {schedule} "
                f"schedule spans them all: it resumes only with epochs={saved.get('epochs')} (a constant schedule "
                "may change its number of epochs)"
            )

    def _recover_history(self, saved: list[Record] | None, step: int) -> list[Record]:
        """The records of the epochs the checkpoint completed, from the checkpoint itself; metrics.jsonl is made to
        hold exactly them. A line lost with a killed run is rewritten; a file that disagrees otherwise (edited,
        truncated, deleted) is kept aside, with a warning. (Checkpoints made before records travelled in them: the
        file's records up to the checkpoint.)"""
        if saved is None:
            history = [
                r for r in mw.read_metrics(self.metrics) if r.get("step", step + 1) <= step and not r.get("final")
            ]
            mw.write_metrics(self.metrics, history)
            return history
        want = "".join(json.dumps(r) + "\n" for r in saved)
        whole = self.metrics.read_text(errors="replace") if self.metrics.exists() else None
        text = None if whole is None else _without_final(whole)  # (a finished run's test record: made again)
        if text == want:
            if whole != text:
                mw.write_metrics(self.metrics, saved)
            return saved
        if text is not None and want.startswith(text) and text.count("\n") >= len(saved) - 1:
            self.log(
                f"{self.metrics}: the record of epoch {saved[-1]['epoch']} was lost when the run stopped; "
                "rewritten from the checkpoint"
            )
        elif text is None:
            self.log(
                f"warning: {self.metrics} was missing; rewritten from the checkpoint's record of {len(saved)} epoch(s)"
            )
        else:
            aside = _free_name(self.metrics.with_name(self.metrics.name + ".damaged"))
            os.replace(self.metrics, aside)
            self.log(
                f"warning: {self.metrics} did not match the checkpoint's record of {len(saved)} epoch(s) "
                f"(truncated or edited?): kept it as {aside} and rewrote it from the checkpoint"
            )
        mw.write_metrics(self.metrics, saved)
        if saved:
            viz.plot_curves(saved, self.path / mw.CURVES)
        return saved

    def read_best(self, template: TrainState, step: int) -> TrainState:
        """The state in best.msgpack (of ``template``'s structure), which must be that of ``step``;
        ``CheckpointError`` if it is missing, corrupt or of another step."""
        if not self.best.exists():
            raise ckpt.CheckpointError(
                f"{self.best} is missing: it holds the parameters of the best epoch (step {step}), which keep best "
                "needs to resume; resume with --overwrite to start afresh"
            )
        best, _ = ckpt.load_checkpoint(self.best, template)
        if int(best.step) != step:
            raise ckpt.CheckpointError(
                f"{self.best} holds the state of step {int(best.step)}, but the checkpoint's best validation loss "
                f"is that of step {step}: resume with --overwrite to start afresh"
            )
        self.best_step = step
        return best

    def save(
        self,
        state: TrainState,
        history: list[Record],
        what: str,
        step_metrics: list[dict[str, Any]] | None = None,
        best: TrainState | None = None,
    ) -> None:
        """Checkpoint ``state`` with the records of the epochs done (and, mid-epoch, the step metrics so far); then,
        given ``best`` (``keep="best"``), write it to best.msgpack if it is not there yet, and hand it, not
        ``state``, to ``on_save``. (In this order, a kill in between leaves a checkpoint whose best epoch is its own
        state, from which a resumed run takes it.)"""
        extra: dict[str, Any] = {"history": history}
        if step_metrics:
            host = jax.device_get(step_metrics)
            extra["epoch_metrics"] = {
                k: {"dtype": str(np.asarray(host[0][k]).dtype), "values": [float(m[k]) for m in host]} for k in host[0]
            }
        with writing(what, self.saved):
            ckpt.save_checkpoint(self.checkpoint, state, self.config, extra)
            self._kept(state, best)

    def _kept(self, state: TrainState, best: TrainState | None) -> None:
        """best.msgpack (when ``best`` is not there yet), then ``on_save`` with the kept state."""
        if best is not None and int(best.step) != self.best_step:
            ckpt.save_checkpoint(self.best, best, self.config)
            self.best_step = int(best.step)
        if self.on_save is not None:
            self.on_save(state if best is None else best)

    def end_epoch(self, state: TrainState, history: list[Record], plot: bool, best: TrainState | None = None) -> None:
        """The duties of an epoch's end: its checkpoint (holding its record: one atomic fact), then its
        metrics.jsonl line, then (``plot``) the curves."""
        record = history[-1]
        self.save(state, history, f"the checkpoint of epoch {record['epoch']} to {self.checkpoint}", best=best)
        self.saved = f"{self.checkpoint} (epoch {record['epoch']}, step {record['step']})"
        with writing(str(self.metrics), self.saved):
            mw.append_metrics(self.metrics, record)
            if self.board is not None:
                self.board.add(record)
            if plot:
                viz.plot_curves(history, self.path / mw.CURVES)

    def finish(self, state: TrainState, record: Record, best: TrainState | None) -> None:
        """The end of a run with a validation split: the kept state's files made current (a resumed run's may
        be stale) and the ``final`` record of its test metrics appended to metrics.jsonl."""
        with writing(f"the kept parameters and {self.metrics}", self.saved):
            self._kept(state, best)
            mw.append_metrics(self.metrics, record)
            if self.board is not None:
                self.board.add(record)


def will_resume(path: Path, resume: bool, overwrite: bool) -> bool:
    """Whether to load the checkpoint at ``path``; ``CheckpointError`` if it does not fit ``resume``/``overwrite``."""
    if not path.exists():
        if resume:
            raise ckpt.CheckpointError(
                f"--resume: {path.parent} holds no checkpoint ({path.name}): check --workdir, "
                "or drop --resume to start a new run there"
            )
        return False
    if not resume:
        if overwrite:
            return False
        raise ckpt.CheckpointError(
            f"{path.parent} already holds a checkpoint: pass --resume to continue it, "
            "--overwrite to start afresh over it, or another --workdir"
        )
    return True


def _without_final(text: str) -> str:
    """metrics.jsonl's text without its ``final`` records (the test metrics at the end of a validated run)."""

    def final(line: str) -> bool:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(record, dict) and record.get("final") is True

    return "".join(line for line in text.splitlines(keepends=True) if not final(line))


def _step_metrics(saved: dict[str, Any]) -> list[dict[str, np.ndarray]]:
    """The step metrics of a part-done epoch, as saved with its checkpoint (empty if none)."""
    if not saved:
        return []
    count = len(next(iter(saved.values()))["values"])
    return [{k: np.asarray(v["values"][j], v["dtype"]) for k, v in saved.items()} for j in range(count)]


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, ... : the first that does not exist."""
    candidate, i = path, 0
    while candidate.exists():
        i += 1
        candidate = path.with_name(f"{path.name}.{i}")
    return candidate


@contextlib.contextmanager
def writing(what: str, saved: str | None, resume: str = "continue with --resume") -> Iterator[None]:
    """Turn an ``OSError`` while writing ``what`` (a full disk) into one line that says what is still safe and, when
    a checkpoint was ``saved``, how to ``resume`` from it."""
    try:
        yield
    except OSError as e:
        kept = f"the last good checkpoint, {saved}, is intact" if saved else "no checkpoint of this run was written"
        again = f"then {resume}" if saved else "then run again"
        raise safety.CheckpointWriteError(
            f"could not write {what} ({e.strerror or e}): {kept}; free some space (or fix the folder), {again}"
        ) from e
