"""Which accelerator build of JAX is installed, and a warning when it is but JAX sees only the CPU.

The ``cuda12``, ``cuda13`` and ``tpu`` extras of jaxnets (JAX's own) install a PJRT plugin next to jaxlib; when the
plugin finds no device (no driver, a CPU-only machine, a version clash) JAX falls back to the CPU, quietly or in a
log line that is easy to miss. ``accelerator_warning()`` turns that into one line a program can print.
"""

from __future__ import annotations

import importlib.metadata
import os

import jax

PLUGINS = {"jax-cuda12-plugin": "gpu", "jax-cuda13-plugin": "gpu", "libtpu": "tpu"}  # distribution -> platform


def installed_plugins() -> list[str]:
    """The accelerator plugins of JAX installed here (distribution names, e.g. ``jax-cuda12-plugin``)."""
    found = []
    for dist in PLUGINS:
        try:
            importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(dist)
    return found


def accelerator_warning() -> str | None:
    """One line when a GPU or TPU build of JAX is installed but JAX sees only CPU devices (and ``JAX_PLATFORMS``
    does not ask for the CPU alone); ``None`` otherwise. Initialises JAX's backends."""
    plugins = installed_plugins()
    if not plugins or os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        return None
    if any(d.platform != "cpu" for d in jax.devices()):
        return None
    wanted = sorted({PLUGINS[p] for p in plugins})
    return (
        f"warning: {', '.join(plugins)} is installed but JAX sees only the CPU ({jax.device_count()} x cpu), "
        f"so this runs on the CPU: check that this machine has a {' or '.join(wanted)} and its driver "
        "(nvidia-smi for a GPU), or set JAX_PLATFORMS=cpu to silence this"
    )
