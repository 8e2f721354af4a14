"""Data parallelism with the same code: batches split over a 1-D device mesh, everything else replicated."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


class Shardings(NamedTuple):
    """Where arrays live: ``replicated`` on every device, ``batch`` split along the leading axis."""

    replicated: NamedSharding
    batch: NamedSharding

    @property
    def num_devices(self) -> int:
        """Number of devices in the mesh."""
        return self.batch.mesh.size


def data_parallel(devices: list | None = None) -> Shardings | None:
    """Shardings over a 1-D 'data' mesh of ``devices`` (default: all), or None when there is only one device."""
    devices = list(devices if devices is not None else jax.devices())
    if len(devices) < 2:
        return None
    mesh = Mesh(np.array(devices), ("data",))
    return Shardings(NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec("data")))


def shard_batch(x: jax.Array, shardings: Shardings | None) -> jax.Array:
    """Inside jit: ask for ``x`` split along its batch axis over the mesh (no-op on one device)."""
    return x if shardings is None else jax.lax.with_sharding_constraint(x, shardings.batch)


def replicate(tree, shardings: Shardings | None):
    """Put a pytree on the device(s): replicated over the mesh, or on the default device."""
    return jax.device_put(tree, shardings.replicated if shardings is not None else None)
