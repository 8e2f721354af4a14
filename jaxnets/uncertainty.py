"""Uncertainty: sampled predictions (MC dropout, deep ensembles), their aleatoric/epistemic split, calibration
(ECE, reliability diagrams, temperature scaling) and out-of-distribution detection (AUROC).

- MC dropout (Gal & Ghahramani 2016): ``sample_outputs`` runs a dropout network in training mode with S keys.
- Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017): ``ensemble_outputs`` stacks the members' outputs.
- Split of the predictive uncertainty over S samples (axis 0): for regression the law of total variance,
  Var[y] = E_s[sigma_s^2] (aleatoric) + Var_s[mu_s] (epistemic) (``variance_split``); for classification
  H[E_s p_s] = E_s H[p_s] (aleatoric) + mutual information (epistemic) (``entropy_split``).
- Calibration (Guo, Pleiss, Sun & Weinberger 2017): ``reliability`` bins the top-class confidences,
  ``expected_calibration_error`` weights their |accuracy - confidence| gaps, ``fit_temperature`` finds the T
  minimising the NLL of ``softmax(logits / T)`` on held-out data.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import models, nn

Array = jax.Array


def sample_outputs(
    model: models.Model, params: nn.PyTree, state: nn.PyTree, x: Array, key: Array, samples: int = 20
) -> Array:
    """``samples`` stochastic forward passes (samples, batch, ...) of a dropout network, dropout on (MC dropout).
    The model must have no non-trained state (batch norm would switch to batch statistics in training mode)."""
    if jax.tree.leaves(state):
        raise ValueError(f"{model.name} has non-trained state (batch norm?); MC dropout needs a model without it")
    if samples < 1:
        raise ValueError(f"samples must be >= 1; got {samples}")
    return _sampler(model)(params, state, x, jax.random.split(key, samples))


def ensemble_outputs(model: models.Model, members: Sequence[tuple[nn.PyTree, nn.PyTree]], x: Array) -> Array:
    """The outputs (members, batch, ...) of an ensemble: one ``(params, state)`` per member, evaluation mode."""
    if not members:
        raise ValueError("an ensemble needs at least one (params, state) member")
    run = _evaluator(model)
    return jnp.stack([run(p, s, x) for p, s in members])


@functools.lru_cache(maxsize=16)
def _sampler(model: models.Model):
    """One compiled function per model: outputs in training mode (dropout on) for each of a stack of keys."""
    return jax.jit(
        jax.vmap(lambda p, s, x, k: model.apply(p, s, x, key=k, train=True)[0], in_axes=(None, None, None, 0))
    )


@functools.lru_cache(maxsize=16)
def _evaluator(model: models.Model):
    return jax.jit(lambda p, s, x: model.apply(p, s, x)[0])


def variance_split(means: Array, variances: Array) -> tuple[Array, Array, Array]:
    """Law of total variance over samples (axis 0) of Gaussian predictions: returns (aleatoric = E[sigma^2],
    epistemic = Var[mu], total = their sum = the variance of the equally weighted mixture)."""
    aleatoric = jnp.mean(variances, axis=0)
    epistemic = jnp.var(means, axis=0)
    return aleatoric, epistemic, aleatoric + epistemic


def entropy(probs: Array, axis: int = -1) -> Array:
    """Shannon entropy in nats of categorical distributions along ``axis``."""
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(jnp.where(probs > 0, probs, 1.0)), 0.0), axis=axis)


def entropy_split(probs: Array) -> tuple[Array, Array, Array]:
    """Split over samples (axis 0) of class probabilities (samples, batch, classes): returns (aleatoric = E[H[p_s]],
    epistemic = mutual information, total = H[E p_s], the predictive entropy)."""
    total = entropy(jnp.mean(probs, axis=0))
    aleatoric = jnp.mean(entropy(probs), axis=0)
    return aleatoric, total - aleatoric, total


def _check_probs(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"need probabilities (n, classes) and labels (n,); got {probs.shape} and {labels.shape}")
    return probs, labels


def reliability(probs, labels, bins: int = 15) -> dict[str, np.ndarray]:
    """Reliability-diagram data: the top-class confidences cut into ``bins`` equal-width bins of (0, 1];
    per bin the mean ``confidence``, the ``accuracy`` (NaN for an empty bin) and the ``count``; ``edges`` (bins+1)."""
    probs, labels = _check_probs(probs, labels)
    if bins < 1:
        raise ValueError(f"bins must be >= 1; got {bins}")
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)  # (lo, hi] bins
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, conf, bins) / count
        accuracy = np.bincount(which, correct, bins) / count
    return {"confidence": confidence, "accuracy": accuracy, "count": count, "edges": edges}


def expected_calibration_error(probs, labels, bins: int = 15) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): sum over bins of (count / n) * |accuracy - confidence|."""
    r = reliability(probs, labels, bins)
    full = r["count"] > 0
    return float(np.sum(r["count"][full] * np.abs(r["accuracy"][full] - r["confidence"][full])) / r["count"].sum())


def fit_temperature(logits, labels, low: float = 1e-2, high: float = 1e2, iterations: int = 100) -> float:
    """Guo et al.'s temperature scaling: the T in [low, high] minimising the mean NLL of ``softmax(logits / T)``.

    The NLL is convex in beta = 1/T, so its derivative in beta is monotone and bisection finds the minimiser (to
    about ``(high/low) ** 2**-iterations`` relative precision); a boundary is returned if the optimum lies beyond it."""
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"need logits (n, classes) and labels (n,); got {logits.shape} and {labels.shape}")
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high; got {low}, {high}")
    true = logits[np.arange(len(labels)), labels]

    def slope(beta: float) -> float:  # d/d beta of mean(logsumexp(beta z) - beta z_y)
        z = beta * logits
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return float(np.mean(np.sum(p * logits, axis=1) - true))

    lo, hi = np.log(1 / high), np.log(1 / low)  # in log beta
    if slope(np.exp(lo)) >= 0:
        return high
    if slope(np.exp(hi)) <= 0:
        return low
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if slope(np.exp(mid)) < 0 else (lo, mid)
    return float(1 / np.exp(0.5 * (lo + hi)))


def auroc(positive_scores, negative_scores) -> float:
    """Area under the ROC curve of telling positives (e.g. out-of-distribution inputs) from negatives by a score,
    higher = more positive: P(score of a positive > score of a negative) + P(tie) / 2 (Mann-Whitney U)."""
    pos, neg = np.asarray(positive_scores, np.float64).ravel(), np.asarray(negative_scores, np.float64).ravel()
    if not len(pos) or not len(neg):
        raise ValueError(f"need at least one positive and one negative score; got {len(pos)} and {len(neg)}")
    scores = np.concatenate([pos, neg])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2.0
    return float(u / (len(pos) * len(neg)))
