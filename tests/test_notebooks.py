"""The Colab notebooks are committed without outputs and their code runs top to bottom here (quick settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MNIST_DIR = Path(os.environ.get("JAXNETS_TEST_MNIST", Path(__file__).parents[2] / "shared" / "data" / "mnist"))
NOTEBOOKS = sorted((Path(__file__).parents[1] / "colab").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "colab/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_has_no_outputs(path: Path, tmp_path: Path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), f"{path.name} has saved outputs"
    source = "\n\n".join("".join(c["source"]) for c in code)
    if "mnist" in source and not MNIST_DIR.is_dir():
        pytest.skip(f"{path.name} needs the MNIST files, which are not in {MNIST_DIR} (../shared/data/mnist)")
    script = tmp_path / f"{path.stem}.py"
    script.write_text(source)
    env = {**os.environ, "JAXNETS_QUICK": "1", "MPLBACKEND": "Agg", "JAXNETS_MANUAL_DIR": str(MNIST_DIR),
           "TFDS_DATA_DIR": str(tmp_path / "tfds")}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stderr[-3000:]}"
