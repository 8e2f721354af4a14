"""Mixture density networks and uncertainty, measured: Bishop's inverse problem (MDN against least squares), the
aleatoric/epistemic split on a 1-D sine with a gap (MC dropout, a deep ensemble), and on MNIST the expected
calibration error before/after temperature scaling and out-of-distribution AUROCs of the predictive entropy.

    python bench/uncertainty.py --out runs/uncertainty            # all three; --quick for a smoke run
    python bench/uncertainty.py --only mnist --mnist ../shared/data/mnist

Writes figures (bishop.png, gap.png, reliability.png) and metrics.jsonl to --out, and prints one JSON line per part.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import data, models, train, uncertainty, viz

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def _fit(model, x, y, epochs, batch_size, lr, seed=0):
    return train.fit(
        model,
        x,
        y,
        optimizer=optax.adam(lr),
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        log=lambda s: None,
    ).state


def bishop(out: Path, quick: bool) -> dict:
    """MDN (3 Gaussians, 20 tanh units) against a least-squares net of the same size on Bishop's inverse problem."""
    epochs = 60 if quick else 500
    x, y = data.bishop_inverse(1000, seed=0)
    xt, yt = data.bishop_inverse(1000, seed=1)
    mdn = models.mdn((1,), components=3, hidden=(20,))
    s = _fit(mdn, x, y, epochs, 100, 1e-2)
    mse = models.mlp((1,), 1, hidden=(20,), activation="tanh", head="linear")
    s_mse = _fit(mse, x, y, epochs, 100, 1e-2)
    test_nll = float(train.evaluate(mdn, s.params, s.model_state, xt, yt)["loss"])
    pred = np.asarray(mse.apply(s_mse.params, s_mse.model_state, jnp.asarray(x))[0])
    sigma2 = float(np.mean((pred - y) ** 2))  # the least-squares net as a Gaussian with its residual variance
    pred_t = np.asarray(mse.apply(s_mse.params, s_mse.model_state, jnp.asarray(xt))[0])
    mse_nll = float(np.mean(0.5 * (pred_t - yt) ** 2 / sigma2 + 0.5 * np.log(2 * np.pi * sigma2)))
    gx, gy = np.linspace(x.min(), x.max(), 200, dtype=np.float32), np.linspace(-0.1, 1.1, 240, dtype=np.float32)
    outputs = mdn.apply(s.params, s.model_state, jnp.asarray(gx[:, None]))[0]
    density = models.mixture_density(outputs, 3, jnp.asarray(gy))
    fit_line = mse.apply(s_mse.params, s_mse.model_state, jnp.asarray(gx[:, None]))[0]
    viz.plot_conditional_density(
        out / "bishop.png",
        x,
        y,
        gx,
        gy,
        np.asarray(density),
        {"least squares": np.asarray(fit_line)},
        title="Bishop's inverse problem: MDN p(y|x), 3 Gaussians",
    )
    return {
        "part": "bishop",
        "epochs": epochs,
        "mdn_test_nll": round(test_nll, 3),
        "least_squares_gaussian_test_nll": round(mse_nll, 3),
        "least_squares_test_rmse": round(float(np.sqrt(np.mean((pred_t - yt) ** 2))), 4),
    }


def _split(outputs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Samples of one-component MDN outputs (S, n, 3) -> their means and variances (S, n)."""
    return outputs[..., 1], jnp.exp(2 * outputs[..., 2])


def gap(out: Path, quick: bool) -> dict:
    """MC dropout and a 5-member deep ensemble of heteroscedastic tanh nets (100-100, Adam 3e-3, batch 50) on a sine
    with no data in (-1, 1)."""
    epochs, members = (60, 2) if quick else (400, 5)
    x, y = data.gap_sine(400, seed=0)
    grid = np.linspace(-5, 5, 201, dtype=np.float32)[:, None]
    inside = np.abs(grid[:, 0]) < 1
    between = (np.abs(grid[:, 0]) > 1.5) & (np.abs(grid[:, 0]) < 3.5)
    drop = models.heteroscedastic((1,), hidden=(100, 100), activation="tanh", dropout=0.1)
    s = _fit(drop, x, y, epochs, 50, 3e-3)
    mc = uncertainty.sample_outputs(drop, s.params, s.model_state, jnp.asarray(grid), jax.random.key(1), 200)
    net = models.heteroscedastic((1,), hidden=(100, 100), activation="tanh")
    states = [_fit(net, x, y, epochs, 50, 3e-3, seed=k) for k in range(members)]
    ens = uncertainty.ensemble_outputs(net, [(t.params, t.model_state) for t in states], jnp.asarray(grid))
    panels, record = {}, {"part": "gap", "epochs": epochs, "members": members}
    for name, samples in (("MC dropout (p=0.1, 200 samples)", mc), (f"deep ensemble ({members})", ens)):
        aleatoric, epistemic, _ = uncertainty.variance_split(*_split(samples))
        panels[name] = (jnp.mean(samples[..., 1], axis=0), aleatoric, epistemic)
        key = "mc_dropout" if name.startswith("MC") else "ensemble"
        record[f"{key}_epistemic_sd_gap"] = round(float(jnp.sqrt(epistemic[inside]).mean()), 4)
        record[f"{key}_epistemic_sd_data"] = round(float(jnp.sqrt(epistemic[between]).mean()), 4)
        record[f"{key}_aleatoric_sd_data"] = round(float(jnp.sqrt(aleatoric[between]).mean()), 4)
    viz.plot_uncertainty_bands(out / "gap.png", x, y, grid, panels)
    return record


def _probs(model, params, state, x, batch=2000):
    logits = jnp.concatenate(
        [model.apply(params, state, jnp.asarray(x[i : i + batch]))[0] for i in range(0, len(x), batch)]
    )
    return np.asarray(logits)


def mnist(out: Path, quick: bool, manual_dir: str) -> dict:
    """A 784-512-512-10 ReLU MLP (Adam, no regularisation, trained past its best epoch) and the same with dropout
    0.5 (MC dropout); temperature fitted on 5,000 held-out training images; OOD: test digits rotated 90 degrees and
    uniform-noise images against the clean test digits, scored by the predictive entropy."""
    raw = data.prepare(data.load_raw("mnist", manual_dir=manual_dir), normalisation="unit")
    n = 5000 if quick else 55_000
    x, y, xv, yv = raw.train_x[:n], raw.train_y[:n], raw.train_x[55_000:], raw.train_y[55_000:]
    xt, yt = raw.test_x, raw.test_y
    if quick:
        xt, yt, xv, yv = xt[:2000], yt[:2000], xv[:2000], yv[:2000]
    epochs = 2 if quick else 20
    rotated = np.rot90(xt, 1, axes=(1, 2)).copy()
    noise = np.random.default_rng(0).uniform(0, 1, xt.shape).astype(np.float32)
    record = {"part": "mnist", "train_examples": n, "epochs": epochs}
    plain = models.mlp((28, 28, 1), 10, hidden=(512, 512))
    s = _fit(plain, x, y, epochs, 128, 1e-3)
    logits = _probs(plain, s.params, s.model_state, xt)
    t = uncertainty.fit_temperature(_probs(plain, s.params, s.model_state, xv), yv)
    before, after = jax.nn.softmax(logits), jax.nn.softmax(logits / t)
    r_before, r_after = uncertainty.reliability(before, yt), uncertainty.reliability(after, yt)
    r_before["ece"] = uncertainty.expected_calibration_error(before, yt)
    r_after["ece"] = uncertainty.expected_calibration_error(after, yt)
    record.update(
        test_accuracy=round(float(np.mean(logits.argmax(1) == yt)), 4),
        temperature=round(t, 3),
        ece_before=round(r_before["ece"], 4),
        ece_after=round(r_after["ece"], 4),
    )
    h_clean = uncertainty.entropy(after)
    for name, ood in (("rotated", rotated), ("noise", noise)):
        h = uncertainty.entropy(jax.nn.softmax(_probs(plain, s.params, s.model_state, ood) / t))
        record[f"auroc_entropy_{name}"] = round(uncertainty.auroc(h, h_clean), 4)
    drop = models.mlp((28, 28, 1), 10, hidden=(512, 512), dropout=0.5)
    sd = _fit(drop, x, y, epochs, 128, 1e-3)
    key = jax.random.key(2)

    def mc(xs):
        return np.concatenate(
            [
                np.asarray(
                    jax.nn.softmax(
                        uncertainty.sample_outputs(
                            drop, sd.params, sd.model_state, jnp.asarray(xs[i : i + 1000]), key, 30
                        )
                    )
                )
                for i in range(0, len(xs), 1000)
            ],
            axis=1,
        )

    p_clean = mc(xt)
    mean_clean = p_clean.mean(0)
    _, mi_clean, h_clean = uncertainty.entropy_split(p_clean)
    record.update(
        mc_dropout_test_accuracy=round(float(np.mean(mean_clean.argmax(1) == yt)), 4),
        mc_dropout_ece=round(uncertainty.expected_calibration_error(mean_clean, yt), 4),
    )
    for name, ood in (("rotated", rotated), ("noise", noise)):
        _, mi, h = uncertainty.entropy_split(mc(ood))
        record[f"mc_dropout_auroc_entropy_{name}"] = round(uncertainty.auroc(h, h_clean), 4)
        record[f"mc_dropout_auroc_mutual_info_{name}"] = round(uncertainty.auroc(mi, mi_clean), 4)
    viz.plot_reliability(out / "reliability.png", {"MLP": r_before, f"MLP, T = {t:.2f}": r_after})
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/uncertainty")
    p.add_argument("--only", choices=("bishop", "gap", "mnist"), action="append")
    p.add_argument("--mnist", default=MNIST_DIR, help="directory of the MNIST files")
    p.add_argument("--quick", action="store_true", help="a few epochs: a smoke run, not the figures")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = {
        "bishop": lambda: bishop(out, args.quick),
        "gap": lambda: gap(out, args.quick),
        "mnist": lambda: mnist(out, args.quick, args.mnist),
    }
    for name in args.only or parts:
        record = {**parts[name](), "load_average": round(os.getloadavg()[0], 1)}
        print(json.dumps(record), flush=True)
        train.append_metrics(out / "metrics.jsonl", record)


if __name__ == "__main__":
    main()
