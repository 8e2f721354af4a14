"""Plots and image grids, the one home of drawing: metric curves, rows of images, an autoencoder's reconstructions
and samples. matplotlib is imported on first use, with the non-interactive Agg backend."""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import models
from jaxnets.data import sort_of_clevr
from jaxnets.data.captions import VOCAB, decode_caption
from jaxnets.data.strokes import to_polylines
from jaxnets.data.vqa import decode
from jaxnets.nn import PyTree, bicubic_resize

RECONSTRUCTIONS = "reconstructions.png"
SAMPLES = "samples.png"
SEGMENTATION = "segmentation.png"
CLASS_MAPS = "class_maps.png"
DETECTIONS = "detections.png"
SUPERRES = "superres.png"
STROKES = "strokes.png"
MEMORY_ATTENTION = "memory_attention.png"
VQA = "vqa.png"
CAPTIONS = "captions.png"

__all__ = ["RECONSTRUCTIONS", "SAMPLES", "plot_curves", "save_image_rows", "save_reconstructions", "write_images"]
__all__ += ["SEGMENTATION", "mask_overlay", "save_segmentations"]
__all__ += ["CLASS_MAPS", "DETECTIONS", "save_class_maps", "save_detections"]
__all__ += ["SUPERRES", "save_superres"]
__all__ += ["plot_conditional_density", "plot_embedding", "plot_reliability", "plot_uncertainty_bands"]
__all__ += ["STROKES", "plot_strokes"]
__all__ += ["MEMORY_ATTENTION", "save_memory_attention"]
__all__ += ["VQA", "question_text", "save_vqa"]
__all__ += ["plot_depth_curves", "plot_filter_banks"]
__all__ += ["CAPTIONS", "save_captions"]


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files only: no window, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(records: list[dict[str, Any]], path: str | os.PathLike) -> None:
    """Plot each metric (loss first, then accuracy, ...) for train, validation and test against epoch into a PNG
    (Agg); a run's ``final`` record (the kept parameters' test metrics) is not an epoch and is left out."""
    plt = _pyplot()
    records = [r for r in records if not r.get("final")]
    epochs = [r["epoch"] for r in records]
    splits = ("train", "val", "test")
    names = list(dict.fromkeys(k.split("_", 1)[1] for k in records[0] if k.split("_", 1)[0] in splits))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):  # (test-only metrics too: mean IoU, mAP)
        scale = 100 if name == "accuracy" else 1
        for split in splits:
            if f"{split}_{name}" in records[0]:
                ax.plot(epochs, [scale * r[f"{split}_{name}"] for r in records], "o-", label=split)
        ax.set(xlabel="epoch", ylabel=name + (" (%)" if scale == 100 else ""), title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _grid(images: np.ndarray) -> np.ndarray:
    """(n, h, w[, c]) -> (h, n*w[, c]) one row with a 1-pixel gap."""
    images = np.asarray(images, np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 2:  # flat vectors: square them if possible
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(f"cannot show vectors of length {images.shape[1]} as square images")
        images = images.reshape(-1, side, side)
    pad = [(0, 0), (0, 0), (0, 1)] + [(0, 0)] * (images.ndim - 3)
    row = np.concatenate(list(np.pad(images, pad, constant_values=1.0)), axis=1)
    return row[:, :-1]


def save_image_rows(
    path: str | os.PathLike, rows: Sequence[np.ndarray], labels: Sequence[str], title: str | None = None
) -> Path:
    """Save rows of images (each (n, h, w[, c]) in [0, 1]) one above the other, labelled on the left, as a PNG."""
    plt = _pyplot()
    grids = [np.clip(_grid(r), 0.0, 1.0) for r in rows]
    h, w = grids[0].shape[:2]
    fig, axes = plt.subplots(len(grids), 1, figsize=(max(4.0, w / 28), 0.35 + len(grids) * h / 28), squeeze=False)
    for ax, grid, label in zip(axes[:, 0], grids, labels, strict=True):
        ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_reconstructions(
    path: str | os.PathLike,
    originals: jax.Array,
    reconstructions: jax.Array,
    inputs: jax.Array | None = None,
    title: str | None = None,
) -> Path:
    """Save originals above their reconstructions (and, for a denoising model, the corrupted ``inputs`` between
    them) as a PNG grid; images in [0, 1], shape (n, h, w[, c]) or (n, h*w)."""
    rows, labels = [np.asarray(originals)], ["original"]
    if inputs is not None:
        rows.append(np.asarray(inputs))
        labels.append("input")
    rows.append(np.asarray(reconstructions))
    labels.append("reconstruction")
    return save_image_rows(path, rows, labels, title)


def write_images(
    model: models.Model,
    params: PyTree,
    state: PyTree,
    x: np.ndarray,
    workdir: str | os.PathLike | None,
    n: int = 12,
    seed: int = 0,
    y: Any = None,
    vocab: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
) -> list[Path]:
    """After training a model that reconstructs its input (``reconstructs(model)``), write ``reconstructions.png`` of
    the first ``n`` examples of ``x`` (for a denoising model also the corrupted inputs, and their reconstruction)
    and, for a VAE, ``samples.png`` drawn from the prior; for a segmentation model given the true masks ``y``,
    ``segmentation.png`` (``save_segmentations``); for a super-resolution model, ``superres.png`` (``save_superres``,
    against the high-resolution ``y`` when given); for the handwriting model, ``strokes.png``: a glyph sampled (bias
    0.5) for each of the first ``n`` glyph ids in ``x``; for a memory network given the dataset's ``vocab``,
    ``memory_attention.png`` (``save_memory_attention``); for a question-answering model of images (inputs
    ``{'image', 'question'}``), ``vqa.png`` (``save_vqa``: ``vocab`` decodes word-id questions, ``class_names`` are
    the answers); for a captioner, ``captions.png`` (``save_captions``: true, greedy and beam-search captions, and
    the attention behind each word); other models (or no ``workdir``) get nothing. Returns the paths written."""
    if workdir is not None and isinstance(model.objective, models.CaptionLoss):
        truth = None if y is None else np.asarray(y[:6])
        words = vocab or VOCAB
        return [save_captions(Path(workdir) / CAPTIONS, model, params, state, np.asarray(x[:6]), truth, words)]
    if workdir is not None and y is not None and isinstance(x, dict) and set(x) == {"image", "question"}:
        first = {k: np.asarray(v[:n]) for k, v in x.items()}
        answers = class_names or sort_of_clevr.ANSWERS
        return [save_vqa(Path(workdir) / VQA, model, params, state, first, np.asarray(y[:n]), vocab, answers)]
    if workdir is not None and vocab and isinstance(x, dict) and set(x) == {"story", "question"}:
        return [save_memory_attention(Path(workdir) / MEMORY_ATTENTION, model, params, state, x, y, vocab)]
    if workdir is not None and model.name == "handwriting":
        glyphs = np.unique(np.asarray(x)[:, 0, 3].astype(np.int32))[:n]
        strokes, valid = models.sample_strokes(model, params, glyphs, jax.random.key(seed), bias=0.5)
        titles = [f"glyph {g}" for g in glyphs]
        return [plot_strokes(Path(workdir) / STROKES, strokes, valid, titles, columns=len(glyphs))]
    if workdir is not None and (model.name == "cam_cnn" or isinstance(model.objective, models.YoloLoss)):
        return [_write_localisation(model, params, state, np.asarray(x[:n]), Path(workdir), y)]
    if workdir is not None and y is not None and model.objective is models.pixel_cross_entropy:
        logits, _ = model.apply(params, state, jnp.asarray(x[:n]))
        return [save_segmentations(Path(workdir) / SEGMENTATION, x[:n], y[:n], np.argmax(logits, -1), model.name)]
    if workdir is not None and isinstance(model.objective, models.SuperResolution):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        high = None if y is None else np.asarray(y[:n])
        return [save_superres(Path(workdir) / SUPERRES, model, params, state, np.asarray(x[:n]), high)]
    if not models.reconstructs(model) or workdir is None:
        return []
    images = jnp.asarray(x[:n])
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    corruption = _corruption_of(model)
    if corruption is not None:
        noisy = jnp.clip(models.corrupt(images, jax.random.PRNGKey(seed), *corruption), 0.0, 1.0)
        paths.append(
            save_reconstructions(
                workdir / RECONSTRUCTIONS,
                images,
                models.reconstruct(model, params, state, noisy),
                inputs=noisy,
                title=f"{model.name}: {corruption[0]} {corruption[1]}",
            )
        )
    else:
        paths.append(
            save_reconstructions(
                workdir / RECONSTRUCTIONS, images, models.reconstruct(model, params, state, images), title=model.name
            )
        )
    if isinstance(model.objective, models.ELBO):
        samples = np.asarray(models.vae_sample(model, params, state, jax.random.PRNGKey(seed), 2 * n))
        paths.append(
            save_image_rows(
                workdir / SAMPLES, [samples[:n], samples[n:]], ["", ""], title="vae: samples from the prior"
            )
        )
    return paths


def save_superres(
    path: str | os.PathLike,
    model: models.Model,
    params: PyTree,
    state: PyTree,
    x: np.ndarray,
    high: np.ndarray | None = None,
) -> Path:
    """Save a super-resolution model's inputs ``x`` (low-resolution pixels drawn as blocks; left out when the input
    is already the bicubic enlargement), their bicubic enlargement, the model's output (``models.upscale``) and the
    ``high``-resolution originals when given, with the mean PSNRs against them in the title, as a PNG."""
    scale = model.objective.scale if isinstance(model.objective, models.SuperResolution) else 1
    out = np.asarray(models.upscale(model, params, state, jnp.asarray(x)))
    bicubic = np.asarray(bicubic_resize(jnp.asarray(x), *out.shape[1:3])) if scale > 1 else x
    rows, labels = [bicubic, out], ["bicubic", model.name]
    if scale > 1:
        rows, labels = [x.repeat(scale, 1).repeat(scale, 2), *rows], ["input", *labels]
    title = model.name + (f" x{scale}" if scale > 1 else "")
    if high is not None:
        rows.append(high)
        labels.append("original")
        psnr = [float(np.mean(models.psnr(jnp.asarray(r), jnp.asarray(high)))) for r in (bicubic, out)]
        title += f": PSNR {psnr[1]:.2f} dB, bicubic {psnr[0]:.2f} dB"
    return save_image_rows(path, rows, labels, title)


def mask_overlay(images: np.ndarray, masks: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Grey ``images`` (n, h, w[, 1]; scaled to [0, 1] each) as RGB (n, h, w, 3) with each pixel of class ``c >= 1``
    of ``masks`` (n, h', w', centred in the image if smaller) tinted with colour ``c - 1`` of matplotlib's tab10;
    class 0 (background) is left as it is."""
    grey = np.asarray(images, np.float32).reshape(len(images), *np.shape(images)[1:3])
    low, high = grey.min((1, 2), keepdims=True), grey.max((1, 2), keepdims=True)
    grey = (grey - low) / np.where(high > low, high - low, 1)
    masks = np.asarray(masks)
    top, left = [(g - m) // 2 for g, m in zip(grey.shape[1:], masks.shape[1:], strict=True)]
    full = np.zeros(grey.shape, masks.dtype)
    full[:, top : top + masks.shape[1], left : left + masks.shape[2]] = masks
    palette = np.concatenate([np.zeros((1, 3)), _pyplot().get_cmap("tab10")(np.arange(10))[:, :3]])
    colour = palette[np.clip(full, 0, len(palette) - 1)]
    tint = (alpha * (full > 0))[..., None]
    return (1 - tint) * grey[..., None] + tint * colour


def save_segmentations(
    path: str | os.PathLike, images: np.ndarray, masks: np.ndarray, predicted: np.ndarray, title: str | None = None
) -> Path:
    """Save input images, their true class ``masks`` over them and the ``predicted`` masks over them (``mask_overlay``:
    digit ``d`` = class ``d + 1`` in colour ``d`` of tab10), three rows, as a PNG."""
    rows = [mask_overlay(images, np.zeros_like(masks)), mask_overlay(images, masks), mask_overlay(images, predicted)]
    return save_image_rows(path, rows, ["input", "true", "predicted"], title)


def _write_localisation(model: models.Model, params: PyTree, state: PyTree, x: np.ndarray, workdir: Path, y) -> Path:
    """``class_maps.png`` of a ``cam_cnn`` (CAM of the predicted class and its box) or ``detections.png`` of a
    ``yolo`` (with the true boxes of ``y`` when given)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if model.name == "cam_cnn":
        logits, _ = model.apply(params, state, jnp.asarray(x))
        classes = np.argmax(np.asarray(logits), -1)
        maps = np.asarray(models.class_activation_map(model, params, state, jnp.asarray(x), jnp.asarray(classes)))
        found = np.stack([models.box_from_map(m) for m in maps])
        truth = [None] * len(x) if y is None else np.asarray(y)[: len(x)]
        captions = [f"{c}" + ("" if t is None else f" (true {t})") for c, t in zip(classes, truth, strict=True)]
        return save_class_maps(workdir / CLASS_MAPS, x, maps, found, captions=captions, title=f"{model.name}: CAM")
    detections = models.detect(model, params, state, jnp.asarray(x), score_threshold=0.3)
    true_boxes, true_labels = (None, None) if y is None else (np.asarray(y["boxes"]), np.asarray(y["labels"]))
    return save_detections(
        workdir / DETECTIONS, x, detections, true_boxes, true_labels, title=f"{model.name}: score > 0.3"
    )


def _box_panels(
    path: str | os.PathLike,
    images: np.ndarray,
    boxes: Sequence[Sequence[tuple[np.ndarray, str, str, str]]],
    heat: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """One panel per image (n, h, w[, 1]) in a row: the image in grey, ``heat`` (n, h, w) over it (jet, each map
    scaled to its maximum), and per image a list of boxes ``(box, colour, line style, label)`` drawn on it."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    images = np.asarray(images, np.float32).reshape(len(images), *np.shape(images)[1:3])
    fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 1.9), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.imshow(images[i], cmap="gray", interpolation="nearest")
        if heat is not None:
            ax.imshow(heat[i] / max(float(heat[i].max()), 1e-12), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        for (x0, y0, x1, y1), colour, style, label in boxes[i]:
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=colour, ls=style, lw=1.2))
            if label:
                ax.text(x0, y0 - 1, label, color=colour, fontsize=6, va="bottom")
        ax.set(xticks=[], yticks=[], title=captions[i] if captions else "")
        ax.title.set_fontsize(7)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def save_class_maps(
    path: str | os.PathLike,
    images: np.ndarray,
    maps: np.ndarray,
    found: np.ndarray | None = None,
    true: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Class activation maps (n, h, w) as heat over their images (n, h, w[, 1]), with the boxes ``found`` (n, 4)
    from them in white and the ``true`` boxes in green (dashed), as a PNG row."""
    boxes = [
        [(b, "white", "-", "") for b in ([] if found is None else [found[i]])]
        + [(b, "lime", "--", "") for b in ([] if true is None else [true[i]])]
        for i in range(len(images))
    ]
    return _box_panels(path, images, boxes, heat=np.asarray(maps), captions=captions, title=title)


def save_detections(
    path: str | os.PathLike,
    images: np.ndarray,
    detections: models.Detections,
    true_boxes: np.ndarray | None = None,
    true_labels: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """A detector's valid ``detections`` (red, 'class score') and the true boxes (n, m, 4) with labels (n, m) (green
    dashed, 'class'; label -1: padding) over their images, as a PNG row."""
    det = jax.tree.map(np.asarray, detections)
    boxes = []
    for i in range(len(images)):
        found = [(b, "red", "-", f"{c} {s:.2f}") for b, s, c, v in zip(*(a[i] for a in det), strict=True) if v]
        truth = [] if true_boxes is None or true_labels is None else zip(true_boxes[i], true_labels[i], strict=True)
        boxes.append(found + [(b, "lime", "--", f"{c}") for b, c in truth if c >= 0])
    return _box_panels(path, images, boxes, title=title)


def _corruption_of(model: models.Model) -> tuple[str, float] | None:
    """(kind, level) of a denoising autoencoder's corruption; None for other models."""
    objective = model.objective
    if isinstance(objective, models.Reconstruction) and objective.corruption is not None:
        return objective.corruption, objective.level
    return None


# --- densities, uncertainty and embeddings (issue 20) -------------------------------------------------------------


def plot_conditional_density(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    grid_x: np.ndarray,
    grid_y: np.ndarray,
    density: np.ndarray,
    fits: dict[str, np.ndarray] | None = None,
    title: str = "",
) -> Path:
    """A predicted conditional density p(y | x) (len(grid_x), len(grid_y)) as an image under the data points, each
    column scaled to its maximum (so that every x shows its modes), with point predictions ``fits`` {label: y at
    grid_x} (e.g. a least-squares fit) drawn as lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    density = np.asarray(density)
    ax.pcolormesh(grid_x, grid_y, (density / density.max(axis=1, keepdims=True)).T, cmap="Blues", shading="auto")
    ax.scatter(np.ravel(x), np.ravel(y), s=3, c="k", alpha=0.4, label="data")
    for label, fit in (fits or {}).items():
        ax.plot(grid_x, np.ravel(fit), lw=2, label=label)
    ax.set(xlabel="x", ylabel="y", title=title)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_uncertainty_bands(
    path: str | os.PathLike,
    x: np.ndarray,
    y: np.ndarray,
    grid: np.ndarray,
    panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> Path:
    """One panel per method {title: (mean, aleatoric variance, epistemic variance) on ``grid``}: the mean, a band of
    +-2 sd of the aleatoric part and, outside it, of the total; training data as points."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False, sharey=True)
    g = np.ravel(grid)
    for ax, (title, (mean, aleatoric, epistemic)) in zip(axes[0], panels.items(), strict=True):
        mean, total = np.ravel(mean), np.sqrt(np.ravel(aleatoric) + np.ravel(epistemic))
        ax.fill_between(g, mean - 2 * total, mean + 2 * total, color="tab:orange", alpha=0.3, label="total (+-2 sd)")
        sd = np.sqrt(np.ravel(aleatoric))
        ax.fill_between(g, mean - 2 * sd, mean + 2 * sd, color="tab:blue", alpha=0.3, label="aleatoric (+-2 sd)")
        ax.scatter(np.ravel(x), np.ravel(y), s=3, c="k", alpha=0.5)
        ax.plot(g, mean, c="k", lw=1)
        span = np.ptp(np.ravel(y))
        ax.set(title=title, xlabel="x", ylim=(np.min(y) - span, np.max(y) + span))
    axes[0][0].legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_reliability(path: str | os.PathLike, diagrams: dict[str, dict[str, np.ndarray]]) -> Path:
    """Reliability diagrams {title: ``uncertainty.reliability(...)`` output (with an optional 'ece')}: accuracy per
    confidence bin against the diagonal of perfect calibration."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(diagrams), figsize=(4 * len(diagrams), 4), squeeze=False)
    for ax, (title, r) in zip(axes[0], diagrams.items(), strict=True):
        edges = r["edges"]
        centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
        ax.bar(centres, np.nan_to_num(r["accuracy"]), width=width, edgecolor="k", label="accuracy")
        ax.bar(
            centres,
            np.nan_to_num(r["confidence"] - r["accuracy"]),
            bottom=np.nan_to_num(r["accuracy"]),
            width=width,
            color="tab:red",
            alpha=0.3,
            label="gap",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ece = f" (ECE {100 * r['ece']:.2f}%)" if "ece" in r else ""
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title + ece)
    axes[0][0].legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_embedding(path: str | os.PathLike, embeddings: np.ndarray, labels: np.ndarray, title: str = "") -> Path:
    """A 2-D embedding (n, 2) as points coloured by label."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    e = np.asarray(embeddings)
    points = ax.scatter(e[:, 0], e[:, 1], c=np.asarray(labels), cmap="tab10", s=2)
    fig.colorbar(points, ax=ax)
    ax.set(title=title)
    return _save(fig, path)


# --- pen strokes (issue 18) ----------------------------------------------------------------------------------------


def plot_strokes(
    path: str | os.PathLike,
    sequences: np.ndarray | jax.Array,
    valid: np.ndarray | jax.Array | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 10,
) -> Path:
    """Pen-offset sequences (n, T, 3+) of ``(dx, dy, pen_up)`` (``data.strokes``; the steps where ``valid`` (n, T) is
    false left out) drawn as strokes, ``columns`` to a row, each with its title (a character, a bias)."""
    seqs, mask = np.asarray(sequences), None if valid is None else np.asarray(valid, bool)
    if seqs.ndim != 3 or seqs.shape[-1] < 3 or not len(seqs):
        raise ValueError(f"sequences must be (n >= 1, time, 3+) steps of (dx, dy, pen_up); got shape {seqs.shape}")
    if columns < 1:
        raise ValueError(f"columns must be >= 1; got {columns}")
    plt = _pyplot()
    cols = min(columns, len(seqs))
    rows = -(-len(seqs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(seqs):
            continue
        for line in to_polylines(seqs[i], None if mask is None else mask[i]):
            ax.plot(line[:, 0], -line[:, 1], "k-", lw=1.5, solid_capstyle="round")
        ax.set_aspect("equal", adjustable="datalim")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return _save(fig, path)


def plot_filter_banks(
    path: str | os.PathLike, banks: dict[str, np.ndarray], titles: dict[str, Sequence[str]] | None = None
) -> Path:
    """Banks of 2-D filters ``{row title: (k, k, n) or (k, k, 1, n)}`` (``data.features.oriented_gradient_filters``,
    a convolution's first-layer kernels), one row of ``n`` images per bank, each filter scaled to its own largest
    magnitude on a diverging map (red positive, blue negative, white zero); ``titles``: a label per filter."""
    if not banks:
        raise ValueError("banks must hold at least one filter bank")
    shaped = {}
    for name, bank in banks.items():
        b = np.asarray(bank, np.float32)
        b = b[:, :, 0, :] if b.ndim == 4 and b.shape[2] == 1 else b
        if b.ndim != 3:
            raise ValueError(f"banks[{name!r}] must be (k, k, n) or (k, k, 1, n); got shape {np.shape(bank)}")
        shaped[name] = b
    plt = _pyplot()
    cols = max(b.shape[-1] for b in shaped.values())
    fig, axes = plt.subplots(len(shaped), cols, figsize=(1.1 * cols, 1.4 * len(shaped)), squeeze=False)
    for row, (name, bank) in zip(axes, shaped.items(), strict=True):
        for i, ax in enumerate(row):
            ax.axis("off")
            if i >= bank.shape[-1]:
                continue
            f = bank[..., i]
            top = float(np.abs(f).max()) or 1.0
            ax.imshow(f, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
            if titles is not None and name in titles:
                ax.set_title(titles[name][i], fontsize=7)
        row[0].text(-0.15, 0.5, name, transform=row[0].transAxes, ha="right", va="center", fontsize=8)
    return _save(fig, path)


def plot_depth_curves(path: str | os.PathLike, results: dict[str, dict], key: str = "train_loss") -> Path:
    """A depth study ``{network name: {'train_loss': [per epoch], 'test_error': [...], ...}}`` (bench/
    resnet_lesion.py's ``depth_study``; names ``'plain20'``, ``'resnet20'``, ...): ``key`` and the test error
    against the epoch, plain networks dashed, residual ones solid, one colour per depth (He et al. 2015, Figure 6)."""
    plt = _pyplot()
    depths = sorted({int("".join(c for c in name if c.isdigit())) for name in results})
    colours = {d: plt.cm.viridis(i / max(1, len(depths) - 1)) for i, d in enumerate(depths)}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results.items():
        depth = int("".join(c for c in name if c.isdigit()))
        style = "--" if name.startswith("plain") else "-"
        for ax, k in zip(axes, (key, "test_error"), strict=True):
            epochs = np.arange(1, len(r[k]) + 1)
            ax.plot(epochs, r[k], style, marker="o", color=colours[depth], label=name)
    axes[0].set(xlabel="epoch", ylabel=key.replace("_", " "), title="training (dashed: plain, solid: residual)")
    axes[1].set(xlabel="epoch", ylabel="test error (%)", title="test error")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    return _save(fig, path)


def _displayable(images: np.ndarray) -> np.ndarray:
    """Images as RGB in [0, 1] for imshow: as they are if already there, else each stretched to [0, 1]."""
    x = np.asarray(images, np.float32)
    if x.min() >= 0.0 and x.max() <= 1.0:
        return x
    low, high = x.min(axis=(1, 2, 3), keepdims=True), x.max(axis=(1, 2, 3), keepdims=True)
    return (x - low) / np.maximum(high - low, 1e-12)


def _captioned(ax, image: np.ndarray, text: str) -> None:
    """An image with a caption under it."""
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(text, fontsize=7, loc="left")


def save_captions(
    path: str | os.PathLike,
    model: models.Model,
    params: PyTree,
    state: PyTree,
    x: np.ndarray,
    y: np.ndarray | None = None,
    vocab: Sequence[str] = VOCAB,
    beam: int = 3,
) -> Path:
    """A captioner's figure for images ``x`` (n, h, w, 3): each image with its true caption (``y``: token ids, if
    given), the greedy and the beam-search (``beam``) caption. For ``show_attend_tell`` one row per image: the image,
    then per word of the greedy caption (and <end>) the image under that step's attention map (bilinearly upsampled
    alpha as a white glow, scaled to its maximum); for ``show_tell`` the images side by side."""
    if not isinstance(model.objective, models.CaptionLoss):
        raise ValueError(f"save_captions needs a captioner (show_tell, show_attend_tell); got {model.name}")
    images = _displayable(x)
    if images.ndim != 4 or not len(images):
        raise ValueError(f"x must be a batch of images (n >= 1, height, width, channels); got shape {images.shape}")
    greedy = np.asarray(models.greedy_decode(model, params, state, x))
    beams = np.asarray(models.beam_search(model, params, state, x, beam=beam)[0])
    texts = []
    for i in range(len(images)):
        lines = [] if y is None else [f"true: {decode_caption(y[i], vocab)}"]
        texts.append(
            "\n".join(
                [
                    *lines,
                    f"greedy: {decode_caption(greedy[i], vocab)}",
                    f"beam {beam}: {decode_caption(beams[i], vocab)}",
                ]
            )
        )
    plt = _pyplot()
    if model.objective.decoder.grid == (0, 0):
        fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.9), squeeze=False)
        for ax, image, text in zip(axes[0], images, texts, strict=True):
            _captioned(ax, image, text)
        return _save(fig, path)
    captions, alphas = (np.asarray(a) for a in models.caption_attention(model, params, state, x))
    h, w = images.shape[1:3]
    steps = max(int(np.argmax(c == 2)) if np.any(c == 2) else len(c) - 1 for c in captions)  # words + <end>
    size = (1.5 * (1 + steps) + 1.5, 2.3 * len(images))
    fig, axes = plt.subplots(len(images), 1 + steps, figsize=size, squeeze=False)
    for i, row in enumerate(axes):
        _captioned(row[0], images[i], texts[i])
        for t, ax in enumerate(row[1:]):
            ax.axis("off")
            token = int(captions[i, t + 1])
            if token == 0:
                continue
            up = np.asarray(jax.image.resize(alphas[i, t], (h, w), "bilinear"))
            glow = (up / max(float(up.max()), 1e-12))[..., None]
            ax.imshow(np.clip(0.5 * images[i] + 0.6 * glow, 0.0, 1.0))
            ax.set_title(vocab[token], fontsize=8)
    return _save(fig, path)


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path


def save_memory_attention(
    path: str | os.PathLike,
    model: models.Model,
    params: PyTree,
    state: PyTree,
    x: dict[str, np.ndarray],
    y: np.ndarray | None,
    vocab: Sequence[str],
    n: int = 3,
    sentences: int = 12,
    facts: np.ndarray | None = None,
) -> Path:
    """Save a ``memn2n``'s reading of the first ``n`` stories of ``x`` as a PNG: per story its latest (up to
    ``sentences``) sentences, oldest at the top, with the attention of every hop as a heat map beside them, and
    the question, the true answer (``y``, if given) and the predicted one. ``facts`` (n, k) memory rows, -1
    padded (``BabiDataset.test_facts``), mark the supporting sentences with a '*'."""
    plt = _pyplot()
    batch = {k: jnp.asarray(np.asarray(v)[:n]) for k, v in x.items()}
    attention = np.asarray(models.memory_attention(model, params, state, batch))
    predicted = np.argmax(np.asarray(model.apply(params, state, batch)[0]), axis=-1)
    story, question = np.asarray(batch["story"]), np.asarray(batch["question"])
    n = len(story)

    def text(ids) -> str:
        return " ".join(vocab[int(i)] for i in ids if i)

    hops = attention.shape[1]
    shown = [min(int(np.any(s != 0, axis=-1).sum()), sentences) for s in story]
    fig, axes = plt.subplots(
        1, n, figsize=(4.8 * n, 0.32 * max(shown, default=1) + 1.6), squeeze=False, constrained_layout=True
    )
    for i, ax in enumerate(axes[0]):
        rows = list(range(shown[i]))[::-1]  # memory row 0 is the latest sentence: show it last
        marked = set() if facts is None else {int(r) for r in np.asarray(facts)[i] if r >= 0}
        ax.imshow(attention[i][:, rows].T, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_yticks(range(len(rows)), [("* " if r in marked else "") + text(story[i, r]) for r in rows], fontsize=8)
        ax.set_xticks(range(hops), [f"hop {k + 1}" for k in range(hops)], fontsize=8)
        for (r, k), value in np.ndenumerate(attention[i][:, rows].T):
            ax.text(k, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value > 0.5 else "k")
        truth = "" if y is None else f"true: {vocab[int(np.asarray(y)[i])]}   "
        ax.set_title(f"{text(question[i])}?\n{truth}predicted: {vocab[int(predicted[i])]}", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def question_text(question: np.ndarray, vocab: Sequence[str] | None = None) -> str:
    """A question as words: token ids (L,) through ``vocab``, or an 11-d Sort-of-CLEVR vector (no vocab) decoded."""
    question = np.asarray(question)
    if vocab:
        return decode(question, tuple(vocab))
    return sort_of_clevr.describe(question)


def save_vqa(
    path: str | os.PathLike,
    model: models.Model,
    params: PyTree,
    state: PyTree,
    x: dict[str, np.ndarray],
    y: np.ndarray,
    vocab: Sequence[str] | None = None,
    answers: Sequence[str] = sort_of_clevr.ANSWERS,
    columns: int = 4,
    title: str | None = None,
) -> Path:
    """A grid of the examples ``x`` ({'image', 'question'}, a few), each image under its question, with the true
    answer ``y`` and ``model``'s prediction (green if right, red if wrong); ``vocab`` decodes token-id questions
    (easy-VQA), without it questions are Sort-of-CLEVR vectors."""
    logits, _ = model.apply(params, state, jax.tree.map(jnp.asarray, x))
    predicted = np.asarray(jnp.argmax(logits, -1))
    images = np.asarray(x["image"])
    n = len(images)
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    plt = _pyplot()
    fig, axes = plt.subplots(rows, columns, figsize=(2.8 * columns, 3.7 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        image = images[i] if images.dtype == np.uint8 else np.clip(images[i], 0.0, 1.0)
        ax.imshow(image, interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(question_text(x["question"][i], vocab), 28)), fontsize=8)
        right = predicted[i] == y[i]
        ax.text(
            0.5,
            -0.04,
            f"true: {answers[int(y[i])]}   predicted: {answers[int(predicted[i])]}",
            transform=ax.transAxes,
            ha="center",
            va="top",
            fontsize=8,
            color="green" if right else "red",
        )
    if title:
        fig.suptitle(title)
    return _save(fig, path)
