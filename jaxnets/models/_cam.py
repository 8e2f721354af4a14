"""Weakly supervised localisation: a classifier ending in convolution -> global average pooling -> dense
(``cam_cnn``), its class activation maps (CAM, Zhou et al. 2016), Grad-CAM (Selvaraju et al. 2017), boxes from
thresholded maps and localisation accuracy against true boxes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._detection import box_iou
from jaxnets.nn import PyTree, Shape

Array = jax.Array
Parts = tuple[Callable[[Array], Array], Callable[[Array], Array]]  # (images -> feature maps, feature maps -> logits)


def _cam_features(widths: Sequence[int]) -> nn.Layer:
    """3x3 convolutions (SAME) with ReLU, 2x2 max-pooling after the first two: maps at a quarter of the input size."""
    layers: list[nn.Layer] = []
    for i, width in enumerate(widths):
        layers += [nn.conv2d(width, 3, padding="SAME", w_init=nn.initializers.he_normal(), name=f"conv{i}")]
        layers += [nn.activation("relu")] + ([nn.max_pool(2, name=f"pool{i}")] if i < 2 else [])
    return nn.serial(*layers, name="features")


def cam_cnn(
    input_shape: Shape = (64, 64, 1), num_classes: int = 10, features: Sequence[int] = (16, 32, 64, 64)
) -> Model:
    """CAM's network (Zhou et al. 2016) scaled to digit canvases: 3x3 convolutions of ``features`` maps with ReLU
    (2x2 max-pooling after the first two: 16 x 16 maps on 64 x 64 inputs), global average pooling, one dense layer
    to the classes. Trained on image labels only; ``class_activation_map`` localises with it."""
    check_sizes("cam_cnn", input_shape=input_shape, num_classes=num_classes, features=features)
    if len(features) < 2:
        raise ValueError(f"cam_cnn: features must list at least 2 widths; got {tuple(features)}")
    layer = nn.serial(
        _cam_features(tuple(features)),
        nn.global_avg_pool(name="gap"),
        nn.dense(num_classes, w_init=nn.initializers.glorot_uniform(), name="out"),
    )
    return Model("cam_cnn", layer, tuple(input_shape))


def class_activation_map(
    model: Model, params: PyTree, state: PyTree, x: Array, classes: Array | None = None, upsample: bool = True
) -> Array:
    """CAM of a ``cam_cnn``: for each image the class's dense weights applied to the last feature maps,
    ``M_c(i, j) = sum_k w_kc A_k(i, j)`` (no bias, no ReLU), (n, h, w); ``classes`` (n,) default to the predicted
    ones; ``upsample``: bilinearly resized to the input's height and width."""
    features, _ = _parts(model, params, state)
    maps = features(jnp.asarray(x))
    w = params["out"]["w"]  # (K, classes)
    if classes is None:
        classes = jnp.argmax(jnp.mean(maps, axis=(1, 2)) @ w + params["out"]["b"], axis=-1)
    cam = jnp.einsum("nhwk,kn->nhw", maps, w[:, jnp.asarray(classes)])
    return _resize(cam, x.shape[1:3]) if upsample else cam


def grad_cam(
    model: Model, params: PyTree, state: PyTree, x: Array, classes: Array | None = None, upsample: bool = True
) -> Array:
    """Grad-CAM: ``ReLU(sum_k alpha_k A_k)`` on the last convolution's (rectified) feature maps ``A``, with
    ``alpha_k`` the spatial mean of d logit_c / d A_k (``jax.grad``), (n, h, w); for ``cam_cnn`` and ``small_cnn``.
    ``classes`` default to the predicted ones; ``upsample`` as in ``class_activation_map``. On a ``cam_cnn``
    it is ReLU(CAM) / (h w): CAM up to a positive scale where CAM is positive."""
    features, head = _parts(model, params, state)
    maps = features(jnp.asarray(x))
    logits = head(maps)
    picked = jax.nn.one_hot(jnp.argmax(logits, -1) if classes is None else classes, logits.shape[-1], dtype=maps.dtype)
    grads = jax.grad(lambda a: jnp.sum(head(a) * picked))(maps)  # examples are independent: one pass for all
    cam = jax.nn.relu(jnp.einsum("nhwk,nk->nhw", maps, jnp.mean(grads, axis=(1, 2))))
    return _resize(cam, x.shape[1:3]) if upsample else cam


def _resize(maps: Array, size: tuple[int, ...]) -> Array:
    return jax.image.resize(maps, (maps.shape[0], *size), method="bilinear")


def _parts(model: Model, params: PyTree, state: PyTree) -> Parts:
    """(images -> last rectified feature maps, maps -> logits) of the models whose features are known, in
    evaluation mode."""
    if model.name == "cam_cnn" and "features" in params:
        widths = [params["features"][f"conv{i}"]["w"].shape[-1] for i in range(len(params["features"]))]
        features = _cam_features(widths)
        gap = nn.global_avg_pool()
        out = nn.dense(params["out"]["w"].shape[-1])
        return (
            lambda x: features.apply(params["features"], state.get("features", {}), x)[0],
            lambda a: out.apply(params["out"], {}, gap.apply({}, {}, a)[0])[0],
        )
    if model.name == "small_cnn" and "conv" in params:
        w = params["conv"]["w"]
        conv = nn.conv2d(w.shape[-1], w.shape[0], padding="SAME")
        tail = nn.serial(nn.max_pool(2), nn.flatten(), nn.dense(params["out"]["w"].shape[-1], name="out"))
        return (
            lambda x: jax.nn.relu(conv.apply(params["conv"], {}, x)[0]),
            lambda a: tail.apply({"out": params["out"]}, {}, a)[0],
        )
    raise ValueError(f"{model.name}: class maps need a cam_cnn or a small_cnn (their last feature maps are known)")


def box_from_map(heat: np.ndarray, threshold: float = 0.2) -> np.ndarray:
    """The box (x_min, y_min, x_max, y_max), maxima exclusive, of the largest 4-connected region where a map (h, w)
    is at least ``threshold`` times its maximum (Zhou et al. 2016, section 4.1: "above 20% of the max value of the
    CAM"; their ILSVRC code divides the map by its maximum and writes it as an image, clipping negative values).
    Not the minimum-maximum scaling of their visualisation code: negative evidence inside the object would lower
    the threshold below the background. The whole image for a map without positive values."""
    from scipy import ndimage  # (a dependency of jax; imported here to keep jaxnets' start-up light)

    heat = np.asarray(heat, np.float64)
    high = heat.max()
    if not high > 0:
        return np.array([0.0, 0.0, heat.shape[1], heat.shape[0]], np.float32)
    regions, _ = ndimage.label(heat >= threshold * high)
    largest = 1 + int(np.argmax(np.bincount(regions.ravel())[1:]))
    rows, cols = ndimage.find_objects(regions)[largest - 1]
    return np.array([cols.start, rows.start, cols.stop, rows.stop], np.float32)


CLASS_MAPS = {"cam": class_activation_map, "grad_cam": grad_cam}


def localisation_accuracy(
    model: Model,
    params: PyTree,
    state: PyTree,
    x: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    method: str = "cam",
    threshold: float = 0.2,
    batch_size: int = 250,
) -> dict[str, float]:
    """Localisation on images ``x`` with one true box (n, 4) and label (n,) each: ``'loc'``, the fraction whose box
    from the true class's map (``box_from_map``) has IoU >= 0.5 with the true box (CAM's "GT-known" localisation);
    ``'top1_loc'``, the fraction also classified correctly (the predicted class's map is then the true one's);
    ``'accuracy'``. ``method``: 'cam' or 'grad_cam'."""
    if method not in CLASS_MAPS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(CLASS_MAPS)}")
    fn = _maps_fn(model, method)
    hits, correct = [], []
    for i in range(0, len(x), batch_size):
        xb, lb = jnp.asarray(x[i : i + batch_size]), jnp.asarray(labels[i : i + batch_size])
        heat, predicted = jax.device_get(fn(params, state, xb, lb))
        found = np.stack([box_from_map(h, threshold) for h in heat])
        hits.append(
            np.asarray(box_iou(jnp.asarray(found)[:, None], jnp.asarray(boxes[i : i + batch_size])[:, None]))[:, 0, 0]
        )
        correct.append(predicted == np.asarray(lb))
    hit, ok = np.concatenate(hits) >= 0.5, np.concatenate(correct)
    return {"loc": float(hit.mean()), "top1_loc": float((hit & ok).mean()), "accuracy": float(ok.mean())}


@functools.lru_cache(maxsize=8)
def _maps_fn(model: Model, method: str):
    def run(params, state, x, labels):
        logits, _ = model.apply(params, state, x)
        return CLASS_MAPS[method](model, params, state, x, labels), jnp.argmax(logits, axis=-1)

    return jax.jit(run)
