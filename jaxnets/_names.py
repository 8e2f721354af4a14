"""One-line answers to a mistyped name: what was asked, the closest valid names, and all the valid ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names most like ``name`` (case-insensitive), best first: those it begins (shortest first), else the
    closest by ``difflib``; empty when none is close."""
    lowered = {c.lower(): c for c in choices}
    key = name.lower()
    begun = sorted((c for c in lowered if c.startswith(key) and c != key), key=len)
    hits = begun or difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits[:n]]


def unknown(kind: str, name: str, choices: Iterable[str], listing: str | None = None) -> str:
    """ "unknown model 'lenet' (did you mean lenet5?); choose one of ..." (``listing`` replaces the list of all)."""
    choices = list(choices)
    near = closest(name, choices)
    hint = f" (did you mean {', '.join(near[:-1]) + ' or ' if len(near) > 1 else ''}{near[-1]}?)" if near else ""
    return f"unknown {kind} {name!r}{hint}; " + (listing or f"choose one of {', '.join(choices)}")
