"""The Colab notebooks in colab/: committed without outputs, each opening with its "Open in Colab" badge and a setup
cell that installs jaxnets only in Colab, linked from the README, and each executed top to bottom here by a real
Jupyter kernel (nbclient) in quick mode (JAXNETS_QUICK=1: fewer epochs and less data, every cell still runs),
drawing at least one plot, reporting its devices and not importing TensorFlow; once on one CPU device and once on 8
simulated ones (XLA_FLAGS=--xla_force_host_platform_device_count=8, as on an 8-core TPU runtime; 'long')."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from helpers_train import MNIST_DIR
from nbclient import NotebookClient

import jaxnets

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "colab").glob("*.ipynb"))
# Where the badges and setup cells assume the repository lives (README says so; change it there and here).
GITHUB = "jaxnets/jaxnets"
BADGE = "https://colab.research.google.com/github/" + GITHUB + "/blob/main/colab/{name}"
INSTALL = "git+https://github.com/" + GITHUB
PLOT = "image/png"


def _read(path: Path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def _code(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _needs_mnist(nb) -> bool:
    return re.search(r"""load(_raw|_canvas)?\(\s*["']mnist(_canvas\w*)?["']""", _code(nb)) is not None


# The notebooks on real MNIST whose quick mode is short enough for CI (~80 s on 2 cores, 2026-12-07).
MNIST_IN_CI = {"12_uncertainty_metric_oneshot_style"}


def _run_params() -> list:
    """The notebooks to execute on 1 and on 8 devices; those that train on real MNIST (digits or canvases) are
    'slow', like the other real-MNIST tests, and (but for ``MNIST_IN_CI``) 'long' as the 8-device runs are (each
    notebook compiles again for the 8-way sharding): CI's 25 minutes on 2 cores leave no room for them."""
    params = []
    for devices in (1, 8):
        for p in NOTEBOOKS:
            mnist = _needs_mnist(_read(p))
            long = devices > 1 or (mnist and p.stem not in MNIST_IN_CI)
            marks = [pytest.mark.slow] * (mnist or long) + [pytest.mark.long] * long
            params.append(pytest.param(p, devices, id=f"{p.stem}-{devices}dev", marks=marks))
    return params


# Appended to each notebook run (not to the file): TensorFlow must not have been imported (tensorflow_datasets may be).
NO_TENSORFLOW = (
    "import sys\nprint('tensorflow modules:', sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))"
)


@pytest.fixture(scope="session")
def mnist_tfds_dir(tmp_path_factory) -> Path:
    """A TFDS data dir with MNIST prepared in it from the manual dir (once per session, ~20 s on 2 cores) for the
    notebooks that use it, so that each notebook's time is its own. (In Colab the notebook itself prepares it.)"""
    path = tmp_path_factory.mktemp("tfds")
    prepare = (
        "import sys; from jaxnets import data; data.load_raw('mnist', data_dir=sys.argv[1], manual_dir=sys.argv[2])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", prepare, str(path), str(MNIST_DIR)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"preparing MNIST for the notebooks failed:\n{proc.stderr[-3000:]}"
    return path


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert names, "colab/ holds no notebooks"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n) for n in names), names
    for stem in ("01_perceptron_xor", "02_backprop_gradient_descent", "04_convolution_pooling", "05_lenet5_mnist"):
        assert f"{stem}.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_and_opens_in_colab(path: Path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has saved outputs"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and f"]({BADGE.format(name=path.name)})" in first.source, (
        f"{path.name} must open with the Open-in-Colab badge linking {BADGE.format(name=path.name)}"
    )
    setup = code[0].source
    assert '"google.colab" in sys.modules' in setup and 'find_spec("jaxnets") is None' in setup, (
        f"{path.name}: the first code cell must install jaxnets only in Colab and only when it is missing"
    )
    pinned = re.search(rf'JAXNETS = "{re.escape(INSTALL)}@v(\S+)"', setup)
    assert pinned and pinned.group(1) == jaxnets.__version__ and '"install", "-q", JAXNETS]' in setup, (
        f"{path.name}: the setup cell must pip install the release {INSTALL}@v{jaxnets.__version__} named once in "
        "JAXNETS (jaxnets.__version__ is the one place of the version)"
    )
    assert "jaxnets.__version__" in setup and "jax.devices()" in setup, (
        f"{path.name}: the setup cell must report jaxnets.__version__ and jax.devices()"
    )
    assert "jax.tools.colab_tpu" not in _code(nb), "the removed colab_tpu helper: Colab's TPU runtime needs nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_readme_links_the_notebook(path: Path):
    readme = (ROOT / "README.md").read_text()
    assert f"({BADGE.format(name=path.name)})" in readme, f"README does not link {path.name} (Colab badge)"


@pytest.mark.parametrize(("path", "devices"), _run_params())
def test_notebook_runs_and_plots(path: Path, devices: int, tmp_path: Path, request, record_property):
    nb = _read(path)
    nb.cells.append(nbformat.v4.new_code_cell(NO_TENSORFLOW))
    tfds_dir = tmp_path / "tfds"
    if _needs_mnist(nb):
        if not MNIST_DIR.is_dir():
            pytest.skip(
                f"{path.name} needs the MNIST files, which are not in {MNIST_DIR} (../shared/data/mnist); "
                "set JAXNETS_TEST_MNIST to a folder holding them"
            )
        tfds_dir = request.getfixturevalue("mnist_tfds_dir")
    env = {
        **os.environ,
        "JAXNETS_QUICK": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "JAXNETS_MANUAL_DIR": str(MNIST_DIR),
        "TFDS_DATA_DIR": str(tfds_dir),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip(),
    }
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    record_property("seconds", round(time.perf_counter() - start, 1))
    plots = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "display_data" and PLOT in o.get("data", {})
    ]
    assert plots, f"{path.name} ran but displayed no plot"
    printed = [
        "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
        for c in nb.cells
        if c.cell_type == "code"
    ]
    line = next((ln for ln in printed[0].splitlines() if "devices:" in ln), "")
    assert line.count("CpuDevice(") == devices, (
        f"{path.name}'s setup cell printed no line of {devices} devices: {line!r}"
    )
    assert printed[-1].strip() == "tensorflow modules: []", f"{path.name} imported TensorFlow: {printed[-1]}"
