"""Several processes (hosts) training together with ``jax.distributed``: start-up, each process's data shard, and
process 0's decisions shared with the others. The training itself is the same SPMD program (``parallel``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TypeVar

import jax
import numpy as np

T = TypeVar("T")


def detected_cluster() -> str | None:
    """The multi-process launcher this process runs under, if any, for which ``jax.distributed.initialize()`` finds
    its arguments by itself: Slurm (``srun`` with several tasks), Open MPI (``mpirun``) or a multi-host Cloud TPU."""
    env = os.environ
    if (
        all(k in env for k in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"))
        and int(env.get("SLURM_STEP_NUM_TASKS", env["SLURM_NTASKS"])) > 1
    ):
        return "Slurm"
    if "OMPI_MCA_orte_hnp_uri" in env and int(env.get("OMPI_COMM_WORLD_SIZE", "1")) > 1:
        return "Open MPI"
    if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
        return "Cloud TPU"
    return None


MODES = ("auto", "on", "off")


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None, mode: str = "auto"
) -> str | None:
    """Join the processes of a run with ``jax.distributed.initialize``; call it before any other JAX computation.

    ``mode`` 'auto': initialise when ``coordinator`` (``HOST:PORT`` of process 0), ``num_processes`` or
    ``process_id`` is given (JAX fills in those its launcher detection finds), or under a detected multi-process
    launcher (``detected_cluster``), whose arguments JAX reads itself; 'on': always (e.g. under a launcher only JAX
    knows); 'off': never (one process). Returns a line for the log, or None when nothing was done. On CPU, processes
    exchange gradients with gloo collectives over TCP.
    """
    if mode not in MODES:
        raise ValueError(f"unknown distributed mode {mode!r}; choose one of {', '.join(MODES)}")
    given = coordinator is not None or num_processes is not None or process_id is not None
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"need at least one process; got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process id {process_id} is not in 0..{num_processes - 1}")
    if coordinator is not None and not coordinator.rpartition(":")[2].isdigit():
        raise ValueError(f"the coordinator must be HOST:PORT (process 0's address); got {coordinator!r}")
    if mode == "off" or (mode == "auto" and not given and detected_cluster() is None):
        return None
    with contextlib.suppress(AttributeError, ValueError):  # CPU: gloo over TCP (JAX's default; harmless elsewhere)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    except ValueError as e:  # JAX found too little to go on
        raise ValueError(
            f"cannot join the other processes ({e}): give the coordinator's HOST:PORT, the number of "
            "processes and this process's id, or run under a launcher JAX detects"
        ) from None
    where = f"coordinator {coordinator}" if coordinator else f"{detected_cluster() or 'auto-detected'} cluster"
    return (
        f"process {jax.process_index()} of {jax.process_count()} ({where}): "
        f"{jax.local_device_count()} local of {jax.device_count()} devices"
    )


def shard(arrays: T, index: int | None = None, count: int | None = None) -> T:
    """This process's share of a pytree of arrays (examples first): every ``count``-th example from ``index``
    (default: this process of all), so the shards differ in size by at most one and together hold each example once."""
    index = jax.process_index() if index is None else index
    count = jax.process_count() if count is None else count
    return jax.tree.map(lambda a: a[index::count], arrays)


def from_process_0(compute: Callable[[], T], like: T, what: str = "this step") -> T:
    """``compute()`` run on process 0 only, its result sent to every process; ``like`` is a pytree of the same
    structure, shapes and dtypes (the other processes' placeholder). If ``compute`` raises on process 0, it raises
    there and every other process raises ``RuntimeError`` instead of waiting forever."""
    if jax.process_count() == 1:
        return compute()
    from jax.experimental import multihost_utils

    result, error = like, None
    if jax.process_index() == 0:
        try:
            result = compute()
        except Exception as e:  # re-raised below, once the others know
            error = e
    if int(multihost_utils.broadcast_one_to_all(np.int32(error is not None))):
        if error is not None:
            raise error
        raise RuntimeError(f"{what} failed on process 0 (see its error)")
    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(jax.device_get(result)))
