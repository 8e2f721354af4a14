"""Reading TFDS datasets into numpy, offline from a manual dir, failing fast and in one line when data is missing.

TFDS on its own retries a missing download for minutes. Before calling it we check, in order: data already prepared
in the data dir; the source files in the manual dir (their names come from TFDS's registered URLs); and whether the
dataset's download hosts answer a TCP connect within a short timeout. If none holds we raise ``DataUnavailable``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from jaxnets._names import unknown

MANUAL_DIR_ENV = "JAXNETS_MANUAL_DIR"
PROBE_ENV = "JAXNETS_DOWNLOAD_PROBE"  # "host:port" probed instead of the dataset's hosts (tests use a closed port)
PROBE_TIMEOUT_ENV = "JAXNETS_PROBE_TIMEOUT"  # seconds, default 3


class DataUnavailable(RuntimeError):
    """The dataset is neither prepared nor in the manual dir, and its download hosts are unreachable."""


def _quiet_tfds():
    """Import tensorflow_datasets with absl/TensorFlow logging quietened; keep TensorFlow off any GPU."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    import tensorflow_datasets as tfds
    return tfds


def _hide_gpus_from_tensorflow() -> None:
    """Stop TensorFlow (used by TFDS only to read files) from claiming the accelerator memory JAX needs."""
    try:
        import tensorflow as tf
        tf.config.set_visible_devices([], "GPU")
    except (ImportError, RuntimeError, ValueError):  # no TF, or devices already initialised
        pass


def _reachable(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to host:port opens within ``timeout`` seconds (DNS included)."""
    result = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def download_hosts(urls) -> list[tuple[str, int]]:
    """The distinct (host, port) pairs of a dataset's source URLs, or the override in ``$JAXNETS_DOWNLOAD_PROBE``."""
    if os.environ.get(PROBE_ENV):
        host, _, port = os.environ[PROBE_ENV].rpartition(":")
        return [(host, int(port))]
    hosts = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            pair = (parts.hostname, parts.port or (80 if parts.scheme == "http" else 443))
            if pair not in hosts:
                hosts.append(pair)
    return hosts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_source_files(name: str, manual_dir: Path, url_infos) -> None:
    """``DataUnavailable`` in one line if a source file in ``manual_dir`` is not the one TFDS registered for dataset
    ``name`` (size, then SHA-256): truncated, damaged, or another file under that name. Checked before TFDS starts,
    so a bad file leaves nothing half-prepared behind."""
    for url, info in url_infos.items():
        path = manual_dir / (info.filename or Path(urllib.parse.urlsplit(url).path).name)
        size, want = path.stat().st_size, int(info.size) if info.size else None
        checksum = _sha256(path) if info.checksum and (want is None or size == want) else None
        if (want is not None and size != want) or (checksum is not None and checksum != info.checksum):
            got = f"{size:,} bytes" + (f" with SHA-256 {checksum[:16]}..." if checksum else "")
            expected = (f"{want:,} bytes" if want is not None else "") + (
                f" with SHA-256 {info.checksum[:16]}..." if info.checksum else "")
            why = "truncated" if want is not None and size < want else "damaged, or another file under that name"
            raise DataUnavailable(f"{path} is not the file {name} needs: it has {got} where TFDS expects "
                                  f"{expected.strip()} (it is {why}): put the original from {url} there, or remove "
                                  "it to let TFDS download it")


def load_tfds(name: str, data_dir: str | None = None, manual_dir: str | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Read a TFDS image-classification dataset whole: (train_x uint8, train_y int32, test_x, test_y, classes).

    Prepares it first if needed, from ``manual_dir`` (or ``$JAXNETS_MANUAL_DIR``) or else by downloading; raises
    ``DataUnavailable`` with a one-line explanation, within seconds, when neither is possible.
    """
    tfds = _quiet_tfds()
    manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV) or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # (ValueError: not even a valid TFDS name)
        from jaxnets.data.datasets import DATASETS, TFDS
        choices = dict.fromkeys([*DATASETS, *tfds.list_builders(with_community_datasets=False)])
        embedded = ", ".join(k for k in DATASETS if k not in TFDS)
        raise ValueError(unknown("dataset", name, choices, f"TFDS has no builder of that name, and the embedded sets "
                                 f"are {embedded} (see --list-datasets)")) from None
    where = builder.data_dir if data_dir is None else data_dir
    if not builder.is_prepared():
        url_infos = builder.url_infos or {}
        files = [info.filename or Path(urllib.parse.urlsplit(url).path).name for url, info in url_infos.items()]
        missing = [f for f in files if not (manual_dir and (Path(manual_dir) / f).is_file())]
        if missing or not files:
            timeout = float(os.environ.get(PROBE_TIMEOUT_ENV, "3"))
            down = [f"{h}:{p}" for h, p in download_hosts(url_infos) if not _reachable(h, p, timeout)]
            if down or not url_infos:
                held = f"{manual_dir} lacks {', '.join(missing)}" if manual_dir else "no manual dir was given"
                raise DataUnavailable(
                    f"{name} is not prepared in {where} and its source files could not be downloaded "
                    f"({', '.join(down) or 'no registered URLs'} unreachable; {held}): pass --manual-dir DIR holding "
                    f"{', '.join(files) or 'the source files'}, or set {MANUAL_DIR_ENV}=DIR")
        if manual_dir and files and not missing:
            check_source_files(name, Path(manual_dir), url_infos)
        config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
        _hide_gpus_from_tensorflow()
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as e:  # a wrong or damaged source file (TFDS checks checksums), a failed download
            lines = str(e).strip().splitlines() or [type(e).__name__]
            raise DataUnavailable(f"preparing {name} in {where} failed ({type(e).__name__}: {' '.join(lines[:3])})"
                                  + (f": check the files in {manual_dir}" if manual_dir else "")) from e
    _hide_gpus_from_tensorflow()
    splits = builder.info.splits
    if "train" not in splits or "test" not in splits or not builder.info.supervised_keys:
        raise ValueError(f"dataset {name!r} needs supervised 'train' and 'test' splits; it has {list(splits)}")
    arrays = []
    for split in ("train", "test"):
        x, y = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        arrays += [np.asarray(x), np.asarray(y, dtype=np.int32)]
    label = builder.info.features[builder.info.supervised_keys[1]]
    classes = int(getattr(label, "num_classes", int(max(arrays[1].max(), arrays[3].max())) + 1))
    return arrays[0], arrays[1], arrays[2], arrays[3], classes
