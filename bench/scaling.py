"""Data-parallel scaling: training throughput of lenet5_modern on 1, 2, 4, 8 devices at a fixed global batch.

    python bench/scaling.py [--devices 1 2 4 8] [--batch 128] [--steps 20] [--json]

Each device count runs in its own process (on CPU the devices are simulated with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``; on a GPU/TPU host pass counts up to the real number and
``--real`` to use the first N real devices instead). Each runs the training step ``fit`` uses (the batch split over a
1-D ``data`` mesh, each device gathering its slice from its copy of the data, parameters replicated, gradients
all-reduced by XLA) on random MNIST-shaped data, and reports the steady-state images/s (median of 7 repeats of
``--steps`` steps, see ``common.measure``) and the ratio to one device.

Simulated CPU devices share the same cores, so on a small machine this measures the overhead of splitting the
work (smaller per-device matmuls and convolutions, the all-reduce, one thread per device) rather than any speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(batch: int, steps: int, count: int | None) -> dict:
    """One device count, in this process: images/s of the sharded training step."""
    import jax
    import numpy as np
    import optax

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import common

    import jaxnets
    from jaxnets.data.batching import epoch_batches
    from jaxnets.train import parallel
    from jaxnets.train.state import create_train_state
    from jaxnets.train.step import make_indexed_train_step

    devices = jax.devices()[:count] if count else jax.devices()
    shardings = parallel.data_parallel(devices)
    model, opt = jaxnets.build("lenet5_modern"), optax.sgd(common.LR, momentum=common.MOMENTUM)
    rng = np.random.default_rng(0)
    n = 50 * batch
    x, y = rng.normal(size=(n, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, n).astype(np.int32)
    batches = np.asarray(epoch_batches(jax.random.PRNGKey(1), n, batch))
    holder = {"state": parallel.replicate(create_train_state(model, opt, jax.random.PRNGKey(0)), shardings)}
    if shardings is None:
        dx, dy, idx = *jax.device_put((x, y)), jax.device_put(batches)
    else:
        (dx, dy), idx = parallel.place_local_data((x, y), shardings), parallel.epoch_indices(batches, shardings)
    step = make_indexed_train_step(model, opt, shardings)

    queued: list = []

    def one():
        holder["state"], m = step(holder["state"], dx, dy, idx)
        queued.append(m["loss"])
        if len(queued) > parallel.IN_FLIGHT:  # as fit does: few steps queued (XLA:CPU's all-reduce deadlocks at ~32)
            jax.block_until_ready(queued.pop(0))
        return m["loss"]

    t = common.measure(one, iters=steps)
    return {
        "devices": len(devices),
        "per_device_batch": batch // len(devices),
        "ms_per_step": 1e3 * t["seconds"],
        "images_per_second": batch / t["seconds"],
        "disturbed": t["disturbed"],
        "platform": devices[0].platform,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--batch", type=int, default=128, help="global batch (a multiple of every device count)")
    p.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    p.add_argument("--real", action="store_true", help="use the first N real devices instead of simulated CPUs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.batch, args.steps, args.worker if args.real else None)))
        return
    rows = []
    for count in args.devices:
        if args.batch % count:
            raise SystemExit(f"batch {args.batch} does not split over {count} devices")
        env = dict(os.environ)
        if not args.real:
            env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={count}")
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            str(count),
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
        ] + (["--real"] if args.real else [])
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(out.stderr[-2000:])
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]["images_per_second"]
    for r in rows:
        r["vs_first"] = r["images_per_second"] / base
    if args.json:
        print(json.dumps({"load_average": os.getloadavg(), "batch": args.batch, "rows": rows}))
        return
    print(
        f"lenet5_modern, global batch {args.batch}, {rows[0]['platform']}, load average "
        f"{os.getloadavg()[0]:.1f} after the run"
    )
    print(f"{'devices':>7} {'per device':>10} {'ms/step':>8} {'img/s':>8} {'vs ' + str(rows[0]['devices']):>6}")
    for r in rows:
        flag = " (disturbed)" if r["disturbed"] else ""
        print(
            f"{r['devices']:>7} {r['per_device_batch']:>10} {r['ms_per_step']:>8.2f} "
            f"{r['images_per_second']:>8.0f} {r['vs_first']:>6.2f}{flag}"
        )


if __name__ == "__main__":
    main()
