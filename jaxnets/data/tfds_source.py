"""TFDS datasets into numpy, without TensorFlow for the classic image sets, failing fast and in one line.

TFDS is the catalogue: names, registered download URLs, file names, sizes and SHA-256 checksums, class counts, the
manual-dir convention and the download manager, none of which needs TensorFlow. The sets ``formats`` can read
(MNIST, Fashion-MNIST, KMNIST, EMNIST, CIFAR-10/100) are read from their source files: those in the manual dir
(checked against the registered size and checksum first), else TFDS's download cache, else downloaded by TFDS's
``DownloadManager`` (which checks them too). Every other dataset is prepared and read by TFDS itself, which needs
TensorFlow (``pip install 'jaxnets[tfds]'``). TFDS on its own retries a missing download for minutes; before
downloading we check that the dataset's hosts answer a TCP connect within a short timeout, and otherwise raise
``DataUnavailable`` in one line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import socket
import threading
import urllib.parse
from pathlib import Path

import numpy as np

from jaxnets._names import unknown
from jaxnets.data import formats
from jaxnets.data.base import DATASETS, MANUAL_DIR_ENV, TFDS, DataUnavailable

PROBE_ENV = "JAXNETS_DOWNLOAD_PROBE"  # "host:port" probed instead of the dataset's hosts (tests use a closed port)
PROBE_TIMEOUT_ENV = "JAXNETS_PROBE_TIMEOUT"  # seconds, default 3
EXTRA = "jaxnets[tfds]"  # the install extra that brings TensorFlow

__all__ = [
    "EXTRA",
    "MANUAL_DIR_ENV",
    "PROBE_ENV",
    "DataUnavailable",
    "check_source_files",
    "download_hosts",
    "load_tfds",
]


def _quiet_tfds(progress: bool = True):
    """Import tensorflow_datasets (which imports TensorFlow only when it prepares or reads a dataset itself) with
    absl logging quietened and its progress bars on or off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    import tensorflow_datasets as tfds

    tfds.display_progress_bar(progress)
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


def _filename(url: str, info) -> str:
    """The name TFDS registers for the source file at ``url`` (the manual-dir convention)."""
    return info.filename or Path(urllib.parse.urlsplit(url).path).name


def check_source_files(name: str, manual_dir: Path, url_infos) -> None:
    """``DataUnavailable`` in one line if a source file in ``manual_dir`` is not the one TFDS registered for dataset
    ``name`` (size, then SHA-256): truncated, damaged, or another file under that name. Files not in ``manual_dir``
    are skipped; checked before anything is read or prepared, so a bad file leaves nothing half-prepared behind."""
    for url, info in url_infos.items():
        path = manual_dir / _filename(url, info)
        if not path.is_file():
            continue
        size, want = path.stat().st_size, int(info.size) if info.size else None
        checksum = _sha256(path) if info.checksum and (want is None or size == want) else None
        if (want is not None and size != want) or (checksum is not None and checksum != info.checksum):
            got = f"{size:,} bytes" + (f" with SHA-256 {checksum[:16]}..." if checksum else "")
            expected = (f"{want:,} bytes" if want is not None else "") + (
                f" with SHA-256 {info.checksum[:16]}..." if info.checksum else ""
            )
            why = "truncated" if want is not None and size < want else "damaged, or another file under that name"
            raise DataUnavailable(
                f"{path} is not the file {name} needs: it has {got} where TFDS expects "
                f"{expected.strip()} (it is {why}): put the original from {url} there, or remove "
                "it to let TFDS download it"
            )


def _require_download(name: str, where: Path | str, manual_dir: str | None, url_infos, missing: list[str]) -> None:
    """``DataUnavailable`` in one line, within seconds, unless every host serving ``name``'s files answers."""
    timeout = float(os.environ.get(PROBE_TIMEOUT_ENV, "3"))
    down = [f"{h}:{p}" for h, p in download_hosts(url_infos) if not _reachable(h, p, timeout)]
    if down or not url_infos:
        files = [_filename(url, info) for url, info in url_infos.items()]
        held = f"{manual_dir} lacks {', '.join(missing)}" if manual_dir else "no manual dir was given"
        raise DataUnavailable(
            f"{name} is not prepared in {where} and its source files could not be downloaded "
            f"({', '.join(down) or 'no registered URLs'} unreachable; {held}): pass --manual-dir DIR holding "
            f"{', '.join(files) or 'the source files'}, or set {MANUAL_DIR_ENV}=DIR"
        )


def _builder(tfds, name: str, data_dir: str | None):
    """TFDS's builder for ``name`` (nothing is read or imported from TensorFlow); ``ValueError`` if none."""
    try:
        return tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError):  # (ValueError: not even a valid TFDS name)
        choices = dict.fromkeys([*DATASETS, *tfds.list_builders(with_community_datasets=False)])
        embedded = ", ".join(k for k in DATASETS if k not in TFDS)
        raise ValueError(
            unknown(
                "dataset",
                name,
                choices,
                f"TFDS has no builder of that name, and the embedded sets are {embedded} (see --list-datasets)",
            )
        ) from None


def label_names(name: str, data_dir: str | None = None) -> list[str] | None:
    """The names of a TFDS dataset's classes, in label order, as its builder declares them before any download
    (nothing is read); None when they are only the indices or there is no such builder."""
    tfds = _quiet_tfds(False)
    try:
        builder = _builder(tfds, name, data_dir)
        label = builder.info.features[builder.info.supervised_keys[1]]
    except (ValueError, KeyError, TypeError, IndexError):
        return None
    names = list(getattr(label, "names", None) or [])
    return names if names and names != [str(i) for i in range(len(names))] else None  # (bare indices say nothing)


def source_files(tfds, builder, name: str, data_dir: str | None, manual_dir: str | None) -> dict[str, Path]:
    """The paths of ``name``'s source files by registered file name: from ``manual_dir`` when there (checked first),
    else from TFDS's download dir, downloading with TFDS's ``DownloadManager`` what is not there yet."""
    from tensorflow_datasets.core.download import resource

    url_infos = builder.url_infos or {}
    if manual_dir:
        check_source_files(name, Path(manual_dir), url_infos)
    local = {
        _filename(url, info): Path(manual_dir) / _filename(url, info)
        for url, info in url_infos.items()
        if manual_dir and (Path(manual_dir) / _filename(url, info)).is_file()
    }
    if url_infos and len(local) == len(url_infos):
        return local
    download_dir = Path(data_dir or builder.data_dir_root) / "downloads"
    # Where TFDS's DownloadManager keeps a verified download: downloads/<builder>/<url and checksum>, as when TFDS
    # prepares the dataset itself (or downloads/<url and checksum>, its older layout).
    cache = [
        [folder / resource.get_dl_fname(url, info.checksum) for folder in (download_dir / builder.name, download_dir)]
        for url, info in url_infos.items()
    ]
    if not all(any(path.is_file() for path in paths) for paths in cache):
        missing = [f for f in (_filename(url, info) for url, info in url_infos.items()) if f not in local]
        _require_download(name, download_dir, manual_dir, url_infos, missing)
    manager = tfds.download.DownloadManager(
        download_dir=download_dir,
        manual_dir=manual_dir,
        url_infos=url_infos,
        dataset_name=builder.name,
        force_checksums_validation=True,
    )
    try:
        paths = manager.download(list(url_infos))
    except Exception as e:  # a failed download, or a file that is not the registered one
        lines = str(e).strip().splitlines() or [type(e).__name__]
        raise DataUnavailable(
            f"downloading {name} into {download_dir} failed ({type(e).__name__}: {' '.join(lines[:3])})"
        ) from e
    return {_filename(url, info): Path(path) for (url, info), path in zip(url_infos.items(), paths, strict=True)}


def _has_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def read_with_tensorflow(
    tfds, builder, name: str, data_dir: str | None, manual_dir: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Prepare ``name`` with TFDS if needed (from ``manual_dir`` or by downloading) and read both splits whole
    through TensorFlow: (train_x, train_y int32, test_x, test_y)."""
    if not _has_tensorflow():
        raise DataUnavailable(
            f"{name} is read by TFDS through TensorFlow, which is not installed: pip install "
            f"'{EXTRA}' (without it: {', '.join(formats.READABLE)} and the embedded sets)"
        )
    where = builder.data_dir if data_dir is None else data_dir
    if not builder.is_prepared():
        url_infos = builder.url_infos or {}
        files = [_filename(url, info) for url, info in url_infos.items()]
        missing = [f for f in files if not (manual_dir and (Path(manual_dir) / f).is_file())]
        if missing or not files:
            _require_download(name, where, manual_dir, url_infos, missing)
        if manual_dir:
            check_source_files(name, Path(manual_dir), url_infos)
        config = tfds.download.DownloadConfig(manual_dir=manual_dir, try_download_gcs=False)
        _hide_gpus_from_tensorflow()
        try:
            builder.download_and_prepare(download_config=config)
        except Exception as e:  # a wrong or damaged source file (TFDS checks checksums), a failed download
            lines = str(e).strip().splitlines() or [type(e).__name__]
            raise DataUnavailable(
                f"preparing {name} in {where} failed ({type(e).__name__}: {' '.join(lines[:3])})"
                + (f": check the files in {manual_dir}" if manual_dir else "")
            ) from e
    _hide_gpus_from_tensorflow()
    splits = builder.info.splits
    if "train" not in splits or "test" not in splits:
        raise ValueError(f"dataset {name!r} needs 'train' and 'test' splits; it has {list(splits)}")
    arrays = []
    for split in ("train", "test"):
        x, y = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        arrays += [np.asarray(x), np.asarray(y, dtype=np.int32)]
    return arrays[0], arrays[1], arrays[2], arrays[3]


def load_tfds(
    name: str, data_dir: str | None = None, manual_dir: str | None = None, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Read a TFDS image-classification dataset whole: (train_x uint8, train_y int32, test_x, test_y, classes).

    The sets in ``formats.READABLE`` are read from their source files without TensorFlow: from ``manual_dir`` (or
    ``$JAXNETS_MANUAL_DIR``) or TFDS's download dir under ``data_dir``, downloading what is missing. Others are
    prepared and read by TFDS through TensorFlow (the ``jaxnets[tfds]`` extra). ``progress``: TFDS's progress bars
    while downloading or preparing. Raises ``DataUnavailable`` with a one-line explanation, within seconds, when the
    data cannot be had.
    """
    tfds = _quiet_tfds(progress)
    manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV) or None
    builder = _builder(tfds, name, data_dir)
    supervised = builder.info.supervised_keys
    if not supervised:
        raise ValueError(f"dataset {name!r} has no supervised (input, label) pairs; jaxnets reads those")
    if builder.name in formats.READABLE:
        config = builder.builder_config.name if builder.builder_config else None
        arrays = formats.read(builder.name, config, source_files(tfds, builder, name, data_dir, manual_dir))
    else:
        arrays = read_with_tensorflow(tfds, builder, name, data_dir, manual_dir)
    label = builder.info.features[supervised[1]]
    classes = int(getattr(label, "num_classes", int(max(arrays[1].max(), arrays[3].max())) + 1))
    return (*arrays, classes)
