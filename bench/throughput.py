"""Training throughput of jaxnets against plain JAX, Flax linen and PyTorch eager, side by side in one run.

    python bench/throughput.py [--json] [--models lenet5_modern lenet5 small_cnn mlp] [--steps N] [--epoch]

For each model (batch 128, float32, SGD with momentum 0.9, random MNIST-shaped inputs, steady state after warm-up)
it times one training step of: ``jaxnets`` (the registered model, conv strategy 'auto', through the real training
step ``train.make_train_step``: non-finite guard, loss and accuracy), ``jaxnets_bare`` (the same model's apply in a
bare jitted step: the guard and metrics' cost is the ratio of the two), ``plain_jax`` (the same
network hand-written over a dict of arrays with the same kernels: the cost of jaxnets' abstractions), ``flax`` (the
same network in Flax linen with optax, jitted: lax convolutions and reduce_window pooling) and ``torch`` (PyTorch
eager on the CPU, skipped if torch is not importable). Each time is the median over ``--rounds`` interleaved rounds
(the frameworks in a rotated order) of the median of 7 repeats of ``--steps`` steps; repeats disturbed by other
processes are retried. It prints images/s, the ratios to PyTorch and to Flax, and the
achieved GFLOP/s (analytic FLOPs of forward and backward) as a share of the fp32 matmul peak measured in the run.

``--epoch`` also trains one full MNIST epoch of lenet5_modern through the real data path (``jaxnets.train.fit``:
device-resident data, a shuffled epoch of batch indices, the batch gathered inside the jitted step) and compares it
with the pure step time (skipped with a message when the MNIST files are not found). ``--json`` prints one JSON
object: ``{"machine": ..., "peak_gflops": ..., "<model>": {"<framework>": {"images_per_second": ...}}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

FRAMEWORKS = ("jaxnets", "jaxnets_bare", "plain_jax", "flax", "torch")


def machine() -> dict[str, object]:
    """CPU model, core count, versions and load: the context of the figures."""
    cpu = platform.processor()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_before": os.getloadavg()[0],
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info


def matmul_peak(iters: int) -> float:
    """Best fp32 GFLOP/s of a jitted square matmul (sizes 512-2048): the ceiling for these networks."""
    best = 0.0
    for n in (512, 1024, 2048):
        a = jax.random.normal(jax.random.key(0), (n, n))
        f = jax.jit(lambda a: a @ a)
        t = common.measure(lambda f=f, a=a: f(a), iters=max(2, iters // (n // 512) ** 2), repeats=5)["min"]
        best = max(best, 2 * n**3 / t / 1e9)
    return best


def _batch(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    x = jax.random.normal(jax.random.key(1), (common.BATCH, *shape))
    return x, jax.random.randint(jax.random.key(2), (common.BATCH,), 0, 10)


Runner = tuple[Callable[[], object], Callable[[object], object]]  # (one training step, wait for its result)


def jax_runner(apply, params, shape) -> Runner:
    """A bare jitted SGD+momentum step of ``apply(params, x) -> logits`` on a fixed batch (``common.jax_step``)."""
    step, opt = common.jax_step(apply, params)
    x, y = _batch(shape)
    state = [params, opt]

    def run():
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss

    return run, jax.block_until_ready


def runner_jaxnets(name: str) -> Runner:
    """jaxnets' real training step, ``train.make_train_step``: guard against non-finite steps, loss and accuracy."""
    from jaxnets import train

    model = common.build_jaxnets(name)
    step = train.make_train_step(model, common.sgd())
    x, y = _batch(model.input_shape)
    state = [train.create_train_state(model, common.sgd(), jax.random.key(0))]

    def run():
        state[0], metrics = step(state[0], x, y)
        return metrics

    return run, jax.block_until_ready


def runner_jaxnets_bare(name: str) -> Runner:
    """The registered model's ``Model.apply`` in a bare jitted step (no guard, no metrics but the loss)."""
    model = common.build_jaxnets(name)
    params, mstate = model.init(jax.random.key(0))
    return jax_runner(lambda p, x: model.apply(p, mstate, x, train=True)[0], params, model.input_shape)


def runner_plain(name: str) -> Runner:
    params, apply = common.plain_jax(name, jax.random.key(0))
    return jax_runner(apply, params, common.SPECS[name][0])


def runner_flax(name: str) -> Runner:
    net, shape = common.flax_model(name)
    x, _ = _batch(shape)
    params = net.init(jax.random.key(0), x)["params"]
    return jax_runner(lambda p, x: net.apply({"params": p}, x), params, shape)


def runner_torch(name: str) -> Runner | None:
    built = common.torch_model(name)
    if built is None:
        return None
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(os.cpu_count() or 1)
    net, shape = built
    opt = torch.optim.SGD(net.parameters(), lr=common.LR, momentum=common.MOMENTUM)
    x, y = torch.randn(common.BATCH, *shape), torch.randint(0, 10, (common.BATCH,))

    def run():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return run, lambda loss: loss.item()


RUNNERS = {
    "jaxnets": runner_jaxnets,
    "jaxnets_bare": runner_jaxnets_bare,
    "plain_jax": runner_plain,
    "flax": runner_flax,
    "torch": runner_torch,
}


def time_interleaved(runners: dict[str, Runner], steps: int, rounds: int) -> dict[str, dict[str, float]]:
    """Seconds per step of each runner: ``rounds`` rounds, the runners in a rotated order each round, each round a
    ``common.measure`` (median of 7 repeats); the median over rounds and the disturbed repeats' count."""
    times: dict[str, list[float]] = {fw: [] for fw in runners}
    disturbed = dict.fromkeys(runners, 0)
    names = list(runners)
    for r in range(rounds):
        for fw in names[r % len(names) :] + names[: r % len(names)]:
            run, sync = runners[fw]
            got = common.measure(run, sync=sync, iters=steps)
            times[fw].append(got["seconds"])
            disturbed[fw] += got["disturbed"]
    return {fw: {"seconds": statistics.median(t), "disturbed": disturbed[fw]} for fw, t in times.items()}


def time_epoch(data_dir: str, manual_dir: str, step_seconds: float) -> dict[str, object]:
    """One MNIST epoch of lenet5_modern through ``jaxnets.train.fit`` (2 epochs, the second timed) against
    ``steps * step_seconds``."""
    import jaxnets
    from jaxnets import data, train

    if not Path(manual_dir).exists():
        return {"skipped": f"no MNIST files in {manual_dir}"}
    try:
        ds = data.load("mnist", (28, 28, 1), data_dir=data_dir, manual_dir=manual_dir)
    except Exception as e:  # data unavailable or TFDS not preparable here
        return {"skipped": f"MNIST unavailable: {e}"}
    model = jaxnets.build("lenet5_modern")
    result = train.fit(
        model,
        ds.train_x,
        ds.train_y,
        optimizer=common.sgd(),
        epochs=2,
        batch_size=common.BATCH,
        progress=False,
        log=lambda s: None,
        shardings=None,
    )
    rec = result.history[-1]
    steps = len(ds.train_x) // common.BATCH
    epoch_s = steps * common.BATCH / rec["images_per_second"]
    return {
        "epoch_seconds": round(epoch_s, 3),
        "pure_step_seconds": round(steps * step_seconds, 3),
        "ratio": round(epoch_s / (steps * step_seconds), 3),
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the comparison and print a table (or one JSON object with ``--json``); returns the results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(common.SPECS), choices=list(common.SPECS))
    ap.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed repeat (7 repeats, median)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every framework (median)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--epoch", action="store_true", help="also time a full MNIST epoch through jaxnets.train.fit")
    ap.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS's own)")
    ap.add_argument("--manual-dir", default=common.MNIST_DIR, help="folder with the MNIST files")
    args = ap.parse_args(argv)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))

    results: dict[str, object] = {"machine": machine(), "batch": common.BATCH}
    peak = matmul_peak(args.steps)
    results["peak_gflops"] = round(peak, 1)
    say(f"{results['machine']}\nfp32 matmul peak (XLA, jitted): {peak:.0f} GFLOP/s\n")
    say(
        f"{'model':14s} {'framework':10s} {'ms/step':>8s} {'img/s':>8s} {'vs torch':>8s} {'vs flax':>8s} "
        f"{'GFLOP/s':>8s} {'% peak':>7s}"
    )
    for name in args.models:
        flops = common.train_flops(name)
        runners = {fw: RUNNERS[fw](name) for fw in args.frameworks}
        for fw in [fw for fw, r in runners.items() if r is None]:
            say(f"{name:14s} {fw:10s} skipped (not importable)")
        timed = time_interleaved({fw: r for fw, r in runners.items() if r is not None}, args.steps, args.rounds)
        rows = {}
        for fw, r in timed.items():
            rows[fw] = {
                "ms_per_step": round(1e3 * r["seconds"], 3),
                "images_per_second": round(common.BATCH / r["seconds"], 1),
                "gflops": round(flops / r["seconds"] / 1e9, 1),
                "percent_of_peak": round(100 * flops / r["seconds"] / 1e9 / peak, 1),
                "disturbed": r["disturbed"],
            }
        for fw, row in rows.items():
            for ref in ("torch", "flax"):
                if ref in rows:
                    row[f"vs_{ref}"] = round(row["images_per_second"] / rows[ref]["images_per_second"], 3)
            for ref in ("plain_jax", "jaxnets_bare"):
                if ref in rows:
                    row[f"vs_{ref}"] = round(row["images_per_second"] / rows[ref]["images_per_second"], 3)
            say(
                f"{name:14s} {fw:10s} {row['ms_per_step']:8.2f} {row['images_per_second']:8.0f} "
                f"{row.get('vs_torch', float('nan')):8.2f} {row.get('vs_flax', float('nan')):8.2f} "
                f"{row['gflops']:8.1f} {row['percent_of_peak']:6.1f}%" + ("  (disturbed)" if row["disturbed"] else "")
            )
        if "jaxnets" in rows and "jaxnets_bare" in rows:
            say(f"{name:14s} train step / bare step of the same model: {1 / rows['jaxnets']['vs_jaxnets_bare']:.3f}")
        results[name] = {"train_gflop_per_step": round(flops / 1e9, 4), **rows}
    if args.epoch:
        step_s = results.get("lenet5_modern", {}).get("jaxnets", {}).get("ms_per_step")
        step_s = (
            step_s / 1e3
            if step_s
            else time_interleaved({"j": runner_jaxnets("lenet5_modern")}, args.steps, 1)["j"]["seconds"]
        )
        results["mnist_epoch"] = time_epoch(args.data_dir, args.manual_dir, step_s)
        say(f"\nMNIST epoch, lenet5_modern via jaxnets.train.fit: {results['mnist_epoch']}")
    results["machine"]["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
