"""DANN on MNIST -> MNIST-M (Ganin et al. 2016, section 5.2): source-only vs domain-adversarial accuracy on the
MNIST-M test set, same network, data, steps and seed.

    python bench/dann.py --epochs 2 --source photos --out runs/bench-dann

MNIST-M is made offline by ``data.make_mnist_m`` (training digits blended with crops from seed 0, test digits
from seed 1) from scikit-image's colour photographs (``--source photos``) or procedural textures; the paper used
BSDS500 crops. Both domains are scaled to [0, 1], MNIST replicated to 3 channels. Optimiser: the paper's SGD with
momentum 0.9 and annealed rate 0.01 / (1 + 10 p)^0.75, batch 128 source + 128 target, lambda_p = 2 / (1 + exp(-10 p))
- 1. Writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import optax

from jaxnets import data, models, train
from jaxnets.data import make_mnist_m
from jaxnets.train import dann_step

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
PAPER = {"source_only": 0.5225, "dann": 0.7666}  # Ganin et al. 2016, table 2 (MNIST -> MNIST-M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--source", default="photos", choices=("photos", "textures"))
    parser.add_argument("--out", default="runs/bench-dann")
    parser.add_argument("--manual-dir", default=MNIST_DIR)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    ds = data.load_raw("mnist", manual_dir=args.manual_dir, progress=False)
    source_x = np.repeat(ds.train_x.astype(np.float32) / 255.0, 3, axis=-1)
    order = np.random.default_rng(2).permutation(len(ds.train_x))  # target images unpaired with the source digits
    target_x = make_mnist_m(ds.train_x, seed=0, source=args.source)[order]
    target_test_x = make_mnist_m(ds.test_x, seed=1, source=args.source)
    model = models.dann()
    total = args.epochs * (len(source_x) // args.batch_size)
    sgd = optax.sgd(lambda s: models.dann_learning_rate(s / total), momentum=0.9)
    results = {"epochs": args.epochs, "steps": total, "source": args.source, "paper": PAPER}
    for adapt in (False, True):
        name = "dann" if adapt else "source_only"
        t0 = time.perf_counter()
        result = train.fit(
            dann_step(model, sgd, total, adapt=adapt),
            {"source": source_x, "target": target_x},
            ds.train_y,
            target_test_x,
            ds.test_y,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=0,
            workdir=out / name,
            overwrite=True,
            progress=False,
            log=print,
        )
        last = result.history[-1]
        results[name] = {
            "target_test_accuracy": last["test_accuracy"],
            "source_train_accuracy": last["train_source_accuracy"],
            "train_domain_accuracy": last["train_domain_accuracy"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(
            f"{name}: MNIST-M test accuracy {100 * last['test_accuracy']:.2f}% (paper {100 * PAPER[name]:.2f}%), "
            f"domain classifier accuracy {100 * last['train_domain_accuracy']:.1f}%",
            flush=True,
        )
    results["load_average_end"] = os.getloadavg()[0]
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
