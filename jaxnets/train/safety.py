"""Keeping a run's work safe: one run per workdir (a lock), Ctrl-C and SIGTERM as a clean stop, the finiteness check,
and the errors a run can end with.

The CLI maps them to exit codes: bad input (``ValueError``, ``WorkdirError``, ``CheckpointError``,
``DataUnavailable``) 2; a failure during the run (``TrainingDiverged``, ``CheckpointWriteError``, ``WorkdirBusy``) 1;
``TrainingInterrupted`` its ``exit_code`` (130 after Ctrl-C, 143 after SIGTERM).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import jax
import jax.numpy as jnp

from jaxnets.train.checkpoint import CHECKPOINT

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock
    fcntl = None

LOCK = ".lock"
F = TypeVar("F", bound=Callable[..., Any])


class WorkdirError(ValueError):
    """The workdir cannot be created or written."""


class WorkdirBusy(RuntimeError):
    """Another live run holds the workdir's lock."""


class CheckpointWriteError(RuntimeError):
    """Saving a checkpoint (or the metrics after it) failed, e.g. on a full disk; the previous checkpoint is intact."""


class TrainingDiverged(RuntimeError):
    """The loss (or the parameters) became NaN or infinite. ``state`` is the last good state (the step that went
    wrong was not committed); ``step`` is that step's 1-based number over the run, ``epoch`` its 1-based epoch."""

    def __init__(self, message: str, *, step: int, epoch: int, state: Any = None):
        super().__init__(message)
        self.step, self.epoch, self.state = step, epoch, state


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped ``fit`` cleanly after a step. ``state`` is the state then (``step`` steps
    done, in 1-based ``epoch``); ``saved`` the checkpoint written with it, or None without a workdir; ``signum`` the
    signal, and ``exit_code`` the conventional status for it (128 + signal number: 130 for SIGINT, 143 for SIGTERM)."""

    def __init__(
        self,
        message: str,
        *,
        step: int,
        epoch: int,
        state: Any = None,
        saved: Path | None = None,
        signum: int = signal.SIGINT,
    ):
        super().__init__(message)
        self.step, self.epoch, self.state, self.saved, self.signum = step, epoch, state, saved, int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "interrupted"


def check_writable(workdir: str | os.PathLike) -> Path:
    """Create ``workdir`` if needed and check that files can be made in it; ``WorkdirError`` in one line if not."""
    path = Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = f": {e.filename}" if e.filename and Path(e.filename) != path else ""
        raise WorkdirError(
            f"workdir {path} cannot be created or written ({e.strerror or e}{where}): choose another --workdir"
        ) from None
    return path


def check_usable(workdir: str | os.PathLike) -> None:
    """Without creating anything: ``WorkdirError`` if ``workdir`` could not be created or written (judged from its
    nearest existing ancestor), ``WorkdirBusy`` if a live run holds it. For failing fast, before a run loads data."""
    path = Path(workdir)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = (
        "Not a directory"
        if not existing.is_dir()
        else "Permission denied"
        if not os.access(existing, os.W_OK | os.X_OK)
        else None
    )
    if problem:
        where = f": {existing}" if existing != path else ""
        raise WorkdirError(f"workdir {path} cannot be created or written ({problem}{where}): choose another --workdir")
    if (path / LOCK).exists():
        with lock_workdir(path, clean=False):  # taken and given back at once: only to see whether it is free
            pass


@contextlib.contextmanager
def lock_workdir(workdir: str | os.PathLike, clean: bool = True) -> Iterator[Path]:
    """Hold ``workdir`` for this run: an exclusive ``flock`` on ``WORKDIR/.lock`` (which names the holder's pid).
    The kernel drops the lock when the process ends, however it ends, so a killed run leaves no stale lock. A second
    run on the same workdir gets ``WorkdirBusy``. With ``clean``, the temp files of a checkpoint write that was
    killed are removed (and the pid written)."""
    path = check_writable(workdir)
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise WorkdirError(
            f"workdir {path} is not writable ({e.strerror}: {path / LOCK}): choose another --workdir"
        ) from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise WorkdirBusy(
                    f"workdir {path} is in use by another run (pid {holder}): wait for it to end, "
                    "or choose another --workdir"
                ) from None
            except OSError:  # a filesystem without locks (some network mounts): carry on unprotected
                pass
        if clean:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            for stale in path.glob(f"{CHECKPOINT}.*.tmp"):  # left by a run killed while saving; never read
                stale.unlink(missing_ok=True)
        yield path
    finally:
        os.close(fd)  # releases the lock


class StopFlag:
    """Set by the first stopping signal (SIGINT or SIGTERM): true once set; ``signum`` says which."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_stop(enabled: bool = True) -> Iterator[StopFlag]:
    """While inside, SIGINT (Ctrl-C) and SIGTERM (``kill``, a job scheduler's pre-emption) only set the flag, for the
    loop to stop cleanly after the current step and save it; further signals are ignored, so that nothing interrupts
    that save. No-op outside the main thread; a signal whose handler is SIG_IGN (a background job's SIGINT) stays
    ignored. The previous handlers are put back on leaving."""
    flag = StopFlag()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.signum is None:
            flag.signum = signum

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, old in previous.items():
        if old is not None and old != signal.SIG_IGN:
            signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, old in previous.items():
            if old is not None and old != signal.SIG_IGN:
                signal.signal(s, old)


_scopes = threading.local()


def scoped(fn: F) -> F:
    """Decorate a function whose body ``hold``s context managers (a lock, a signal handler): they are exited, in
    reverse order, when the call returns or raises."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        stacks = _scopes.__dict__.setdefault("stacks", [])
        with contextlib.ExitStack() as stack:
            stacks.append(stack)
            try:
                return fn(*args, **kwargs)
            finally:
                stacks.pop()

    return wrapper  # type: ignore[return-value]


def hold(manager: contextlib.AbstractContextManager) -> Any:
    """Enter ``manager`` until the enclosing ``@scoped`` call ends; returns what it yields."""
    return _scopes.stacks[-1].enter_context(manager)


@jax.jit
def _finite(tree) -> jax.Array:
    ok = jnp.bool_(True)
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            ok &= jnp.all(jnp.isfinite(leaf))
    return ok


def all_finite(tree) -> bool:
    """Whether every floating-point array of ``tree`` is free of NaN and infinity (one device reduction, one read)."""
    return bool(_finite(tree))
