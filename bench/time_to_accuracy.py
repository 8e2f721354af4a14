"""Seconds to reach a test accuracy (default 99%) on MNIST: jaxnets against a PyTorch reference training loop.

    python bench/time_to_accuracy.py [--model lenet5_modern] [--target 0.99] [--epochs 10] [--json]

Both train the same architecture (bench/common.py's spec for PyTorch, the registered model for jaxnets) on the same
normalised data with train.py's default recipe for lenet5_modern — SGD with momentum 0.9, lr 0.01 decayed to 0 by a
cosine over ``--epochs`` epochs (optax's cosine_decay_schedule; torch's CosineAnnealingLR stepped per batch), batch
128, a fresh shuffle every epoch — and evaluate on the 10k test images after every epoch. The clock includes
everything after the data is in memory: jaxnets' compilation and every evaluation. jaxnets trains with
``jaxnets.train``'s jitted, donating, device-resident step (as ``fit`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

import jaxnets
from jaxnets import data, train

LR = 0.01


def run_jaxnets(name: str, ds: data.Dataset, target: float, max_epochs: int) -> dict[str, object]:
    """Train with jaxnets.train's indexed step; seconds until the test accuracy first reaches ``target``."""
    t0 = time.perf_counter()
    model = jaxnets.build(name)
    opt = train.make_optimizer(
        "momentum", LR, common.MOMENTUM, schedule="cosine", total_steps=max_epochs * (len(ds.train_x) // common.BATCH)
    )
    state = train.create_train_state(model, opt, jax.random.PRNGKey(0))
    step = train.make_indexed_train_step(model, opt)
    xs, ys = jax.device_put(ds.train_x), jax.device_put(ds.train_y)
    n, history = len(ds.train_x), []
    for epoch in range(max_epochs):
        batches = data.epoch_batches(jax.random.fold_in(jax.random.key(1), epoch), n, common.BATCH)
        for _ in range(batches.shape[0]):
            state, _ = step(state, xs, ys, batches)
        acc = train.evaluate(model, state.params, state.model_state, ds.test_x, ds.test_y)["accuracy"]
        history.append(round(acc, 4))
        print(f"  jaxnets epoch {epoch + 1}: test accuracy {acc:.4f} at {time.perf_counter() - t0:.1f} s", flush=True)
        if acc >= target:
            return {"seconds": round(time.perf_counter() - t0, 2), "epochs": epoch + 1, "accuracy": history}
    return {"seconds": None, "epochs": max_epochs, "accuracy": history}


def run_torch(name: str, ds: data.Dataset, target: float, max_epochs: int) -> dict[str, object] | None:
    """The PyTorch reference loop (eager, CPU); None when torch is not importable."""
    built = common.torch_model(name)
    if built is None:
        return None
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    net, _ = built
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=common.MOMENTUM)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs * (len(ds.train_x) // common.BATCH))
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    xs, ys = to_nchw(ds.train_x), torch.from_numpy(ds.train_y.astype(np.int64))
    xt, yt = to_nchw(ds.test_x), torch.from_numpy(ds.test_y.astype(np.int64))
    n, history = len(xs), []
    for epoch in range(max_epochs):
        net.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        for i in range(n // common.BATCH):
            idx = perm[i * common.BATCH : (i + 1) * common.BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(xs[idx]), ys[idx]).backward()
            opt.step()
            schedule.step()
        net.eval()
        with torch.no_grad():
            correct = sum(
                int((net(xt[i : i + 1000]).argmax(1) == yt[i : i + 1000]).sum()) for i in range(0, len(xt), 1000)
            )
        acc = correct / len(xt)
        history.append(round(acc, 4))
        print(f"  torch epoch {epoch + 1}: test accuracy {acc:.4f} at {time.perf_counter() - t0:.1f} s", flush=True)
        if acc >= target:
            return {"seconds": round(time.perf_counter() - t0, 2), "epochs": epoch + 1, "accuracy": history}
    return {"seconds": None, "epochs": max_epochs, "accuracy": history}


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run both loops and print their times to the target accuracy (or one JSON object with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet5_modern", choices=[m for m in common.SPECS if m != "lenet5"])
    ap.add_argument("--target", type=float, default=0.99)
    ap.add_argument("--epochs", type=int, default=10, help="length of the cosine schedule, and the most epochs run")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--data-dir", default=None, help="TFDS data dir (default: TFDS's own)")
    ap.add_argument("--manual-dir", default=common.MNIST_DIR, help="folder with the MNIST files")
    args = ap.parse_args(argv)
    try:
        ds = data.load("mnist", common.SPECS[args.model][0], data_dir=args.data_dir, manual_dir=args.manual_dir)
    except Exception as e:  # data not available here
        print(f"skipped: MNIST unavailable ({e})")
        return {}
    results = {"model": args.model, "target": args.target, "load_before": os.getloadavg()[0]}
    results["jaxnets"] = run_jaxnets(args.model, ds, args.target, args.epochs)
    if not args.json:
        print(f"jaxnets: {results['jaxnets']}", flush=True)
    results["torch"] = run_torch(args.model, ds, args.target, args.epochs)
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results) if args.json else f"torch:   {results['torch']}")
    return results


if __name__ == "__main__":
    main()
