"""One XLA compilation cache for the whole test run: most of a small JAX test's time is compiling, and many tests
(in both pytest-xdist workers, and in the train.py, notebook and README processes they start, which inherit the
environment) compile the same programs. The cache is keyed by the program, so a result cannot come from another
program; it lives in .pytest_cache (a fresh clone starts empty) unless JAX_COMPILATION_CACHE_DIR is already set."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).parents[1] / ".pytest_cache" / "xla"))
# Programs that compile faster than this are cheaper to compile again than to read back.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
