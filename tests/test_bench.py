"""The throughput benchmark runs from a checkout and its --json output names model, framework and ratios.

(Speed itself is never asserted here: figures come from `python bench/throughput.py` on a quiet machine.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).parents[1] / "bench" / "throughput.py"


def test_throughput_json_smoke():
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--models",
            "lenet5_modern",
            "--frameworks",
            "jaxnets",
            "plain_jax",
            "flax",
            "--steps",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["peak_gflops"] > 0 and out["batch"] == 128
    row = out["lenet5_modern"]
    assert set(row) >= {"train_gflop_per_step", "jaxnets", "plain_jax", "flax"}
    for fw in ("jaxnets", "plain_jax", "flax"):
        assert row[fw]["images_per_second"] > 0 and row[fw]["vs_flax"] > 0 and row[fw]["vs_plain_jax"] > 0
