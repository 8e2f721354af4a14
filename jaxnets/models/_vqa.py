"""Visual question answering: inputs are dicts {'image': (batch, H, W, 3), 'question': (batch, ...)}; images uint8
(scaled to [0, 1] here) or floats already in [0, 1].

- ``vqa_lstm_cnn`` (Antol et al. 2015, "VQA: Visual Question Answering", the "LSTM Q + norm I" baseline, scaled to
  easy-VQA's 64x64 shapes): a small CNN's image features, l2-normalised and projected to the fusion width (tanh);
  the question's word embeddings (tanh) read by an LSTM over the padded, masked ids, its last valid state projected
  (tanh) too (``lstm_layers=2``: the paper's deeper LSTM Q, the cell and hidden states of both layers concatenated);
  the two fused by an element-wise product, then an MLP (tanh, dropout 0.5) to the answer softmax.
- ``relation_network`` (Santoro et al. 2017, the Sort-of-CLEVR model of the reference implementation
  kimhc6028/relational-networks): 4 convolutions of 24 kernels 3x3, stride 2, ReLU, batch norm turn a 75x75 image
  into a 5x5 feature map whose 25 cells are the objects, each with its (x, y) in [-1, 1] appended. Then

      RN(O, q) = f_phi( sum_{i,j} g_theta(o_i, o_j, q) )

  with g_theta an MLP (4 layers of 256, ReLU; the paper's own used 2000 units) on every ordered pair of objects
  concatenated with the question, and f_phi an MLP (256, 256 ReLU, dropout 0.5, then the answers).
- ``cnn_mlp``: the paper's baseline, the same CNN's flattened feature map and the question into f_phi's MLP.

The Sort-of-CLEVR models report, besides loss and accuracy, ``relational_accuracy`` and ``nonrelational_accuracy``
over the test set (the question's relational type bit, ``data.sort_of_clevr.RELATIONAL_BIT``, splits them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp

from jaxnets import nn
from jaxnets.losses import softmax_cross_entropy
from jaxnets.models._base import Model, check_sizes
from jaxnets.nn import Layer, PyTree, Shape

Array = jax.Array
RELATIONAL_BIT = 7  # of an 11-d Sort-of-CLEVR question: 1 for the relational ones (jaxnets.data.sort_of_clevr)
# PyTorch's nn.Linear default (Kaiming-uniform, a = sqrt(5): variance 1 / (3 fan_in)), the reference RN's: with He's
# initialisation the sum over 625 pairs starts the logits in the hundreds (an initial loss near 1000).
TORCH_LINEAR = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
_CELL = nn.lstm_cell()


def unit_image(image: Array) -> Array:
    """Images in [0, 1]: uint8 ones divided by 255 (as float32), floating ones as they are (their dtype kept: float64
    in gradient checks, bfloat16 under mixed precision)."""
    if image.dtype == jnp.uint8:
        return image.astype(jnp.float32) / 255.0
    return image if jnp.issubdtype(image.dtype, jnp.floating) else image.astype(jnp.float32)


def _shapes(model: str, input_shape: Mapping[str, Sequence[int]]) -> tuple[Shape, Shape]:
    """The (image, question) shapes of a dict ``input_shape`` (an image (h, w, c) and a question vector or
    sequence (L,)); one-line ``ValueError`` otherwise."""
    if not isinstance(input_shape, Mapping) or set(input_shape) != {"image", "question"}:
        raise ValueError(f"{model}: input_shape must be a dict with keys 'image' and 'question'; got {input_shape!r}")
    image, question = tuple(input_shape["image"]), tuple(input_shape["question"])
    if len(image) != 3 or len(question) != 1:
        raise ValueError(
            f"{model}: input_shape needs an image (height, width, channels) and a question (length,); "
            f"got {input_shape!r}"
        )
    check_sizes(model, image=image, question=question)
    return image, question


def _mlp(
    widths: Sequence[int],
    activation: str,
    *,
    dropout: float = 0.0,
    last_activation: bool = False,
    w_init: nn.initializers.Initializer | None = None,
    name: str = "mlp",
) -> Layer:
    """Dense layers of ``widths``, ``activation`` after each but the last (after the last too with
    ``last_activation``); dropout of rate ``dropout`` (0: none) before the last layer. ``w_init`` defaults to the
    activation's initialiser."""
    w_init = w_init or nn.initializers.for_activation(activation)
    layers: list[Layer] = []
    for i, width in enumerate(widths, start=1):
        if i == len(widths) and dropout:
            layers.append(nn.dropout(dropout, name="dropout"))
        layers.append(nn.dense(width, w_init=w_init, name=f"dense{i}"))
        if i < len(widths) or last_activation:
            layers.append(nn.activation(activation))
    return nn.serial(*layers, name=name)


def _split_key(key: Array | None, n: int) -> list[Array | None]:
    return [None] * n if key is None else list(jax.random.split(key, n))


# ---------------------------------------------------------------------------------------------------- VQA LSTM + CNN


def image_encoder(channels: Sequence[int] = (8, 16, 32)) -> Layer:
    """The small CNN of ``vqa_lstm_cnn``: per width a 3x3 convolution (SAME), ReLU and 2x2 max-pool, then global
    average pooling to (channels[-1],) features."""
    layers: list[Layer] = []
    for i, c in enumerate(channels, start=1):
        layers += [
            nn.conv2d(c, 3, padding="SAME", w_init=nn.initializers.for_activation("relu"), name=f"conv{i}"),
            nn.activation("relu"),
            nn.max_pool(2),
        ]
    return nn.serial(*layers, nn.global_avg_pool(), name="cnn")


def question_mask(ids: Array) -> Array:
    """(batch, L) bool: the leading words of padded question ids (0 = padding after the question)."""
    return nn.lengths_to_mask(jnp.sum(ids != 0, axis=1), ids.shape[1])


def encode_question(params: PyTree, ids: Array) -> Array:
    """The question features of ``vqa_lstm_cnn``'s LSTM(s) over word ids (batch, L): with one layer its hidden state
    after the last word; with several, the cell and hidden states of every layer concatenated (deeper LSTM Q)."""
    h = jnp.tanh(jnp.take(params["embedding"]["table"], ids, axis=0, mode="clip"))  # (as nn.embedding)
    mask = question_mask(ids)
    layers = sorted(k for k in params if k.startswith("lstm"))
    finals = []
    for name in layers:
        carry, h = nn.scan_cell(_CELL, params[name], h, mask=mask)
        finals.append(carry)
    if len(finals) == 1:
        return _CELL.output(finals[0])
    return jnp.concatenate([a for c, hid in finals for a in (c, hid)], axis=-1)


def vqa_lstm_cnn(
    input_shape: Mapping[str, Sequence[int]] | None = None,
    num_classes: int = 13,
    vocab_size: int = 1000,
    channels: Sequence[int] = (8, 16, 32),
    embed: int = 32,
    hidden: int = 64,
    lstm_layers: int = 1,
    fusion: int = 64,
    mlp_hidden: int = 64,
    dropout: float = 0.5,
) -> Model:
    """Antol et al.'s LSTM Q + norm I on {'image': (64, 64, 3), 'question': (L,) int word ids, 0 = padding} (the
    default shapes are easy-VQA's, L = 9). ``vocab_size`` bounds the word ids (larger ones are clamped)."""
    input_shape = input_shape or {"image": (64, 64, 3), "question": (9,)}
    _shapes("vqa_lstm_cnn", input_shape)
    check_sizes(
        "vqa_lstm_cnn",
        num_classes=num_classes,
        vocab_size=vocab_size,
        channels=channels,
        embed=embed,
        hidden=hidden,
        lstm_layers=lstm_layers,
        fusion=fusion,
        mlp_hidden=mlp_hidden,
    )
    cnn = image_encoder(channels)
    image_proj, question_proj = nn.dense(fusion, name="image_proj"), nn.dense(fusion, name="question_proj")
    head = _mlp((mlp_hidden, num_classes), "tanh", dropout=dropout, name="mlp")
    q_features = hidden * (1 if lstm_layers == 1 else 2 * lstm_layers)

    def init(key: Array, in_shape: Mapping[str, Shape]):
        image, _ = _shapes("vqa_lstm_cnn", in_shape)
        keys = jax.random.split(key, 5 + lstm_layers)
        cnn_params, _, (features,) = cnn.init(keys[0], image)  # (no state: no batch norm)
        params = {
            "cnn": cnn_params,
            "image_proj": image_proj.init(keys[1], (features,))[0],
            "embedding": nn.embedding(vocab_size, embed).init(keys[2], ())[0],
            "question_proj": question_proj.init(keys[3], (q_features,))[0],
            "mlp": head.init(keys[4], (fusion,))[0],
        }
        for i in range(lstm_layers):
            params[f"lstm{i + 1}"] = _CELL.init(keys[5 + i], embed if i == 0 else hidden, hidden)
        return params, {}, (num_classes,)

    def apply(params, state, x, *, key=None, train=False):
        features, _ = cnn.apply(params["cnn"], {}, unit_image(x["image"]))
        norm = jnp.sqrt(jnp.maximum(jnp.sum(features**2, axis=-1, keepdims=True), 1e-12))
        image = jnp.tanh(image_proj.apply(params["image_proj"], {}, features / norm)[0])
        q = encode_question(params, x["question"].astype(jnp.int32))
        question = jnp.tanh(question_proj.apply(params["question_proj"], {}, q)[0])
        logits, _ = head.apply(params["mlp"], {}, image * question, key=key, train=train)
        return logits, state

    return Model("vqa_lstm_cnn", Layer(init, apply, "vqa_lstm_cnn"), dict(input_shape))


# ------------------------------------------------------------------------------------ relation network, CNN + MLP


def sort_of_clevr_cnn(features: int = 24, layers: int = 4) -> Layer:
    """The reference's image encoder: ``layers`` x [3x3 convolution of ``features`` kernels, stride 2, padding 1,
    ReLU, batch norm]: 75x75 -> 38 -> 19 -> 10 -> 5."""
    blocks: list[Layer] = []
    for i in range(1, layers + 1):
        blocks += [
            nn.conv2d(features, 3, stride=2, padding=1, name=f"conv{i}"),
            nn.activation("relu"),
            nn.batch_norm(name=f"bn{i}"),
        ]
    return nn.serial(*blocks, name="cnn")


def with_coordinates(feature_map: Array) -> Array:
    """(batch, h, w, c) feature map -> (batch, h * w, c + 2) objects, row-major, each cell's (x, y) appended
    (each from -1 at the left/top to 1 at the right/bottom)."""
    b, h, w, c = feature_map.shape
    ys, xs = jnp.meshgrid(jnp.linspace(-1.0, 1.0, h), jnp.linspace(-1.0, 1.0, w), indexing="ij")
    coords = jnp.broadcast_to(jnp.stack([xs, ys], -1).reshape(1, h * w, 2), (b, h * w, 2))
    return jnp.concatenate([feature_map.reshape(b, h * w, c), coords.astype(feature_map.dtype)], axis=-1)


def object_pairs(objects: Array, question: Array) -> Array:
    """Every ordered pair of objects (batch, n, d) with the question (batch, q): (batch, n * n, 2 d + q), row
    ``i * n + j`` = [o_i, o_j, q] (a pair with itself included, as in the paper's sum over i, j)."""
    b, n, d = objects.shape
    first = jnp.broadcast_to(objects[:, :, None, :], (b, n, n, d))
    second = jnp.broadcast_to(objects[:, None, :, :], (b, n, n, d))
    q = jnp.broadcast_to(question[:, None, None, :], (b, n, n, question.shape[-1]))
    return jnp.concatenate([first, second, q], axis=-1).reshape(b, n * n, 2 * d + question.shape[-1])


def relation_module(g_widths: Sequence[int] = (256, 256, 256, 256), name: str = "g") -> Layer:
    """The relation module sum_{i,j} g_theta(o_i, o_j, q) on {'objects': (n, d), 'question': (q,)} inputs:
    g_theta an MLP of ``g_widths`` (ReLU after each layer, PyTorch's default initialisation as in the reference);
    output (g_widths[-1],). Invariant to the objects' order."""
    check_sizes(name, g_widths=g_widths)
    g = _mlp(g_widths, "relu", last_activation=True, w_init=TORCH_LINEAR, name=name)

    def init(key: Array, in_shape: Mapping[str, Shape]):
        (n, d), (q,) = in_shape["objects"], in_shape["question"]
        params, state, _ = g.init(key, (n * n, 2 * d + q))
        return params, state, (g_widths[-1],)

    def apply(params, state, x, *, key=None, train=False):
        out, state = g.apply(params, state, object_pairs(x["objects"], x["question"]), key=key, train=train)
        return jnp.sum(out, axis=1), state

    return Layer(init, apply, name)


def question_type_summary(means: dict[str, Array]) -> dict[str, Array]:
    """The ``finalize`` of the Sort-of-CLEVR models: test-set means of the per-example relational counts ->
    ``relational_accuracy`` and ``nonrelational_accuracy`` (correct answers over questions of each type)."""
    out = {k: v for k, v in means.items() if k not in ("relational_correct", "relational")}
    rel, rel_correct = means["relational"], means["relational_correct"]
    return {
        **out,
        "relational_accuracy": rel_correct / jnp.maximum(rel, 1e-12),
        "nonrelational_accuracy": (means["accuracy"] - rel_correct) / jnp.maximum(1.0 - rel, 1e-12),
    }


def question_type_objective(
    model: Model, params: PyTree, state: PyTree, x, y: Array, *, key=None, train: bool = False
) -> tuple[dict[str, Array], PyTree]:
    """Softmax cross-entropy and accuracy per example, and for ``question_type_summary`` whether the question is
    relational (its ``RELATIONAL_BIT``) and whether it was answered correctly and relational."""
    logits, state = model.apply(params, state, x, key=key, train=train)
    correct = (jnp.argmax(logits, -1) == y).astype(jnp.float32)
    relational = (x["question"][:, RELATIONAL_BIT] > 0.5).astype(jnp.float32)
    metrics = {
        "loss": softmax_cross_entropy(logits, y),
        "accuracy": correct,
        "relational": relational,
        "relational_correct": relational * correct,
    }
    return metrics, state


def _sort_of_clevr_model(
    name: str,
    input_shape: Mapping[str, Sequence[int]] | None,
    num_classes: int,
    conv_features: int,
    middle: Layer | None,
    f_widths: Sequence[int],
    dropout: float,
) -> Model:
    """A Sort-of-CLEVR model: the CNN, then ``middle`` (the relation module) on the objects and question, or (None)
    the flattened feature map with the question, then f_phi (``f_widths`` ReLU, dropout, the answers)."""
    input_shape = input_shape or {"image": (75, 75, 3), "question": (11,)}
    _shapes(name, input_shape)
    check_sizes(name, num_classes=num_classes, conv_features=conv_features, f_widths=f_widths)
    cnn = sort_of_clevr_cnn(conv_features)
    f = _mlp((*f_widths, num_classes), "relu", dropout=dropout, w_init=TORCH_LINEAR, name="f")

    def init(key: Array, in_shape: Mapping[str, Shape]):
        image, (q,) = _shapes(name, in_shape)
        k_cnn, k_mid, k_f = jax.random.split(key, 3)
        cnn_params, cnn_state, (h, w, c) = cnn.init(k_cnn, image)
        params, state = {"cnn": cnn_params}, {"cnn": cnn_state}
        if middle is None:
            width = h * w * c + q
        else:
            params["g"], g_state, (width,) = middle.init(k_mid, {"objects": (h * w, c + 2), "question": (q,)})
            if g_state:
                state["g"] = g_state
        params["f"] = f.init(k_f, (width,))[0]
        return params, state, (num_classes,)

    def apply(params, state, x, *, key=None, train=False):
        k_mid, k_f = _split_key(key, 2)
        fmap, cnn_state = cnn.apply(params["cnn"], state["cnn"], unit_image(x["image"]), train=train)
        new_state = {**state, "cnn": cnn_state}
        question = x["question"].astype(fmap.dtype)
        if middle is None:
            h = jnp.concatenate([fmap.reshape(fmap.shape[0], -1), question], axis=-1)
        else:
            objects = {"objects": with_coordinates(fmap), "question": question}
            h, g_state = middle.apply(params["g"], state.get("g", {}), objects, key=k_mid, train=train)
            if g_state:
                new_state["g"] = g_state
        logits, _ = f.apply(params["f"], {}, h, key=k_f, train=train)
        return logits, new_state

    return Model(
        name,
        Layer(init, apply, name),
        dict(input_shape),
        objective=question_type_objective,
        finalize=question_type_summary,
    )


def relation_network(
    input_shape: Mapping[str, Sequence[int]] | None = None,
    num_classes: int = 10,
    conv_features: int = 24,
    g_widths: Sequence[int] = (256, 256, 256, 256),
    f_widths: Sequence[int] = (256, 256),
    dropout: float = 0.5,
) -> Model:
    """Santoro et al.'s CNN + RN for Sort-of-CLEVR ({'image': (75, 75, 3), 'question': (11,)}, 10 answers), as
    the reference implementation sizes it: f_phi(sum_{i,j} g_theta(o_i, o_j, q)) over the 25 cells of the CNN."""
    return _sort_of_clevr_model(
        "relation_network", input_shape, num_classes, conv_features, relation_module(g_widths), f_widths, dropout
    )


def cnn_mlp(
    input_shape: Mapping[str, Sequence[int]] | None = None,
    num_classes: int = 10,
    conv_features: int = 24,
    f_widths: Sequence[int] = (256, 256),
    dropout: float = 0.5,
) -> Model:
    """The CNN + MLP baseline of Santoro et al. (the reference's ``CNN_MLP``): the flattened 5x5x24 feature map and
    the question through f_phi's MLP (256, 256 ReLU, dropout 0.5, the answers)."""
    return _sort_of_clevr_model("cnn_mlp", input_shape, num_classes, conv_features, None, f_widths, dropout)
