"""Using a trained model: ``jaxnets.load`` (weights file, preprocessing), ``jaxnets-predict``,
``jaxnets-evaluate`` (the run's last test metrics, exactly) and ``jaxnets.export`` (a ``jax.export`` artifact
called without jaxnets)."""

from __future__ import annotations

import json
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_params
from helpers_train import leaves_equal, offline_env, python
from PIL import Image

import jaxnets
from jaxnets import data, train
from jaxnets.cli import evaluate as evaluate_cli
from jaxnets.cli import predict as predict_cli
from jaxnets.train import TrainConfig, Trained, model_record, read_examples, save_weights


@pytest.fixture(scope="module")
def spirals_run(tmp_path_factory):
    """A 2-epoch mlp run on the embedded spirals, inputs standardised with the training set's statistics."""
    workdir = tmp_path_factory.mktemp("run") / "spirals"
    config = TrainConfig(
        model="mlp", dataset="spirals", epochs=2, batch_size=64, normalisation="standard", workdir=str(workdir)
    )
    result = train.run(config, progress=False, log=lambda line: None)
    return workdir, result


@pytest.fixture
def cli(capsys):
    def call(main, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_load_gives_the_trained_params_and_the_recorded_preprocessing(spirals_run):
    workdir, result = spirals_run
    trained = jaxnets.load(workdir)
    assert leaves_equal(trained.params, result.state.params)
    assert leaves_equal(trained.state, result.state.model_state)
    raw = data.load_raw("spirals")
    pre = trained.preprocessing
    np.testing.assert_allclose(pre.mean, raw.train_x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(pre.std, raw.train_x.std(0), rtol=1e-6)
    prepared = data.prepare(raw, trained.model.input_shape, "standard")
    want, _ = trained.model.apply(result.state.params, result.state.model_state, prepared.test_x)
    np.testing.assert_array_equal(trained.predict(raw.test_x), np.asarray(want))  # raw inputs -> the same outputs
    record = json.loads((workdir / "config.json").read_text())["model"]
    assert record["dataset"] == "spirals" and record["preprocessing"]["mean"] == list(pre.mean)


def test_weights_file_is_plain_safetensors_with_flat_names(spirals_run):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    workdir, result = spirals_run
    tensors = load_file(str(workdir / train.WEIGHTS))  # no jaxnets needed to read it
    assert set(tensors) == {
        "params/hidden1/w",
        "params/hidden1/b",
        "params/hidden2/w",
        "params/hidden2/b",
        "params/out/w",
        "params/out/b",
    }
    np.testing.assert_array_equal(tensors["params/out/w"], np.asarray(result.state.params["out"]["w"]))
    with safe_open(str(workdir / train.WEIGHTS), framework="numpy") as f:
        assert json.loads(f.metadata()["jaxnets"])["name"] == "mlp"
    assert not any("opt" in k or "mu" in k for k in tensors)  # no optimiser state


def test_fit_calls_on_save_after_each_checkpoint(tmp_path):
    import optax

    x = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)
    saved = []
    result = train.fit(
        jaxnets.build("mlp", input_shape=(2,), num_classes=2, hidden=(4,)),
        x,
        (x[:, 0] > 0) * 1,
        optimizer=optax.sgd(0.1),
        epochs=3,
        batch_size=8,
        workdir=tmp_path / "w",
        progress=False,
        log=lambda line: None,
        on_save=lambda state: saved.append(int(state.step)),
    )
    assert saved == [2, 4, 6] and int(result.state.step) == 6


def test_load_falls_back_to_the_checkpoint_without_weights_file(spirals_run, tmp_path):
    workdir, result = spirals_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    (copy / train.WEIGHTS).unlink()
    assert leaves_equal(jaxnets.load(copy).params, result.state.params)
    (copy / "config.json").unlink()
    with pytest.raises(ValueError, match="holds no trained model"):
        jaxnets.load(copy)


def test_evaluate_reproduces_the_last_epochs_test_metrics_exactly(spirals_run, cli):
    workdir, _ = spirals_run
    code, out, err = cli(evaluate_cli.main, "--workdir", str(workdir), "--json")
    assert code == 0, err
    last = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()][-1]
    assert json.loads(out) == {k: v for k, v in last.items() if k.startswith("test_")}
    assert "equal to the run's last recorded test metrics" in err


def test_predict_prints_top_classes_of_npy_files(spirals_run, cli, tmp_path):
    workdir, _ = spirals_run
    points = data.load_raw("spirals").test_x[:3]
    np.save(tmp_path / "points.npy", points)
    np.save(tmp_path / "one.npy", points[0])
    code, out, err = cli(
        predict_cli.main,
        "--workdir",
        str(workdir),
        "--top",
        "1",
        str(tmp_path / "points.npy"),
        str(tmp_path / "one.npy"),
    )
    assert code == 0, err
    probabilities = jaxnets.load(workdir).probabilities(points)
    lines = out.splitlines()
    assert len(lines) == 4
    for line, p in zip(lines, [*probabilities, probabilities[0]], strict=True):
        assert line.endswith(f": {p.argmax()} ({p.max():.4f})")
    np.save(tmp_path / "bad.npy", np.zeros((3, 3), np.float32))
    code, out, err = cli(predict_cli.main, "--workdir", str(workdir), str(tmp_path / "bad.npy"))
    assert code == 2 and "bad.npy: an array of shape (3, 3); the model takes (2,)" in err and len(err.splitlines()) == 1
    code, _, err = cli(predict_cli.main, "--workdir", str(workdir), str(tmp_path / "x.png"))
    assert code == 2 and "not images" in err


def _image_model(tmp_path):
    """A logistic classifier of 8x8 grey images (3 classes) saved as a run would save it, random weights."""
    model = train.build_model("logistic", (8, 8, 1), 3)
    params, state = model_params(model, np.random.default_rng(0))
    pre = data.Preprocessing((8, 8, 1), (8, 8, 1), 255.0, (0.2,), (0.3,))
    record = model_record("logistic", model, (8, 8, 1), 3, {}, "synthetic", pre, class_names=["a", "b", "c"])
    workdir = tmp_path / "image_run"
    workdir.mkdir()
    save_weights(workdir / train.WEIGHTS, params, state, record)
    return workdir


def test_images_are_converted_resized_and_named(tmp_path, cli):
    workdir = _image_model(tmp_path)
    trained = jaxnets.load(workdir)
    rgb = np.random.default_rng(1).integers(0, 256, (16, 12, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    x = read_examples(tmp_path / "img.png", trained.preprocessing)
    want = np.asarray(Image.fromarray(rgb).convert("L").resize((8, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(x, want[None, :, :, None])
    np.testing.assert_array_equal(read_examples(tmp_path / "img.png", trained.preprocessing, invert=True), 255 - x)
    code, out, err = cli(predict_cli.main, "--workdir", str(workdir), str(tmp_path / "img.png"))
    assert code == 0, err
    p = trained.probabilities(x)[0]
    names = "abc"
    assert out.strip() == f"{tmp_path / 'img.png'}: " + ", ".join(f"{names[c]} ({p[c]:.4f})" for c in p.argsort()[::-1])
    (tmp_path / "junk.png").write_bytes(b"not an image")
    code, _, err = cli(predict_cli.main, "--workdir", str(workdir), str(tmp_path / "junk.png"))
    assert code == 2 and "junk.png: not a readable image" in err


EXPORTED_CALL = """
import sys, numpy as np, jax
exported = jax.export.deserialize(bytearray(open(sys.argv[1], 'rb').read()))
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(exported.call(x)))
assert not any(m.startswith('jaxnets') for m in sys.modules), 'jaxnets was imported'
"""


def test_export_is_callable_without_jaxnets_at_any_batch_size(tmp_path):
    model = jaxnets.build("lenet5_modern")  # convolutions ('auto' strategy), pooling, dense
    params, state = model_params(model, np.random.default_rng(0))
    trained = Trained(model, params, state, None, None, {"name": model.name})
    path = jaxnets.export(trained, tmp_path / "lenet.jaxexport")
    exported = jax.export.deserialize(bytearray(path.read_bytes()))
    x = np.random.default_rng(1).standard_normal((7, *model.input_shape)).astype(np.float32)
    for n in (1, 7):
        want, _ = model.apply(params, state, jnp.asarray(x[:n]))
        np.testing.assert_allclose(np.asarray(exported.call(x[:n])), np.asarray(want), rtol=1e-5, atol=1e-5)
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [python(), "-c", EXPORTED_CALL, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        check=True,
        env=offline_env(),
        cwd=tmp_path,
        timeout=300,
    )
    want, _ = model.apply(params, state, jnp.asarray(x))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_export_of_a_workdir(spirals_run, tmp_path):
    workdir, _ = spirals_run
    trained = jaxnets.load(workdir)
    exported = jax.export.deserialize(bytearray(jaxnets.export(workdir, tmp_path / "m").read_bytes()))
    x = trained.preprocessing(data.load_raw("spirals").test_x[:5])
    np.testing.assert_allclose(
        np.asarray(exported.call(x)), trained.model.apply(trained.params, trained.state, x)[0], rtol=1e-6, atol=1e-6
    )
