"""The CLI inside the package: flags made from TrainConfig, --model-arg, --print-config, WORKDIR/config.json and
--config, library parameters translated to flags, JAX_PLATFORMS and --temperature refused in one line, the entry
points. Commands run in this process (their ``main``) except where a fresh process is the point."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
import tomllib

import jax
import pytest
from helpers_train import REPO, in_process_cli, leaves_equal, offline_env, one_line, python

import jaxnets
from jaxnets import data, train
from jaxnets.cli import _common, sample, summary
from jaxnets.cli import train as train_cli

XOR_RUN = ["--model", "mlp", "--dataset", "xor", "--epochs", "2", "--no-progress"]


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(main, *args) -> (exit code, stdout, stderr)``: a command's main in this process, offline."""
    return in_process_cli(capsys, monkeypatch)


def state_of(workdir) -> train.TrainState:
    """The checkpointed state of an XOR_RUN-like run (mlp, adam... whatever its config.json says)."""
    config = json.loads((workdir / "config.json").read_text())["config"]
    model = train.build_model("mlp", (2,), 2, config["model_args"])
    optimizer = train.make_optimizer(
        config["optimizer"], config["lr"], config["momentum"], config["weight_decay"], config["schedule"], total_steps=1
    )
    template = train.create_train_state(model, optimizer, jax.random.PRNGKey(0))
    return train.load_checkpoint(workdir / train.CHECKPOINT, template)[0]


# --- flags from the dataclass ---------------------------------------------------------------------------------------


def test_every_config_field_has_a_flag_with_its_help_and_type():
    parser = train_cli.parser("train.py")
    actions = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(train.TrainConfig):
        action = actions[f.name]
        assert action.help.startswith(f.metadata["help"]), f.name
        flag = "--" + f.metadata.get("flag", f.name).replace("_", "-")
        assert flag in action.option_strings, (f.name, action.option_strings)
        for choice in f.metadata.get("choices", ()):
            assert choice in action.help
    args = parser.parse_args(["--epochs", "3", "--lr", "0.5", "--resume", "--batch-size", "8", "--model-arg", "a=1"])
    assert (args.epochs, args.lr, args.resume, args.batch_size, args.model_args) == (3, 0.5, True, 8, [("a", 1)])
    assert not hasattr(args, "momentum") and not hasattr(args, "overwrite")  # unset flags stay out: --config fills
    assert train_cli.config_of(parser.parse_args([])) == train.TrainConfig()


def test_model_arg_values_are_json_ish():
    parse = _common.model_arg
    assert parse("batch_norm=true") == ("batch_norm", True) and parse("small_input=False") == ("small_input", False)
    assert parse("hidden=[64, 32]") == ("hidden", [64, 32]) == parse("hidden=64,32")
    assert parse("hidden=64,") == ("hidden", [64])
    assert parse("dropout=0.25") == ("dropout", 0.25) and parse("width=2") == ("width", 2)
    assert parse("layout=paper") == ("layout", "paper") and parse('cell="gru"') == ("cell", "gru")
    assert parse("hidden=null") == ("hidden", None)
    for bad in ("batch_norm", "=3", "two words=1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=VALUE"):
            parse(bad)


def test_model_args_reach_the_builder():
    xor = data.load_raw("xor")
    mlp = train.build_for("mlp", xor, {"hidden": [5, 3]})
    params, _ = jax.eval_shape(mlp.init, jax.random.PRNGKey(0))
    assert [params[k]["w"].shape for k in ("hidden1", "hidden2")] == [(2, 5), (5, 3)]
    assert jaxnets.num_params(train.build_model("resnet20", (32, 32, 3), 10, {"shortcut": "B"})) == 272_474
    assert jaxnets.num_params(train.build_model("resnet20", (32, 32, 3), 10)) == 269_722
    plain, bn = (train.build_model("vgg11", (32, 32, 3), 10, args) for args in ({}, {"batch_norm": True}))
    states = [jax.eval_shape(m.init, jax.random.PRNGKey(0))[1] for m in (plain, bn)]
    assert not jax.tree.leaves(states[0]) and jax.tree.leaves(states[1])  # batch norm: running statistics
    assert set(train.model_options("googlenet")) >= {"layout", "small_input", "width", "dropout"}
    assert {"cell", "hidden", "layers", "dropout"} <= set(train.model_options("lstm"))  # via sequence_classifier
    paper = train.build_model("googlenet", (32, 32, 3), 10, {"layout": "paper"})
    assert jaxnets.num_params(paper) != jaxnets.num_params(train.build_model("googlenet", (32, 32, 3), 10))


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--model", "vgg11", "--model-arg", "batchnorm=true"],
            "--model-arg: unknown vgg11 option 'batchnorm' (did you mean batch_norm?); vgg11 takes batch_norm, "
            "dropout, hidden, small_input, widths",
        ),
        (
            ["--model", "vgg11", "--model-arg", "batch_norm=yes"],
            "--model-arg: vgg11 option batch_norm takes bool; got 'yes'",
        ),
        (
            ["--model", "mlp", "--model-arg", "hidden=[64, 0.5]"],
            "--model-arg: mlp option hidden takes Sequence[int]; got [64, 0.5]",
        ),
        (
            ["--model", "mlp", "--model-arg", "hidden=4"],
            "--model-arg: mlp option hidden takes Sequence[int]; got 4 (a list: [4])",
        ),
        (["--model", "resnet20", "--model-arg", "input_shape=[8, 8, 3]"], "unknown resnet20 option 'input_shape'"),
        (["--model", "perceptron", "--model-arg", "hidden=3"], "perceptron takes no options"),
    ],
)
def test_bad_model_args_are_one_line_naming_what_is_accepted(cli, tmp_path, args, message):
    code, out, err = cli(train_cli.main, *args, "--print-config", "--workdir", str(tmp_path / "run"))
    assert code == 2 and not out and message in one_line(err)


def test_print_config_prints_the_resolved_config_and_runs_nothing(cli, tmp_path):
    code, out, err = cli(
        train_cli.main, *XOR_RUN, "--model-arg", "hidden=[8]", "--workdir", str(tmp_path / "run"), "--print-config"
    )
    assert code == 0, err
    printed = json.loads(out)
    want = train.TrainConfig(
        model="mlp", dataset="xor", epochs=2, workdir=str(tmp_path / "run"), model_args={"hidden": [8]}
    ).resolved()
    assert printed == want.to_dict() and printed["normalisation"] == "none" and printed["lr"] == 0.1
    assert not (tmp_path / "run").exists()


def test_a_run_records_its_config_and_config_reruns_it_to_the_same_params(cli, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    code, _, err = cli(train_cli.main, *XOR_RUN, "--model-arg", "hidden=[8]", "--workdir", str(first))
    assert code == 0, err
    record = json.loads((first / "config.json").read_text())
    assert set(record) == {"config", "versions", "devices", "model"}  # model: what jaxnets.load rebuilds it from
    assert record["model"]["name"] == "mlp" and record["model"]["model_args"] == {"hidden": [8]}
    config = record["config"]
    assert (
        config
        == train.TrainConfig(model="mlp", dataset="xor", epochs=2, workdir=str(first), model_args={"hidden": [8]})
        .resolved()
        .to_dict()
    )
    assert config["normalisation"] == "none"  # what the embedded sets use, recorded as such
    assert record["versions"]["jax"] == jax.__version__ and record["versions"]["jaxnets"] == jaxnets.__version__
    assert record["devices"]["platform"] == jax.devices()[0].platform
    assert record["devices"]["count"] == jax.device_count()
    assert not list(first.glob("*.tmp"))

    code, _, err = cli(
        train_cli.main, "--config", str(first / "config.json"), "--workdir", str(second), "--no-progress"
    )
    assert code == 0, err
    again = json.loads((second / "config.json").read_text())["config"]
    assert again == {**config, "workdir": str(second)}
    assert leaves_equal(state_of(first).params, state_of(second).params)  # same config, same seed: the same run

    code, out, _ = cli(
        train_cli.main,
        "--config",
        str(first / "config.json"),
        "--epochs",
        "5",
        "--model-arg",
        "activation=tanh",
        "--print-config",
    )  # flags override the file; model options merge
    assert code == 0
    assert json.loads(out) == {**config, "epochs": 5, "model_args": {"hidden": [8], "activation": "tanh"}}


@pytest.mark.parametrize(
    "content,message",
    [
        ({"model": "mlp", "learning_rate": 0.1}, "unknown config key 'learning_rate'"),
        ({"model": "mlp", "epochs": "ten"}, "c.json: epochs takes int | None; got 'ten'"),
        ({"model_args": ["hidden", 3]}, "c.json: model_args takes dict[str, Any]; got ['hidden', 3]"),
        ({"config": {"model": "mlp"}, "notes": "x"}, "unknown key 'notes' beside 'config'"),
        ([1, 2], "must hold a JSON object of config fields"),
        ("{not json", "is not JSON"),
        (None, "cannot be read"),
    ],
)
def test_bad_config_files_are_one_line(cli, tmp_path, content, message):
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, _, err = cli(train_cli.main, "--config", str(path), "--print-config")
    assert code == 2 and message in one_line(err)


# --- library parameters in the library, flags in the CLI ------------------------------------------------------------


def test_the_library_names_parameters_and_the_cli_names_flags(cli, tmp_path):
    with pytest.raises(ValueError, match=r"^lr must be a finite number > 0; got 0"):
        train.TrainConfig(model="mlp", dataset="xor", lr=0).resolved()
    with pytest.raises(ValueError, match=r"^model_args: unknown mlp option"):
        train.TrainConfig(model="mlp", model_args={"hiden": [3]}).resolved()
    code, _, err = cli(train_cli.main, *XOR_RUN, "--batch-size", "5", "--workdir", str(tmp_path))
    assert code == 2 and one_line(err).endswith(
        "--batch-size 5 is larger than the 4 training examples of xor: use at most 4"
    )
    params = ["resume", "overwrite", "workdir", "epochs", "batch_size"]
    assert (
        _common.to_flags(
            "pass resume=True to continue it, overwrite=True to start afresh, or another workdir; set `batch_size`",
            params,
            ["resume", "overwrite"],
        )
        == "pass --resume to continue it, --overwrite to start afresh, or another --workdir; set --batch-size"
    )
    assert (
        _common.to_flags(
            "made with another config (model='mlp' there but 'logistic' here): check workdir", ["model", "workdir"]
        )
        == "made with another config (model='mlp' there but 'logistic' here): check --workdir"
    )


# --- issue 22: settings found wrong before training -----------------------------------------------------------------


def test_an_unavailable_jax_platform_is_one_line_before_training(tmp_path):
    out = subprocess.run(
        [python(), "-m", "jaxnets.cli.train", *XOR_RUN, "--workdir", str(tmp_path / "run")],
        cwd=REPO,
        env={**offline_env(), "JAX_PLATFORMS": "gpu"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = one_line(out.stderr)
    assert out.returncode == 2 and "JAX_PLATFORMS=gpu" in line and "available: cpu" in line, out.stderr
    assert line.startswith("jaxnets.cli.train: error: ") and not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "-0.5"])
def test_sample_refuses_non_finite_or_negative_temperatures(cli, tmp_path, value):
    code, out, err = cli(sample.main, "--workdir", str(tmp_path), f"--temperature={value}")
    assert code == 2 and not out
    line = one_line(err)
    assert "--temperature must be a finite number >= 0" in line and line.endswith(f"got {float(value)}")
    with pytest.raises(ValueError, match=r"^temperature must be a finite number >= 0"):
        train.sampling.check_temperature(float(value))


def test_summary_takes_model_args_and_answers_bad_input_in_one_line(cli):
    code, out, _ = cli(
        summary.main,
        "vgg11",
        "--input-shape",
        "32,32,3",
        "--num-classes",
        "10",
        "--depth",
        "1",
        "--model-arg",
        "batch_norm=true",
    )
    assert code == 0 and "non-trained state values" in out
    code, _, err = cli(summary.main, "vgg11", "--model-arg", "batch_nrm=true")
    assert code == 2 and "did you mean batch_norm?" in one_line(err)
    code, _, err = cli(summary.main, "mlp", "--input-shape", "2x2")
    assert code == 2 and "--input-shape must be comma-separated integers" in one_line(err)


# --- the commands and how they are started --------------------------------------------------------------------------


def test_entry_points_name_each_command_main():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "jaxnets-train": "jaxnets.cli.train:main",
        "jaxnets-sample": "jaxnets.cli.sample:main",
        "jaxnets-summary": "jaxnets.cli.summary:main",
        "jaxnets-predict": "jaxnets.cli.predict:main",
        "jaxnets-evaluate": "jaxnets.cli.evaluate:main",
        "jaxnets-rl": "jaxnets.cli.rl:main",
        "jaxnets-word2vec": "jaxnets.cli.word2vec:main",
    }
    for target in scripts.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_messages_and_the_resume_command_use_the_name_the_command_was_started_by(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/jaxnets-train", "--epochs", "3"])
    command = _common.invocation(*train_cli.COMMAND)
    assert command == "jaxnets-train" and _common.prog_name(command) == "jaxnets-train"
    assert train_cli.resume_command(command, ["--epochs", "3", "--overwrite"]) == "jaxnets-train --epochs 3 --resume"
    monkeypatch.setattr(sys, "argv", ["train.py"])
    assert _common.invocation(*train_cli.COMMAND) == "python train.py"  # the shim, or main called from Python
