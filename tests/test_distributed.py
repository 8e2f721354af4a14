"""Data parallelism beyond one device: 8 simulated CPU devices against one, and two processes training together.

The 8-device run and the two processes run in subprocesses (the device count and ``jax.distributed`` are fixed
when JAX starts); the one-device references run here, in the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import jax
import numpy as np
import optax
import pytest
from helpers_train import MNIST_DIR, REPO, closed_port, python

import jaxnets
from jaxnets import data, train
from jaxnets.train import checkpoint as ckpt
from jaxnets.train import distributed, parallel

# The engine: the library's sharded step on fixed global batches, recording losses and parameters after each step;
# with `columns`, this process feeds only those columns of each batch (its slice), from its copy of the data.
ENGINE = textwrap.dedent("""
    import json, sys
    import jax, numpy as np, optax
    import jaxnets
    from jaxnets import train
    from jaxnets.data.batching import epoch_batches
    from jaxnets.train import parallel
    from jaxnets.train.state import create_train_state
    from jaxnets.train.step import make_indexed_train_step

    def flat(tree):
        return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(tree)]).tolist()

    def engine(model, opt, x, y, batch, steps, columns=None):
        sh = parallel.data_parallel()
        state = parallel.replicate(create_train_state(model, opt, jax.random.PRNGKey(0)), sh)
        batches = np.asarray(epoch_batches(jax.random.PRNGKey(1), len(x), batch))
        if sh is None:
            dx, dy, b = *jax.device_put((x, y)), jax.device_put(batches)
        else:
            dx, dy = parallel.place_local_data((x, y), sh)
            b = parallel.epoch_indices(batches if columns is None else batches[:, columns], sh)
        step = make_indexed_train_step(model, opt, sh)
        losses, params = [], []
        for _ in range(steps):
            state, m = step(state, dx, dy, b)
            losses.append(float(m["loss"]))
            params.append(flat(state.params))
        return state, losses, params
""")

# LeNet-5 on 8 devices: one step per epoch (the global batch is the whole training set), so each epoch's training
# loss is that step's loss; a test set of 101 examples in evaluation batches of 32 (padded, masked); a checkpoint.
EIGHT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np, optax
    import jaxnets
    from jaxnets import train
    sys.path.insert(0, "tests")
    from test_distributed import LENET_DATA, LENET_FIT

    x, y, tx, ty = LENET_DATA()
    r = train.fit(jaxnets.build("lenet5_modern"), x, y, tx, ty, epochs=3, workdir=sys.argv[1], **LENET_FIT)
    # FSDP-like: C5's weights and momentum (48,000 values each) split over the 8 devices, the small arrays replicated.
    fsdp = train.fit(jaxnets.build("lenet5_modern"), x, y, tx, ty, epochs=2,
                     shardings=train.data_parallel(shard_state=True), **LENET_FIT)
    # 800 steps in an epoch, the loss read every 40: fit keeps few enough steps queued for XLA:CPU's all-reduce.
    rng = np.random.default_rng(0)
    px = rng.normal(size=(6400, 2)).astype(np.float32)
    many = train.fit(jaxnets.models.mlp(input_shape=(2,), num_classes=2, hidden=(8,)), px, (px[:, 0] > 0).astype(int),
                     optimizer=optax.adam(1e-3), epochs=1, batch_size=8, progress=False, log=lambda s: None)
    try:  # all 8 devices asked for explicitly: 60 does not split over them
        train.fit(jaxnets.build("lenet5_modern"), x, y, epochs=1, shardings=train.data_parallel(),
                  **{**LENET_FIT, "batch_size": 60})
        error = None
    except ValueError as e:
        error = str(e)
    # "auto" (the default): batch 60 trains on the 6 devices it splits over, as on one device
    lines = []
    sixty = train.fit(jaxnets.build("lenet5_modern"), x, y, tx, ty, epochs=2,
                      **{**LENET_FIT, "batch_size": 60, "log": lines.append})
    print(json.dumps({"devices": jax.device_count(), "history": r.history, "error": error,
                      "sharding": str(r.state.params["C1"]["w"].sharding), "fsdp": fsdp.history,
                      "many": many.history[0]["train_accuracy"], "sixty": sixty.history,
                      "sixty_log": [line for line in lines if "60" in line],
                      "fsdp_shardings": [list(fsdp.state.params[k]["w"].sharding.spec) for k in ("C5", "F6")]}))
""")
LENET_FIT = {
    "optimizer": optax.sgd(0.05, momentum=0.9),
    "batch_size": 128,
    "eval_batch_size": 32,
    "progress": False,
    "log": lambda s: None,
}


def LENET_DATA():
    rng = np.random.default_rng(0)
    return (
        rng.normal(size=(128, 28, 28, 1)).astype(np.float32),
        rng.integers(0, 10, 128).astype(np.int32),
        rng.normal(size=(101, 28, 28, 1)).astype(np.float32),
        rng.integers(0, 10, 101).astype(np.int32),
    )


def _run(script: str, *args: str, devices: int = 1, timeout: float = 180, **env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        **env,
    }
    return subprocess.Popen(
        [python(), "-c", script, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(proc: subprocess.Popen, timeout: float = 180) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _namespace() -> dict:
    ns: dict = {}
    exec(ENGINE, ns)  # the same engine, here on this process's single device
    return ns


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree.leaves(tree)])


def _metrics(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k.startswith(("train_", "test_"))} for r in history]


def test_lenet5_on_8_devices_matches_1_device_step_by_step_and_its_checkpoint_resumes_on_1(tmp_path):
    assert jax.device_count() == 1
    eight = _run(EIGHT, str(tmp_path / "eight"), devices=8)  # runs while the one-device reference runs here
    model = jaxnets.build("lenet5_modern")
    x, y, tx, ty = LENET_DATA()
    whole = train.fit(model, x, y, tx, ty, epochs=5, **LENET_FIT)
    eight = _result(eight)
    assert eight["devices"] == 8 and "Mesh('data': 8" in eight["sharding"] and "P()" in eight["sharding"]
    assert "batch size 60 does not split evenly over the 8 devices" in eight["error"]
    assert any("training on 6 of them" in line for line in eight["sixty_log"]), eight["sixty_log"]
    sixty = train.fit(model, x, y, tx, ty, epochs=2, **{**LENET_FIT, "batch_size": 60})
    for got, want in zip(_metrics(eight["sixty"]), _metrics(sixty.history), strict=True):
        assert got == pytest.approx(want, rel=2e-5)
    assert eight["many"] > 0.75  # (with ~32 steps queued, XLA:CPU's all-reduce deadlocks and the process aborts)
    # The same loss at every step, and the same test metrics with every one of the 101 examples counted once.
    for got, want in zip(_metrics(eight["history"]), _metrics(whole.history[:3]), strict=True):
        assert got == pytest.approx(want, rel=2e-5)
    assert eight["fsdp_shardings"] == [[None, None, None, "data"], []]
    for got, want in zip(_metrics(eight["fsdp"]), _metrics(whole.history[:2]), strict=True):
        assert got == pytest.approx(want, rel=2e-5)

    saved, _ = ckpt.load_checkpoint(tmp_path / "eight" / ckpt.CHECKPOINT, whole.state)
    assert all(isinstance(a, np.ndarray) for a in jax.tree.leaves(saved))  # plain arrays: any device count
    resumed = train.fit(model, x, y, tx, ty, epochs=5, workdir=tmp_path / "eight", resume=True, **LENET_FIT)
    assert int(resumed.state.step) == int(whole.state.step) == 5
    np.testing.assert_allclose(_flat(resumed.state.params), _flat(whole.state.params), rtol=1e-4, atol=1e-6)


# Each of two processes (two CPU devices each, so four in the mesh): (1) the engine on global batches of 64 of which
# it feeds its 32 columns, recording the parameters after every step; (2) fit on its half of the spirals with a
# checkpoint (process 0 only), then a resumed fit from it, against an uninterrupted one.
TWO = ENGINE + textwrap.dedent("""
    from jaxnets import data
    from jaxnets.train import distributed
    pid, port, tmp = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_num_cpu_devices", 2)
    info = distributed.initialize(f"127.0.0.1:{port}", 2, pid)
    ds = data.load("spirals")
    model = jaxnets.models.mlp(input_shape=(2,), num_classes=2, hidden=(16,))
    opt = optax.adam(1e-2)
    columns = np.arange(32 * pid, 32 * (pid + 1))
    _, losses, params = engine(model, opt, ds.train_x, ds.train_y, 64, 5, columns)
    (x, y), (tx, ty) = distributed.shard((ds.train_x, ds.train_y)), distributed.shard((ds.test_x, ds.test_y))
    kw = dict(optimizer=opt, batch_size=64, progress=False, log=lambda s: print(s, file=sys.stderr))
    first = train.fit(model, x, y, tx, ty, epochs=1, workdir=f"{tmp}/wd{pid}", **kw)
    resumed = train.fit(model, x, y, tx, ty, epochs=2, workdir=f"{tmp}/wd{pid}", resume=True, **kw)
    whole = train.fit(model, x, y, tx, ty, epochs=2, **kw)
    # Uneven shares (256 and 255 examples; process 1 pads one): each example counted once.
    ev = train.evaluate(model, whole.state.params, whole.state.model_state, tx[:len(tx) - pid], ty[:len(ty) - pid],
                        1000, parallel.data_parallel())
    # FSDP-like over the two processes (here every array of 32 values or more is split): the checkpoint, written by
    # process 0 after an all-gather, holds the whole arrays.
    parallel.SHARD_MIN = 32
    sh = parallel.data_parallel(shard_state=True)
    fsdp = train.fit(model, x, y, tx, ty, epochs=2, workdir=f"{tmp}/fsdp{pid}", shardings=sh, **kw)
    split = list(fsdp.state.params["hidden1"]["w"].sharding.spec)
    from jaxnets.train import checkpoint as ckpt
    saved = pid == 0 and ckpt.load_checkpoint(f"{tmp}/fsdp0/{ckpt.CHECKPOINT}", jax.device_get(whole.state))[0]
    print(json.dumps({"info": info, "devices": jax.device_count(), "local": jax.local_device_count(),
                      "losses": losses, "params": params, "history": first.history,
                      "resumed": flat(resumed.state.params), "whole": flat(whole.state.params),
                      "whole_history": whole.history, "eval": ev, "fsdp_split": split,
                      "fsdp": flat(parallel.gathered(fsdp.state, sh).params),
                      "fsdp_saved": saved and flat(saved.params)}))
""")


def test_two_processes_train_together_and_agree_after_every_step(tmp_path):
    port = str(closed_port())
    procs = [_run(TWO, str(pid), port, str(tmp_path), timeout=120) for pid in (0, 1)]
    p0, p1 = (_result(p, timeout=120) for p in procs)
    assert (p0["devices"], p0["local"], p1["devices"]) == (4, 2, 4)
    assert p0["info"].startswith("process 0 of 2") and p1["info"].startswith("process 1 of 2")

    # The engine: both hold the same parameters after every step, and they are the one-process run's.
    assert p0["params"] == p1["params"] and p0["losses"] == p1["losses"]
    ds = data.load("spirals")
    model = jaxnets.models.mlp(input_shape=(2,), num_classes=2, hidden=(16,))
    _, losses, params = _namespace()["engine"](model, optax.adam(1e-2), ds.train_x, ds.train_y, 64, 5)
    np.testing.assert_allclose(p0["losses"], losses, rtol=1e-5)
    np.testing.assert_allclose(p0["params"], params, rtol=1e-4, atol=1e-6)

    # fit: global metrics, the same on both; only process 0 wrote; resuming from it gives the uninterrupted run.
    assert _metrics(p0["history"]) == _metrics(p1["history"]) == _metrics(p0["whole_history"][:1])
    assert (tmp_path / "wd0" / ckpt.CHECKPOINT).exists() and not (tmp_path / "wd1").exists()
    assert p0["resumed"] == p1["resumed"] == p0["whole"] == p1["whole"]
    assert p0["fsdp_split"] == [None, "data"] and p0["fsdp"] == p1["fsdp"] == p0["fsdp_saved"]
    np.testing.assert_allclose(p0["fsdp"], p0["whole"], rtol=1e-4, atol=1e-6)

    # Evaluation over both processes' shares, against one process evaluating their union.
    template, state = model.init(jax.random.key(0))
    leaves, tree = jax.tree.flatten(template)
    cuts = np.cumsum([a.size for a in leaves])[:-1]
    params = jax.tree.unflatten(
        tree,
        [w.reshape(a.shape) for w, a in zip(np.split(np.array(p0["whole"], np.float32), cuts), leaves, strict=True)],
    )
    both = (
        np.concatenate([ds.test_x[0::2], ds.test_x[1::2][:-1]]),
        np.concatenate([ds.test_y[0::2], ds.test_y[1::2][:-1]]),
    )
    assert p0["eval"] == p1["eval"] == pytest.approx(train.evaluate(model, params, state, *both), rel=1e-5)


def test_each_process_gets_every_nth_example_and_together_they_hold_each_once():
    x, y = np.arange(37 * 2).reshape(37, 2), np.arange(37)
    shards = [distributed.shard((x, y), i, 3) for i in range(3)]
    assert [len(s[0]) for s in shards] == [13, 12, 12]
    assert np.array_equal(np.sort(np.concatenate([s[1] for s in shards])), np.sort(y))
    assert distributed.shard(x) is not x and np.array_equal(distributed.shard(x), x)  # one process: everything
    assert parallel.data_parallel() is None  # one device: the plain single-device path


def test_cluster_detection_and_flag_checks(monkeypatch):
    for k in (
        "SLURM_JOB_ID",
        "SLURM_PROCID",
        "SLURM_LOCALID",
        "SLURM_NTASKS",
        "SLURM_STEP_NUM_TASKS",
        "OMPI_MCA_orte_hnp_uri",
        "OMPI_COMM_WORLD_SIZE",
        "TPU_WORKER_HOSTNAMES",
    ):
        monkeypatch.delenv(k, raising=False)
    assert distributed.detected_cluster() is None
    assert distributed.initialize() is None  # nothing given, no launcher: one process, nothing done
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "host0,host1")
    assert distributed.detected_cluster() == "Cloud TPU"
    monkeypatch.delenv("TPU_WORKER_HOSTNAMES")
    for k, v in dict(SLURM_JOB_ID="1", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NTASKS="1").items():
        monkeypatch.setenv(k, v)
    assert distributed.detected_cluster() is None  # a one-task Slurm job is one process
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert distributed.detected_cluster() == "Slurm"
    with pytest.raises(ValueError, match=r"process id 2 is not in 0\.\.1"):
        distributed.initialize("127.0.0.1:1", 2, 2)


def test_train_py_rejects_bad_process_flags_in_one_line():
    out = subprocess.run(
        [
            python(),
            "train.py",
            "--dataset",
            "xor",
            "--num-processes",
            "2",
            "--process-id",
            "3",
            "--coordinator",
            f"127.0.0.1:{closed_port()}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert out.returncode == 2 and "process id 3 is not in 0..1" in out.stderr, out.stderr


# Batch sizes that do not divide the device count (Colab TPUs have 8): notebook 03's pretraining and the CLI's rbm
# default, both batch 100, train on 8 simulated devices (on the 5 that 100 splits over) and match one device.
PRETRAIN_100 = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from jaxnets.train import pretrain_stack
    x = np.random.default_rng(0).uniform(size=(300, 36)).astype(np.float32)
    stack = pretrain_stack([16, 8], x, epochs=2, batch_size=100, lr=0.1, momentum=0.5)
    print(json.dumps({"devices": jax.device_count(),
                      "w": [np.asarray(stack[k]["w"]).ravel().tolist() for k in ("hidden1", "hidden2")]}))
""")


def test_batch_100_pretrains_on_8_devices_as_on_1():
    eight = _run(PRETRAIN_100, devices=8)
    one = _result(_run(PRETRAIN_100, devices=1))
    eight = _result(eight)
    assert eight["devices"] == 8 and one["devices"] == 1
    for got, want in zip(eight["w"], one["w"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_the_cli_rbm_default_batch_trains_on_8_devices(tmp_path):
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST files not found in {MNIST_DIR}")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [
            python(),
            "train.py",
            "--model",
            "rbm",
            "--epochs",
            "1",
            "--no-progress",
            "--manual-dir",
            str(MNIST_DIR),
            "--workdir",
            str(tmp_path / "rbm"),
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "devices: 8 x cpu" in proc.stdout and "training on 5 of them" in proc.stdout, proc.stdout[-2000:]
    assert "epoch 1/1" in proc.stdout
