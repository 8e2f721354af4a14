"""Data parallelism with the same model code: XLA SPMD over a 1-D ``data`` mesh of every device, on one host or many.

Each global batch is split along its leading axis over the mesh; parameters, optimiser state and model state are
replicated; the compiler inserts the gradient all-reduce. With several processes (``jax.distributed``), each process
holds only its own shard of the data, shuffles it, and feeds its slice of every global batch; every array the step
sees is a global ``jax.Array``, so losses, accuracies and gradients are means over the global batch.

Optionally (``data_parallel(shard_state=True)``, FSDP-like) the large arrays of the training state (weights and their
optimiser moments) are split over the same axis instead of replicated: less memory per device, and XLA all-gathers
each weight where it is used and reduce-scatters its gradient.
"""

from __future__ import annotations

import math
from typing import NamedTuple, cast

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA = "data"  # the mesh axis the batch is split along
SHARD_MIN = 2**14  # with shard_state, arrays of at least this many elements are split over the devices
# At most this many sharded steps are left queued ahead of the host: with ~32 or more in flight, XLA:CPU's
# all-reduce between (simulated) devices deadlocks in jax 0.10 ("Expected 2 threads to join the rendezvous"); 8
# keep every device busy all the same.
IN_FLIGHT = 8


class Shardings(NamedTuple):
    """Where arrays live: ``replicated`` on every device, ``batch`` split along the leading axis; ``shard_state``:
    split the training state's large arrays too (``state_sharding``)."""

    replicated: NamedSharding
    batch: NamedSharding
    shard_state: bool = False

    @property
    def mesh(self) -> Mesh:
        """The 1-D ``data`` mesh."""
        return cast(Mesh, self.batch.mesh)  # (always built on a concrete mesh: ``data_parallel``)

    @property
    def num_devices(self) -> int:
        """Number of devices in the mesh (over all processes)."""
        return self.mesh.size

    def split(self, axis: int, ndim: int) -> NamedSharding:
        """Axis ``axis`` of an ``ndim``-dimensional array split over the mesh, the others replicated."""
        return NamedSharding(self.mesh, PartitionSpec(*(DATA if a == axis else None for a in range(ndim))))


def data_parallel(devices: list | None = None, shard_state: bool = False) -> Shardings | None:
    """Shardings over a 1-D ``data`` mesh (``jax.make_mesh``) of ``devices`` (default: all devices of all processes),
    or None when there is only one device. ``shard_state``: split the state's large arrays over the devices too."""
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) < 2:
        return None
    mesh = jax.make_mesh((len(devices),), (DATA,), axis_types=(AxisType.Auto,), devices=devices)
    owners = [d.process_index for d in mesh.devices.flat]
    if owners != sorted(owners):  # each process's devices hold consecutive slices of a batch (its share)
        devices = sorted(devices, key=lambda d: (d.process_index, d.id))
        mesh = Mesh(np.array(devices), (DATA,), axis_types=(AxisType.Auto,))
    return Shardings(NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(DATA)), shard_state)


def state_sharding(shape: tuple[int, ...], shardings: Shardings) -> NamedSharding:
    """Where a training-state array of ``shape`` lives: replicated, or (``shard_state``, at least ``SHARD_MIN``
    elements) split along its longest axis that the device count divides."""
    if shardings.shard_state and math.prod(shape) >= SHARD_MIN:
        for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
            if shape[axis] % shardings.num_devices == 0:
                return shardings.split(axis, len(shape))
    return shardings.replicated


def place_state(state, shardings: Shardings | None):
    """Put the training state (the same values on every process) on the device(s), replicated or split as
    ``state_sharding`` says."""
    if shardings is None or not shardings.shard_state:
        return replicate(state, shardings)

    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, state_sharding(a.shape, shardings), lambda index: a[index])

    return jax.tree.map(put, jax.device_get(state))


def constrain_state(state, shardings: Shardings | None):
    """Inside jit: keep the training state where ``place_state`` put it."""
    if shardings is None or not shardings.shard_state:
        return state
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, state_sharding(a.shape, shardings)), state)


def gathered(state, shardings: Shardings | None):
    """The state with every array readable by process 0 (to save it): as it is unless it is split over several
    processes, then all-gathered (a collective: every process must call it)."""
    if shardings is None or not shardings.shard_state or jax.process_count() == 1:
        return state
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(state, tiled=True)


def shard_batch(x, shardings: Shardings | None):
    """Inside jit: ask for ``x`` (an array or a pytree of them) split along its batch axis over the mesh (no-op on
    one device)."""
    return x if shardings is None else jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, shardings.batch), x)


def replicate(tree, shardings: Shardings | None):
    """Put a pytree (the same values on every process) on the device(s): replicated over the mesh, or on the
    default device."""
    if shardings is None:
        return jax.device_put(tree)
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings.replicated)

    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, shardings.replicated, lambda index: a[index])

    return jax.tree.map(put, jax.device_get(tree))


def process_devices(shardings: Shardings) -> list:
    """This process's devices, in mesh order (the order of its slices of a batch)."""
    return [d for d in shardings.mesh.devices.flat if d.process_index == jax.process_index()]


def place_local_data(tree, shardings: Shardings):
    """A copy of this process's data (a pytree of arrays, examples first) on each of its devices, as global arrays
    split over the mesh: inside ``shard_map`` over ``data`` each device sees its own process's whole data."""
    devices = process_devices(shardings)

    def place(a):
        a = np.asarray(a)
        shape = (a.shape[0] * shardings.num_devices, *a.shape[1:])
        return jax.make_array_from_single_device_arrays(
            shape, shardings.split(0, a.ndim), [jax.device_put(a, d) for d in devices]
        )

    return jax.tree.map(place, tree)


def from_process_local(a: np.ndarray, shardings: Shardings, axis: int = 0) -> jax.Array:
    """A global array split over the mesh along ``axis``, made from this process's slice ``a`` of it (every process
    passes a slice of the same shape, its devices' consecutive parts; ``jax.make_array_from_process_local_data``)."""
    a = np.asarray(a)
    shape = list(a.shape)
    shape[axis] *= jax.process_count()
    return jax.make_array_from_process_local_data(shardings.split(axis, a.ndim), a, tuple(shape))


def gather_batch(data, idx: jax.Array, shardings: Shardings):
    """Inside jit: the batch ``data[idx]`` of every array of the pytree ``data``, split over the mesh, each device
    gathering its slice of ``idx`` (indices into its process's data, see ``place_local_data``) from its own copy: no
    data moves between devices."""
    gather = jax.shard_map(
        lambda d, i: jax.tree.map(lambda a: a[i], d),
        mesh=shardings.mesh,
        in_specs=PartitionSpec(DATA),
        out_specs=PartitionSpec(DATA),
    )
    return gather(data, idx)


def global_max(value: int) -> int:
    """The largest of ``value`` over all processes (``value`` itself with one process)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.asarray(value, np.int64))))


def global_min(value: int) -> int:
    """The smallest of ``value`` over all processes."""
    return -global_max(-value)


def eval_batches(x, y, batch_size: int, shardings: Shardings):
    """This process's evaluation examples (``x``, ``y``: arrays or pytrees of them) as global ``(batches,
    batch_size, ...)`` arrays split along the batch axis, with a 0/1 mask of the real examples: every process pads
    its share to the same number of batches, so that the masked sums over the global arrays count each example of
    each process exactly once."""
    n = len(jax.tree.leaves(x)[0])
    local_devices = shardings.num_devices // jax.process_count()
    most = max(1, global_max(n))
    per_process = min(batch_size // jax.process_count(), -(-most // local_devices) * local_devices)
    batches = -(-most // per_process)
    pad = batches * per_process - n

    def fold(a):
        a = np.asarray(a)
        a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) if pad else a
        return from_process_local(a.reshape(batches, per_process, *a.shape[1:]), shardings, axis=1)

    return jax.tree.map(fold, x), jax.tree.map(fold, y), fold(np.ones(n, bool))


def epoch_indices(local_batches: jax.Array | np.ndarray, shardings: Shardings) -> jax.Array:
    """This process's ``(steps, batch_size / processes)`` indices into its data as the global ``(steps,
    batch_size)`` index array of an epoch, split along the batch axis."""
    return from_process_local(np.asarray(local_batches), shardings, axis=1)


def is_main_process() -> bool:
    """Whether this is process 0, the one that writes checkpoints, metrics and logs."""
    return jax.process_index() == 0
