"""What every command shares: its name as the user typed it, the library's parameter names turned into flags, the
check of ``JAX_PLATFORMS``, and one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable
from typing import Any


def invocation(module: str, script: str, fallback: str) -> str:
    """How this command was started, for messages and the resume command: ``script`` (the console script),
    ``python -m module``, or ``fallback`` (a call of ``main`` from Python, or a shim such as ``python train.py``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == module:
        return f"python -m {module}"
    if os.path.basename(sys.argv[0] if sys.argv else "") == script:
        return script
    return fallback


def prog_name(command: str) -> str:
    """The program name in ``NAME: error: ...`` lines: the script or file (``train.py``), or the module."""
    return shlex.split(command)[-1]


def flag(param: str) -> str:
    """The flag of a library parameter: ``batch_size`` -> ``--batch-size``."""
    return "--" + param.replace("_", "-")


def to_flags(
    text: str,
    params: Iterable[str],
    booleans: Iterable[str] = (),
    renamed: dict[str, str] | None = None,
    param: str | None = None,
) -> str:
    """A library message in the CLI's words: ``resume=True`` -> ``--resume`` (``booleans``); ```name``` -> ``--name``
    and ``another workdir`` / ``check workdir`` -> ``another --workdir`` (``params``); and when the error carries the
    ``param`` it is about (``ParameterError``), that name at the start -> its flag. (``name=VALUE`` is left alone:
    a config mismatch lists ``model='mlp' there but 'logistic' here``.)
    ``renamed`` maps a parameter to its flag's name where they differ (``model_args`` -> ``model_arg``)."""
    renamed = renamed or {}

    def name(p: str) -> str:
        return flag(renamed.get(p, p))

    if param is not None and text.startswith(param):
        text = name(param) + text[len(param) :]
    for p in booleans:
        text = re.sub(rf"(?<![\w-]){p}=True\b", name(p), text)
    for p in sorted(params, key=len, reverse=True):
        text = text.replace(f"`{p}`", name(p))
        text = re.sub(rf"\b(another|check) {p}\b", rf"\1 {name(p)}", text)
    return text


def model_arg(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (name, value): VALUE as JSON (true, 3, 0.5, [1, 2], null, "x"), else a comma-separated
    list of such values (``64,32``), else the string itself."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, e.g. batch_norm=true; got {text!r}")
    return name, _value(value)


def _value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "false", "null", "none"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "," in text:
        return [_value(part) for part in text.split(",") if part.strip()]
    return text


def check_platforms() -> None:
    """``ValueError`` in one line if ``JAX_PLATFORMS`` names a platform JAX cannot use here, listing those it can;
    otherwise initialises JAX's backends (after ``jax.distributed.initialize``, if any)."""
    import jax

    try:
        jax.devices()
    except RuntimeError:
        wanted = os.environ.get("JAX_PLATFORMS")
        if not wanted:
            raise
        jax.config.update("jax_platforms", "")  # every platform JAX finds, to say which there are
        available = [p for p in ("cpu", "gpu", "tpu") if _has(jax, p)]
        raise ValueError(
            f"JAX_PLATFORMS={wanted} names a platform that is not available here; available: "
            f"{', '.join(available) or 'none'} (set JAX_PLATFORMS to one of them, or unset it)"
        ) from None


def _has(jax, platform: str) -> bool:
    try:
        return bool(jax.devices(platform))
    except RuntimeError:
        return False


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def fail(prog: str, text: str, code: int = 2) -> int:
    """Print ``PROG: error: TEXT`` on stderr; return ``code``."""
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code
