"""Data: embedded toy sets, normalisation and padding, on-device batching and masks, fast offline failure."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers_train import closed_port

from jaxnets import data
from jaxnets.data import tfds_source


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
