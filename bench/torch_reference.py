"""The PyTorch reference for bench/time_to_99.py: LeNet-5 (modern: ReLU, max-pooling, softmax) trained on the MNIST
IDX files the way a PyTorch user would write it, printing one JSON line per epoch with its test accuracy and the
seconds since this process started (imports included). Needs only torch and numpy.

    python bench/torch_reference.py --manual-dir ../shared/data/mnist [--recipe adam] [--epochs 10]

Recipes (each run as PyTorch's own idiom, batch 128, a fresh shuffle every epoch, per-channel standardisation):
'sgd-cosine' (SGD momentum 0.9, lr 0.01 cosine-decayed over the epochs: jaxnets' previous default), 'adam' (Adam
lr 1e-3, constant), 'onecycle' (SGD Nesterov momentum, OneCycleLR to lr 0.1 over the epochs).
"""

from __future__ import annotations

import time

START = time.time()  # (the clock starts before the imports)

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

RECIPES = ("sgd-cosine", "adam", "onecycle")
BATCH = 128


def idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped) as a numpy array."""
    raw = gzip.decompress(path.read_bytes())
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def lenet5_modern() -> nn.Module:
    """jaxnets' lenet5_modern: conv5(6, pad 2)-pool-conv5(16)-pool-conv5(120)-84-10, ReLU."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


def optimiser(recipe: str, params, steps: int):
    """(optimizer, per-step scheduler or None) for a recipe."""
    if recipe == "adam":
        return torch.optim.Adam(params, lr=1e-3), None
    if recipe == "sgd-cosine":
        opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manual-dir", required=True, help="folder with the four MNIST .gz files")
    ap.add_argument("--recipe", choices=RECIPES, default="adam")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    d = Path(args.manual_dir)
    xs = idx(d / "train-images-idx3-ubyte.gz").astype(np.float32) / 255
    mean, std = xs.mean(), xs.std()
    xs = torch.from_numpy((xs - mean) / std).unsqueeze(1)
    ys = torch.from_numpy(idx(d / "train-labels-idx1-ubyte.gz").astype(np.int64))
    xt = torch.from_numpy((idx(d / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255 - mean) / std).unsqueeze(1)
    yt = torch.from_numpy(idx(d / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    net = lenet5_modern()
    per_epoch = len(xs) // BATCH
    opt, schedule = optimiser(args.recipe, net.parameters(), args.epochs * per_epoch)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xs))
        for i in range(per_epoch):
            b = perm[i * BATCH : (i + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(xs[b]), ys[b]).backward()
            opt.step()
            if schedule is not None:
                schedule.step()
        net.eval()
        with torch.no_grad():
            correct = sum(
                int((net(xt[i : i + 1000]).argmax(1) == yt[i : i + 1000]).sum()) for i in range(0, 10000, 1000)
            )
        record = {"epoch": epoch + 1, "test_accuracy": correct / len(xt), "seconds": round(time.time() - START, 2)}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
