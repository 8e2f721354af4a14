"""Losses and metrics as plain per-example functions of (network outputs, integer labels).

Each output head pairs a final non-linearity with its loss: linear + mean squared error, sigmoid + binary
cross-entropy, softmax + cross-entropy, and the perceptron's step + perceptron criterion.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def mean_squared_error(predictions: Array, targets: Array) -> Array:
    """Per-example mean of the squared error over all but the batch axis."""
    err = jnp.square(predictions - targets)
    return err.reshape(err.shape[0], -1).mean(axis=1)


def binary_cross_entropy_with_logits(logits: Array, labels: Array) -> Array:
    """Per-example binary cross-entropy of sigmoid(logits) against 0/1 labels, stable for large |logits|."""
    logits = logits.reshape(logits.shape[0], -1)
    labels = labels.reshape(labels.shape[0], -1).astype(logits.dtype)
    return optax.sigmoid_binary_cross_entropy(logits, labels).mean(axis=1)


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Per-example cross-entropy of softmax(logits) against integer class labels."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32))


def perceptron_criterion(logits: Array, labels: Array) -> Array:
    """Rosenblatt's perceptron criterion sum_j (o_j - t_j) z_j with o = step(z) held fixed.

    Its gradient is -(t - o) x per unit, so one SGD step on the batch sum is exactly the classic perceptron rule.
    """
    targets = _unit_targets(logits, labels)
    fired = jax.lax.stop_gradient((logits > 0).astype(logits.dtype))
    return jnp.sum((fired - targets) * logits, axis=-1)


def _unit_targets(outputs: Array, labels: Array) -> Array:
    """Per-unit 0/1 targets: the label itself for one output unit, one-hot for several."""
    if outputs.shape[-1] == 1:
        return labels.reshape(-1, 1).astype(outputs.dtype)
    return jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)


def predict(head: str, outputs: Array) -> Array:
    """Class predictions from a head's outputs: threshold for one unit, argmax for several."""
    if outputs.shape[-1] == 1:
        threshold = 0.5 if head == "linear" else 0.0
        return (outputs[..., 0] > threshold).astype(jnp.int32)
    return jnp.argmax(outputs, axis=-1).astype(jnp.int32)


def accuracy(outputs: Array, labels: Array, head: str = "softmax") -> Array:
    """Fraction of examples whose predicted class equals the label."""
    return jnp.mean(predict(head, outputs) == labels)


HEADS: dict[str, Callable[[Array, Array], Array]] = {
    "softmax": softmax_cross_entropy,
    "sigmoid": binary_cross_entropy_with_logits,
    "linear": lambda outputs, labels: mean_squared_error(outputs, _unit_targets(outputs, labels)),
    "perceptron": perceptron_criterion,
}


def loss_for(head: str) -> Callable[[Array, Array], Array]:
    """The per-example loss that matches an output head ('softmax', 'sigmoid', 'linear' or 'perceptron')."""
    try:
        return HEADS[head]
    except KeyError:
        raise ValueError(f"unknown output head {head!r}; choose one of {sorted(HEADS)}") from None


# --- auxiliary classifiers, reconstructions, variational and energy-based objectives -----------------------------


def auxiliary_classifier_loss(outputs: Array, labels: Array, aux_weight: float = 0.3) -> Array:
    """Per-example loss of a network with auxiliary classifiers (GoogLeNet): ``outputs`` (batch, 1 + heads,
    classes) stack the main logits and each auxiliary head's; the main softmax cross-entropy plus ``aux_weight``
    (the paper's 0.3) times each auxiliary one."""
    aux = sum(softmax_cross_entropy(outputs[:, i], labels) for i in range(1, outputs.shape[1]))
    return softmax_cross_entropy(outputs[:, 0], labels) + aux_weight * aux


def bernoulli_nll(logits: Array, x: Array) -> Array:
    """-log p(x | logits) of independent Bernoulli pixels, summed per example: the binary cross-entropy of
    ``sigmoid(logits)`` against targets ``x`` in [0, 1], in nats per example."""
    logits, x = logits.reshape(logits.shape[0], -1), x.reshape(x.shape[0], -1).astype(logits.dtype)
    return jnp.sum(jnp.logaddexp(0.0, logits) - x * logits, axis=1)


def squared_error(logits: Array, x: Array) -> Array:
    """Summed squared error of the reconstruction ``sigmoid(logits)`` per example (an autoencoder's figure)."""
    err = jax.nn.sigmoid(logits) - x.astype(logits.dtype)
    return jnp.sum(err.reshape(err.shape[0], -1) ** 2, axis=1)


def gaussian_kl(mean: Array, log_var: Array) -> Array:
    """KL(N(mean, diag exp(log_var)) || N(0, I)) per example, closed form:
    0.5 * sum(exp(log_var) + mean^2 - 1 - log_var)."""
    return 0.5 * jnp.sum(jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var, axis=-1)


def free_energy(params: dict[str, Array], v: Array) -> Array:
    """A Bernoulli-Bernoulli RBM's free energy F(v) = -v.b_v - sum_j softplus(b_j + (v W)_j) per example (flat
    visible vectors; ``params`` ``{'w', 'b', 'b_visible'}``): p(v) is proportional to exp(-F(v))."""
    return -v @ params["b_visible"] - jnp.sum(jax.nn.softplus(v @ params["w"] + params["b"]), axis=-1)


def contrastive_divergence(params: dict[str, Array], v0: Array, vk: Array) -> Array:
    """Per-example CD surrogate F(v0) - F(stop_gradient(vk)) (Hinton 2002): with ``vk`` the end of a Gibbs chain
    started at the data ``v0``, minus its batch-mean gradient is the CD update."""
    return free_energy(params, v0) - free_energy(params, jax.lax.stop_gradient(vk))


# --- densities, metric learning and style (issue 20) --------------------------------------------------------------

_LOG_2PI = 1.8378770664093453


def gaussian_nll(mean: Array, log_scale: Array, targets: Array) -> Array:
    """-log N(targets | mean, exp(log_scale)^2) of independent Gaussians, summed over all but the batch axis."""
    z = (targets - mean) * jnp.exp(-log_scale)
    nll = 0.5 * jnp.square(z) + log_scale + 0.5 * _LOG_2PI
    return nll.reshape(nll.shape[0], -1).sum(axis=1)


def mdn_nll(logits: Array, means: Array, log_scales: Array, targets: Array) -> Array:
    """Per-example -log p(targets) under Bishop's (1994) mixture density: weights ``softmax(logits)`` (batch, K),
    diagonal Gaussian components ``means``/``log_scales`` (batch, K, D), ``targets`` (batch, D); a log-sum-exp over
    the components, stable for far-off targets."""
    z = (targets[:, None, :] - means) * jnp.exp(-log_scales)
    log_components = -jnp.sum(0.5 * jnp.square(z) + log_scales + 0.5 * _LOG_2PI, axis=-1)
    return -jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_components, axis=-1)


def euclidean_distance(a: Array, b: Array, eps: float = 1e-12) -> Array:
    """Per-example Euclidean distance over the last axis, with a finite gradient at zero distance."""
    return jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(a - b), axis=-1), eps))


def contrastive_loss(distance: Array, same: Array, margin: float = 1.0) -> Array:
    """Hadsell, Chopra & LeCun (2006): ``d^2 / 2`` for a similar pair (``same`` = 1), ``max(0, margin - d)^2 / 2``
    for a dissimilar one (``same`` = 0); zero once similar pairs coincide and dissimilar ones are ``margin`` apart."""
    same = same.astype(distance.dtype)
    return 0.5 * (same * jnp.square(distance) + (1.0 - same) * jnp.square(jnp.maximum(margin - distance, 0.0)))


def squared_distances(embeddings: Array) -> Array:
    """All pairwise squared Euclidean distances of a batch of embeddings (batch, D) -> (batch, batch)."""
    diff = embeddings[:, None, :] - embeddings[None, :, :]
    return jnp.sum(jnp.square(diff), axis=-1)


def triplet_loss(anchor: Array, positive: Array, negative: Array, margin: float = 0.2) -> Array:
    """Schroff, Kalenichenko & Philbin (2015): ``max(0, |a - p|^2 - |a - n|^2 + margin)`` per triplet."""
    d_ap = jnp.sum(jnp.square(anchor - positive), axis=-1)
    d_an = jnp.sum(jnp.square(anchor - negative), axis=-1)
    return jnp.maximum(d_ap - d_an + margin, 0.0)


def batch_hard_triplet_loss(embeddings: Array, labels: Array, margin: float = 0.2, squared: bool = True) -> Array:
    """The triplet loss of each example as anchor with its batch-hard triplet (Hermans, Beyer & Leibe 2017): the
    farthest same-label example and the nearest other-label one, squared distances as in Schroff et al. (or, with
    ``squared=False``, Euclidean ones as in Hermans et al.: a squared distance's gradient vanishes as two embeddings
    meet, and hard mining with it can pull a network's outputs into one point and leave them there). An anchor whose
    label has no other example (or no other label) in the batch has loss 0."""
    d = squared_distances(embeddings)
    if not squared:  # (clamped: sqrt's gradient at 0, on the diagonal, would be infinite)
        d = jnp.sqrt(jnp.maximum(d, 1e-12))
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(len(labels), dtype=bool)
    hardest_pos = jnp.max(jnp.where(positive, d, -jnp.inf), axis=1)
    hardest_neg = jnp.min(jnp.where(same, jnp.inf, d), axis=1)
    valid = jnp.any(positive, axis=1) & jnp.any(~same, axis=1)
    loss = jnp.maximum(hardest_pos - hardest_neg + margin, 0.0)
    return jnp.where(valid, loss, 0.0)


def gram_matrix(features: Array) -> Array:
    """Gatys et al.'s (2016) style representation: channel correlations of feature maps (batch, *spatial, C) ->
    (batch, C, C), divided by the number of positions."""
    f = features.reshape(features.shape[0], -1, features.shape[-1])
    return jnp.einsum("bpc,bpd->bcd", f, f) / f.shape[1]


def content_loss(features: Array, target: Array) -> Array:
    """Per-example half summed squared difference of feature maps (Gatys et al. 2016, eq. 1)."""
    err = jnp.square(features - target)
    return 0.5 * err.reshape(err.shape[0], -1).sum(axis=1)


def style_loss(features: Array, target_gram: Array) -> Array:
    """Per-example squared Frobenius distance between the Gram matrix of ``features`` and ``target_gram`` over
    4 C^2 (Gatys et al. 2016, eq. 4, with the Gram matrix already normalised by the number of positions)."""
    c = features.shape[-1]
    return jnp.sum(jnp.square(gram_matrix(features) - target_gram), axis=(1, 2)) / (4.0 * c * c)


def total_variation(images: Array) -> Array:
    """Per-example total variation (sum of squared differences of neighbouring pixels, both directions) of a
    batch of images (batch, H, W, C): the smoothness regulariser of neural style transfer."""
    dh = jnp.square(images[:, 1:, :, :] - images[:, :-1, :, :]).sum(axis=(1, 2, 3))
    dw = jnp.square(images[:, :, 1:, :] - images[:, :, :-1, :]).sum(axis=(1, 2, 3))
    return dh + dw


# --- adversarial and latent-variable objectives (issue 17) --------------------------------------------------------


def discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
    """Per-example GAN discriminator loss (Goodfellow et al. 2014): ``-log D(x) - log(1 - D(G(z)))`` with
    ``D = sigmoid(logits)``, written with softplus so that it is stable for large |logits|."""
    real, fake = real_logits.reshape(real_logits.shape[0], -1), fake_logits.reshape(fake_logits.shape[0], -1)
    return (jax.nn.softplus(-real) + jax.nn.softplus(fake)).mean(axis=1)


def generator_loss(fake_logits: Array, saturating: bool = False) -> Array:
    """Per-example GAN generator loss: the non-saturating ``-log D(G(z))`` of Goodfellow et al. (2014, section 3),
    or with ``saturating=True`` the minimax ``log(1 - D(G(z)))``, whose gradient vanishes when D wins."""
    fake = fake_logits.reshape(fake_logits.shape[0], -1)
    return (-jax.nn.softplus(fake) if saturating else jax.nn.softplus(-fake)).mean(axis=1)


def gaussian_frechet_distance(mean_a: Array, cov_a: Array, mean_b: Array, cov_b: Array) -> Array:
    """Fréchet (2-Wasserstein) distance squared between N(mean_a, cov_a) and N(mean_b, cov_b) (Heusel et al.
    2017's FID formula): ``|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))``. The trace of the
    matrix square root is taken as the sum of square roots of the eigenvalues of ``cov_a^(1/2) cov_b cov_a^(1/2)``
    (symmetric, positive semi-definite). Pass float64 arrays (under ``jax.enable_x64``) for a precise value."""
    vals, vecs = jnp.linalg.eigh(cov_a)
    root_a = (vecs * jnp.sqrt(jnp.clip(vals, 0.0))) @ vecs.T
    middle = root_a @ cov_b @ root_a
    trace_root = jnp.sum(jnp.sqrt(jnp.clip(jnp.linalg.eigvalsh((middle + middle.T) / 2), 0.0)))
    return jnp.sum(jnp.square(mean_a - mean_b)) + jnp.trace(cov_a) + jnp.trace(cov_b) - 2.0 * trace_root


def importance_weighted_bound(log_weights: Array) -> Array:
    """Burda et al.'s (2016) k-sample bound on log p(x) from log importance weights ``log p(x, z_i) - log q(z_i|x)``
    of shape (k, batch): ``logsumexp_i(log w_i) - log k`` per example. k = 1 is the ELBO; the bound rises with k
    towards log p(x)."""
    return jax.nn.logsumexp(log_weights, axis=0) - jnp.log(log_weights.shape[0])


def gaussian_log_density(z: Array, mean: Array | float = 0.0, log_var: Array | float = 0.0) -> Array:
    """log N(z | mean, diag(exp(log_var))) summed over the last axis."""
    return -0.5 * jnp.sum(jnp.square(z - mean) * jnp.exp(-log_var) + log_var + _LOG_2PI, axis=-1)
