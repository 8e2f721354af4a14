"""Data: embedded toy sets, normalisation and padding, on-device batching and masks, fast offline failure, and the
classic image sets read from their source files without TensorFlow, as TFDS gives them."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import importlib.util
import io
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers_train import MNIST_DIR, closed_port, offline_env

from jaxnets import data
from jaxnets.data import formats, tfds_source

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").exists(), reason=f"the MNIST files are not in {MNIST_DIR}"
)
needs_tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed (pip install 'jaxnets[tfds]')"
)


def test_xor_is_the_four_points():
    x, y = data.xor()
    assert x.shape == (4, 2) and x.dtype == np.float32
    assert y.tolist() == [int(a != b) for a, b in x.astype(int)]


def test_spirals_deterministic_balanced_and_bounded():
    x1, y1 = data.spirals(256)
    x2, y2 = data.spirals(256)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert x1.shape == (256, 2) and y1.sum() == 128 and np.abs(x1).max() < 1.5
    assert not np.array_equal(x1, data.spirals(256, seed=1)[0])


@pytest.mark.parametrize("name,n_train,n_test", [("xor", 4, 4), ("spirals", 512, 512)])
def test_embedded_datasets_load_without_files(name, n_train, n_test):
    ds = data.load(name)
    assert (len(ds.train_x), len(ds.test_x), ds.num_classes, ds.input_shape) == (n_train, n_test, 2, (2,))
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32


def _fake_images(n=20, size=28, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 1), dtype=np.uint8)
    return data.Dataset("fake", x, rng.integers(0, 10, n).astype(np.int32), x[:5], np.zeros(5, np.int32), 10)


def test_lenet1998_normalisation_pads_raw_pixels_as_background():
    ds = data.prepare(_fake_images(), (32, 32, 1), "lenet1998")
    assert ds.input_shape == (32, 32, 1)
    np.testing.assert_allclose(ds.train_x[:, :2], -0.1, atol=1e-6)  # the 2-pixel border is background
    np.testing.assert_allclose(ds.train_x[:, :, -2:], -0.1, atol=1e-6)
    assert ds.train_x.min() == pytest.approx(-0.1, abs=1e-6) and ds.train_x.max() == pytest.approx(1.175, abs=1e-5)


def test_standard_normalisation_has_zero_mean_unit_std_on_train():
    ds = data.prepare(_fake_images(200), None, "standard")
    assert abs(ds.train_x.mean()) < 1e-3 and abs(ds.train_x.std() - 1) < 1e-3
    assert ds.train_x.dtype == np.float32


def test_standard_statistics_of_uint8_images_per_channel_equal_numpys():
    x = np.random.default_rng(3).integers(0, 256, (50, 6, 5, 3), dtype=np.uint8)
    x[..., 2] //= 4  # channels of different spread
    raw = data.Dataset("fake", x, np.zeros(50, np.int32), x[:5], np.zeros(5, np.int32), 10)
    pre = data.preprocessing(raw, (6, 5, 3), "standard")  # (from a histogram of the 256 values per channel)
    np.testing.assert_allclose(pre.mean, x.mean((0, 1, 2)) / 255, rtol=1e-12)
    np.testing.assert_allclose(pre.std, x.std((0, 1, 2)) / 255, rtol=1e-9)


def test_prepare_rejects_examples_that_do_not_fit():
    with pytest.raises(ValueError, match="do not fit"):
        data.prepare(_fake_images(size=36), (32, 32, 1))
    with pytest.raises(ValueError, match="normalisation"):
        data.prepare(_fake_images(), None, "zscore")


def test_epoch_batches_permute_and_drop_the_remainder():
    b = np.asarray(data.epoch_batches(jax.random.PRNGKey(0), 1000, 128))
    assert b.shape == (7, 128) and data.steps_per_epoch(1000, 128) == 7
    assert len(set(b.ravel().tolist())) == 7 * 128 and b.max() < 1000
    assert not np.array_equal(b, np.asarray(data.epoch_batches(jax.random.PRNGKey(1), 1000, 128)))


def test_padded_batches_count_every_example_exactly_once():
    x = jnp.arange(1003, dtype=jnp.float32)[:, None]
    bx, by, mask = data.padded_batches(x, jnp.arange(1003), 100)
    assert bx.shape == (11, 100, 1) and by.shape == (11, 100) and int(mask.sum()) == 1003
    seen = np.asarray(by)[np.asarray(mask)]
    assert sorted(seen.tolist()) == list(range(1003))


def test_download_hosts_from_registered_urls(monkeypatch):
    monkeypatch.delenv(tfds_source.PROBE_ENV, raising=False)
    urls = ["https://a.example/x.gz", "https://a.example/y.gz", "http://b.example:8080/z"]
    assert tfds_source.download_hosts(urls) == [("a.example", 443), ("b.example", 8080)]
    monkeypatch.setenv(tfds_source.PROBE_ENV, "127.0.0.1:1234")
    assert tfds_source.download_hosts(urls) == [("127.0.0.1", 1234)]


def test_unprepared_dataset_without_files_or_network_fails_fast_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv(tfds_source.PROBE_ENV, f"127.0.0.1:{closed_port()}")
    monkeypatch.delenv(tfds_source.MANUAL_DIR_ENV, raising=False)
    start = time.perf_counter()
    with pytest.raises(data.DataUnavailable) as err:
        data.load("mnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path))  # an empty manual dir
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "\n" not in message and "mnist is not prepared" in message and "--manual-dir" in message
    assert "train-images-idx3-ubyte.gz" in message and "JAXNETS_MANUAL_DIR" in message and "lacks" in message


def test_unknown_tfds_name_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("no_such_dataset_xyz", data_dir=str(tmp_path))


# --- the classic image sets read from their source files, without TensorFlow --------------------------------------


def _idx(a: np.ndarray) -> bytes:
    """``a`` (uint8) as an IDX file."""
    return bytes([0, 0, 0x08, a.ndim]) + np.asarray(a.shape, ">i4").tobytes() + a.astype(np.uint8).tobytes()


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28x28 images whose first pixel encodes the label, so a reader that separates them shows it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    x[:, 0, 0] = 7 * y
    return x, y


def test_tfds_order_is_tfds_hash_order():
    from tensorflow_datasets.core import hashing  # TFDS's own key hasher (pure Python: no TensorFlow)

    for split, n in (("train", 1000), ("test", 37)):
        order = formats.tfds_order(n, split)
        assert order.tolist() == sorted(range(n), key=hashing.Hasher(split).hash_key)
    assert sorted(formats.tfds_order(1000, "train").tolist()) == list(range(1000))
    assert not np.array_equal(formats.tfds_order(1000, "train"), formats.tfds_order(1000, "test"))


def test_idx_files_read_in_tfds_order_with_labels_kept_with_their_images(tmp_path):
    files = {}
    raw = {}
    for split, prefix, n in (("train", "train", 300), ("test", "t10k", 50)):
        x, y = raw[split] = _digits(n, seed=n)
        for kind, a in (("images-idx3", x), ("labels-idx1", y)):
            path = files[f"{prefix}-{kind}-ubyte.gz"] = tmp_path / f"{prefix}-{kind}-ubyte.gz"
            path.write_bytes(gzip.compress(_idx(a)))
    train_x, train_y, test_x, test_y = formats.read("fashion_mnist", None, files)
    for (x, y), got_x, got_y, split in (
        (raw["train"], train_x, train_y, "train"),
        (raw["test"], test_x, test_y, "test"),
    ):
        order = formats.tfds_order(len(x), split)
        assert got_x.shape == (*x.shape, 1) and got_x.dtype == np.uint8 and got_y.dtype == np.int32
        np.testing.assert_array_equal(got_x[..., 0], x[order])
        np.testing.assert_array_equal(got_y, y[order])
        np.testing.assert_array_equal(got_x[:, 0, 0, 0], 7 * got_y)


def test_idx_reader_rejects_what_is_not_idx():
    with pytest.raises(ValueError, match="not an IDX file"):
        formats.read_idx(b"\x1f\x8b\x08\x00")
    with pytest.raises(ValueError, match=r"IDX file of shape \(3,\) holds 2 values"):
        formats.read_idx(_idx(np.arange(3, dtype=np.uint8))[:-1])


def test_emnist_is_read_from_its_zip_by_config(tmp_path):
    zipped = tmp_path / "gzip.zip"
    raw = {split: _digits(n, seed=n) for split, n in (("train", 40), ("test", 10))}
    with zipfile.ZipFile(zipped, "w") as z:
        for split, (x, y) in raw.items():
            z.writestr(f"gzip/emnist-letters-{split}-images-idx3-ubyte.gz", gzip.compress(_idx(x)))
            z.writestr(f"gzip/emnist-letters-{split}-labels-idx1-ubyte.gz", gzip.compress(_idx(y)))
    got = formats.read("emnist", "letters", {"gzip.zip": zipped})
    for (x, y), got_x, got_y, split in ((raw["train"], *got[:2], "train"), (raw["test"], *got[2:], "test")):
        order = formats.tfds_order(len(y), split)
        np.testing.assert_array_equal(got_x[..., 0], x[order])
        np.testing.assert_array_equal(got_y, y[order])
    with pytest.raises(KeyError):
        formats.read("emnist", "digits", {"gzip.zip": zipped})


def _cifar_records(n: int, label_bytes: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """CIFAR binary records: labels, then each image channel-major (3, 32, 32); and the (n, 32, 32, 3) images."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 100, (n, label_bytes)).astype(np.uint8)
    chw = rng.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    raw = b"".join(labels[i].tobytes() + chw[i].tobytes() for i in range(n))
    return raw, labels[:, -1], chw.transpose(0, 2, 3, 1)


def _tarball(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_tarballs_read_channels_last_with_the_fine_label(tmp_path, name):
    if name == "cifar10":
        batches = [_cifar_records(20, 1, seed) for seed in range(6)]
        members = {f"cifar-10-batches-bin/data_batch_{i}.bin": batches[i - 1][0] for i in range(1, 6)}
        members["cifar-10-batches-bin/test_batch.bin"] = batches[5][0]
        train, test = batches[:5], batches[5:]
        archive = "cifar-10-binary.tar.gz"
    else:
        train, test = [_cifar_records(30, 2, 0)], [_cifar_records(10, 2, 1)]
        members = {"cifar-100-binary/train.bin": train[0][0], "cifar-100-binary/test.bin": test[0][0]}
        archive = "cifar-100-binary.tar.gz"
    _tarball(tmp_path / archive, members)
    got = formats.read(name, None, {archive: tmp_path / archive})
    for batches, x, y, split in ((train, got[0], got[1], "train"), (test, got[2], got[3], "test")):
        want_y, want_x = np.concatenate([b[1] for b in batches]), np.concatenate([b[2] for b in batches])
        order = formats.tfds_order(len(want_y), split)
        assert x.shape == (len(want_y), 32, 32, 3) and x.dtype == np.uint8
        np.testing.assert_array_equal(x, want_x[order])
        np.testing.assert_array_equal(y, want_y[order])


@needs_tensorflow
def test_cifar_records_decode_as_tfds_decodes_them(tmp_path):
    from tensorflow_datasets.image_classification import cifar  # TFDS's reader (through tf.io.gfile)

    raw, _, _ = _cifar_records(5, 2, seed=3)
    (tmp_path / "b.bin").write_bytes(raw)
    theirs = list(cifar._load_data(str(tmp_path / "b.bin"), 2))
    x, y = formats.read_cifar_batches([raw], 2)
    np.testing.assert_array_equal(x, np.stack([img for _, img in theirs]))
    np.testing.assert_array_equal(y, [labels[1] for labels, _ in theirs])


@pytest.mark.slow
@needs_mnist
@needs_tensorflow
def test_mnist_read_without_tensorflow_equals_tfds_and_tfds_bars_follow_progress(tmp_path, capfd):
    tfds = tfds_source._quiet_tfds(progress=False)
    builder = tfds.builder("mnist", data_dir=str(tmp_path))
    capfd.readouterr()
    theirs = tfds_source.read_with_tensorflow(tfds, builder, "mnist", str(tmp_path), str(MNIST_DIR))
    err = capfd.readouterr().err
    assert "examples/s" not in err and "%|" not in err, f"TFDS drew progress bars with progress=False:\n{err[-500:]}"
    ours = data.load_raw("mnist", data_dir=str(tmp_path / "unused"), manual_dir=str(MNIST_DIR))
    assert ours.num_classes == 10
    for mine, tfds_array in zip((ours.train_x, ours.train_y, ours.test_x, ours.test_y), theirs, strict=True):
        assert mine.shape == tfds_array.shape and mine.dtype == tfds_array.dtype
        np.testing.assert_array_equal(mine, tfds_array)


@needs_mnist
def test_loading_and_training_on_mnist_does_not_import_tensorflow(tmp_path):
    script = f"""
import sys
import optax
import jaxnets
ds = jaxnets.data.load('mnist', manual_dir={str(MNIST_DIR)!r}, data_dir={str(tmp_path)!r})
model = jaxnets.build('mlp', input_shape=ds.input_shape, num_classes=ds.num_classes, hidden=(32,))
jaxnets.train.fit(model, ds.train_x[:512], ds.train_y[:512], optimizer=optax.sgd(0.1), epochs=1, batch_size=64)
assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if m.startswith('tensorflow'))
print('ok', ds.train_x.shape)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=offline_env()
    )
    assert proc.returncode == 0 and "ok (60000, 28, 28, 1)" in proc.stdout, proc.stderr[-3000:]


def test_other_tfds_sets_without_tensorflow_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "_has_tensorflow", lambda: False)
    with pytest.raises(data.DataUnavailable) as err:
        data.load("svhn_cropped", data_dir=str(tmp_path), manual_dir=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and "TensorFlow, which is not installed: pip install 'jaxnets[tfds]'" in message
    assert "mnist" in message and "cifar10" in message


def test_a_partial_manual_dir_is_checked_then_completed_by_download_only_when_reachable(tmp_path, monkeypatch):
    monkeypatch.setenv(tfds_source.PROBE_ENV, f"127.0.0.1:{closed_port()}")
    (tmp_path / "man").mkdir()
    (tmp_path / "man" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")  # damaged: named first
    with pytest.raises(data.DataUnavailable, match=r"t10k-labels-idx1-ubyte.gz is not the file kmnist needs"):
        data.load_raw("kmnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "man"))
    (tmp_path / "man" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        data.DataUnavailable,
        match=r"kmnist is not prepared in \S+downloads .* lacks "
        r"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz",
    ):
        data.load_raw("kmnist", data_dir=str(tmp_path / "tfds"), manual_dir=str(tmp_path / "man"))


def test_missing_files_are_downloaded_by_tfds_then_read_from_its_cache_offline(tmp_path, monkeypatch, capfd):
    """TFDS's download manager fetches the registered files (here from a local server) and checks their SHA-256; a
    second load reads its cache without the network; progress=False keeps its bars quiet."""
    from tensorflow_datasets.core.download.checksums import UrlInfo

    served = tmp_path / "served"
    served.mkdir()
    raw, url_infos = {}, {}
    for split, prefix, n in (("train", "train", 60), ("test", "t10k", 20)):
        raw[split] = _digits(n, seed=n)
        for kind, a in zip(("images-idx3", "labels-idx1"), raw[split], strict=True):
            name = f"{prefix}-{kind}-ubyte.gz"
            payload = gzip.compress(_idx(a))
            (served / name).write_bytes(payload)
            url_infos[name] = UrlInfo(size=len(payload), checksum=hashlib.sha256(payload).hexdigest(), filename=name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    builder = SimpleNamespace(
        name="fashion_mnist",
        data_dir_root=str(tmp_path / "unused"),
        url_infos={f"http://{host}:{port}/{k}": v for k, v in url_infos.items()},
    )
    tfds = tfds_source._quiet_tfds(progress=False)
    monkeypatch.setenv(tfds_source.PROBE_ENV, f"{host}:{port}")
    try:
        capfd.readouterr()
        files = tfds_source.source_files(tfds, builder, "fashion_mnist", str(tmp_path / "tfds"), None)
        assert "%|" not in capfd.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
    assert all(path.parent == tmp_path / "tfds" / "downloads" / "fashion_mnist" for path in files.values()), files
    got = formats.read("fashion_mnist", None, files)
    np.testing.assert_array_equal(got[1], raw["train"][1][formats.tfds_order(60, "train")])
    monkeypatch.setenv(tfds_source.PROBE_ENV, f"127.0.0.1:{closed_port()}")  # a probe now would fail: none is made
    assert tfds_source.source_files(tfds, builder, "fashion_mnist", str(tmp_path / "tfds"), None) == files
