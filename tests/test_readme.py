"""The README's Python examples run as written, and its two set-up commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert BLOCKS, "README has no python example"


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_python_example_runs(i: int, tmp_path: Path):  # one test per block: pytest-xdist spreads them over workers
    script = tmp_path / f"example{i}.py"
    script.write_text(BLOCKS[i])
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"README example {i} failed:\n{BLOCKS[i]}\n{proc.stderr[-2000:]}"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    test_command = next((c.strip().splitlines()[-1] for c in commands if "pytest" in c), None)
    assert test_command, "README gives no test command"
    assert test_command in ci, f".ci/run does not run the README's test command {test_command!r}"
