"""GAN and DCGAN on MNIST, scored in a jaxnets classifier's feature space.

    python bench/gan.py --gan-epochs 5 --dcgan-epochs 2 --out runs/bench-gan

1. Trains ``models.feature_classifier`` (two 3x3 conv + max-pool blocks, dense 128, ReLU, dense 10) on MNIST
   scaled to [-1, 1]; its 128 post-ReLU activations of the hidden dense layer are the feature space.
2. Trains ``gan`` and ``dcgan`` with ``train.gan_step`` (Adam 2e-4, beta1 = 0.5 for each player, batch 128) through
   ``train.fit`` one epoch at a time (checkpoint, resume), writing a 10x10 grid of samples from fixed latent codes
   after every epoch (``<out>/<model>/samples_epoch<k>.png``).
3. Scores 10,000 samples of each against the 10,000 test digits: the Fréchet distance between Gaussians fitted to
   their features, and the histogram of the classifier's predicted classes (classes present, max/min ratio); the
   same for 10,000 real training digits as the floor. Writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import jax
import numpy as np
import optax

from jaxnets import data, models, train, viz
from jaxnets.train import gan_step

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def _scaled(x: np.ndarray) -> np.ndarray:
    return (x.astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def _quiet(_: str) -> None:
    pass


def train_classifier(ds, out: Path, epochs: int):
    model = models.feature_classifier()
    workdir = out / "classifier"
    result = train.fit(
        model,
        _scaled(ds.train_x),
        ds.train_y,
        _scaled(ds.test_x),
        ds.test_y,
        optimizer=optax.adam(1e-3),
        epochs=epochs,
        batch_size=128,
        seed=0,
        workdir=workdir,
        resume=(workdir / train.CHECKPOINT).exists(),
        progress=False,
        log=_quiet,
    )
    return model, result.state, result.history[-1]["test_accuracy"]


def train_gan(name: str, x: np.ndarray, out: Path, epochs: int, seed: int = 0):
    model = models.build(name)
    adam = optax.adam(2e-4, b1=0.5)
    step = gan_step(model, generator_optimizer=adam, discriminator_optimizer=adam)
    z = jax.random.normal(jax.random.PRNGKey(123), (100, models.adversarial_parts(model).latent))
    workdir, t0 = out / name, time.perf_counter()
    result = None
    for epoch in range(1, epochs + 1):  # one fit per epoch: checkpoint, then resume from it, and a grid in between
        # (an existing run in the workdir is continued: epochs it already has are not trained again)
        result = train.fit(
            step,
            x,
            None,
            epochs=epoch,
            batch_size=128,
            seed=seed,
            workdir=workdir,
            resume=(workdir / train.CHECKPOINT).exists(),
            progress=False,
            log=_quiet,
        )
        images, _ = models.adversarial_parts(model).generate(result.state.params, result.state.model_state, z)
        rows = (np.asarray(images).reshape(10, 10, 28, 28, 1) + 1) / 2
        viz.save_image_rows(
            workdir / f"samples_epoch{epoch}.png", list(rows), [""] * 10, title=f"{name}, epoch {epoch}"
        )
        r = result.history[epoch - 1]  # (the epoch's own record, also when it was trained by an earlier run)
        print(
            f"  {name} epoch {epoch}: D loss {r['train_discriminator_loss']:.3f}, G loss "
            f"{r['train_generator_loss']:.3f}, D(x) {r['train_d_real']:.2f}, D(G(z)) {r['train_d_fake']:.2f}, "
            f"{r['seconds']:.0f} s",
            flush=True,
        )
    return model, result.state, time.perf_counter() - t0


def score(classifier, cstate, images: np.ndarray, test_features: np.ndarray) -> dict:
    feats, classes = models.classifier_features(classifier, cstate.params, cstate.model_state, images)
    return {"frechet": models.frechet_distance(feats, test_features), **models.class_histogram(classes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gan-epochs", type=int, default=5)
    parser.add_argument("--dcgan-epochs", type=int, default=2)
    parser.add_argument("--classifier-epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--out", default="runs/bench-gan")
    parser.add_argument("--manual-dir", default=MNIST_DIR)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    ds = data.load_raw("mnist", manual_dir=args.manual_dir, progress=False)
    x_train, x_test = _scaled(ds.train_x), _scaled(ds.test_x)
    classifier, cstate, accuracy = train_classifier(ds, out, args.classifier_epochs)
    print(f"feature classifier: test accuracy {100 * accuracy:.2f}%", flush=True)
    test_feats, test_classes = models.classifier_features(classifier, cstate.params, cstate.model_state, x_test)
    results = {"classifier_test_accuracy": accuracy, "test_digits": models.class_histogram(test_classes)}

    def report(name: str, r: dict) -> None:  # each model's score as soon as it is known
        results[name] = r
        results["load_average"] = os.getloadavg()[0]
        (out / "results.json").write_text(json.dumps(results, indent=1))
        print(
            f"{name:>12}: Fréchet distance {r['frechet']:.2f}, classes present {r['classes_present']}/10, "
            f"max/min class ratio {r['max_min_ratio']:.2f}, counts {r['counts']}",
            flush=True,
        )

    report("train_digits", score(classifier, cstate, x_train[: args.samples], test_feats))
    for name, epochs in (("gan", args.gan_epochs), ("dcgan", args.dcgan_epochs)):
        if epochs < 1:
            continue
        model, state, seconds = train_gan(name, x_train, out, epochs)
        samples = np.concatenate(
            [
                np.asarray(
                    models.gan_sample(model, state.params, state.model_state, jax.random.PRNGKey(1000 + i), 1000)
                )
                for i in range(args.samples // 1000)
            ]
        )
        report(
            name,
            {"epochs": epochs, "train_seconds": round(seconds, 1), **score(classifier, cstate, samples, test_feats)},
        )


if __name__ == "__main__":
    main()
