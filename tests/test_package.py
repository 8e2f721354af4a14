"""The package as users install it: TensorFlow optional, JAX's accelerator extras, the version in one place, the
licence and typing marker, and the one-line warning when an accelerator build of JAX sees only the CPU."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import jax
import pytest

import jaxnets
from jaxnets import accelerators
from jaxnets.data import tfds_source

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
META = PROJECT["project"]


def _names(requirements: list[str]) -> list[str]:
    return [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements]


def test_the_default_install_has_no_tensorflow_and_the_tfds_extra_brings_it():
    assert "tensorflow" not in _names(META["dependencies"]) and "tensorflow-datasets" in _names(META["dependencies"])
    assert _names(META["optional-dependencies"]["tfds"]) == ["tensorflow"]
    assert tfds_source.EXTRA == "jaxnets[tfds]"
    installed = importlib.metadata.requires("jaxnets") or []
    unconditional = [r for r in installed if "extra ==" not in r]
    assert "tensorflow" not in _names(unconditional), f"the installed jaxnets requires TensorFlow: {unconditional}"


def test_accelerator_extras_are_jax_s_own():
    extras = META["optional-dependencies"]
    for name in ("cuda12", "cuda13", "tpu"):
        assert len(extras[name]) == 1 and extras[name][0].startswith(f"jax[{name}]"), extras[name]


def test_the_version_is_written_once_and_released_in_the_changelog():
    assert "version" not in META and "version" in META["dynamic"]
    assert PROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jaxnets.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", jaxnets.__version__)
    assert f"## [{jaxnets.__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    installed = importlib.metadata.version("jaxnets")
    assert installed == jaxnets.__version__, (
        f"jaxnets {installed} is installed from an older checkout: pip install -e . again"
    )


def test_licence_typing_marker_classifiers_and_urls():
    assert META["license"] == "Apache-2.0" and META["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License\n                           Version 2.0")
    assert (ROOT / "jaxnets" / "py.typed").is_file() and "py.typed" in PROJECT["tool"]["setuptools"]["package-data"][
        "jaxnets"
    ]
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in META["classifiers"]
    assert META["urls"]["Homepage"] == "https://github.com/jaxnets/jaxnets"


def test_accelerator_warning_only_when_a_plugin_sees_no_accelerator(monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr(accelerators, "installed_plugins", lambda: [])
    assert accelerators.accelerator_warning() is None
    monkeypatch.setattr(accelerators, "installed_plugins", lambda: ["jax-cuda12-plugin"])
    if any(d.platform != "cpu" for d in jax.devices()):
        assert accelerators.accelerator_warning() is None
    else:
        message = accelerators.accelerator_warning()
        assert message is not None and "\n" not in message
        assert message.startswith("warning: jax-cuda12-plugin is installed but JAX sees only the CPU")
        assert "a gpu and its driver" in message
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # the CPU asked for: nothing to warn about
    assert accelerators.accelerator_warning() is None


@pytest.mark.parametrize("dist", sorted(accelerators.PLUGINS))
def test_installed_plugins_reads_the_installed_distributions(dist, monkeypatch):
    def version(name: str) -> str:
        if name != dist:
            raise importlib.metadata.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert accelerators.installed_plugins() == [dist]
