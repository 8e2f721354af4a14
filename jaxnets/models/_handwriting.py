"""Handwriting-style sequence generation (Graves 2013, "Generating sequences with recurrent neural networks",
section 4): an LSTM reads pen offsets and predicts the next one as a mixture of bivariate Gaussians with
correlations, plus a Bernoulli end-of-stroke (pen-up) flag.

``handwriting`` takes the sequences of ``jaxnets.data.strokes`` (``--dataset hershey``): each step's input is the
previous point ``(dx, dy, pen_up)`` and the glyph id, taken one-hot, so that the model is conditioned on the
character. As in Graves' network the input feeds every LSTM layer and every layer feeds the output, which holds per
step ``2 + 6K`` numbers: the pen-up logit ``e``, an end-of-glyph logit, then ``pi`` logits (K), means (K x 2),
log-scales (K x 2) and ``rho`` logits (K); ``pi`` is a softmax, the scales ``exp``, the correlations ``tanh``, ``e``
a sigmoid. The end of the glyph is our addition (like sketch-rnn's end state: where sampling stops); a glyph ends
only where a stroke does, so it is p(end | pen-up), trained at the pen-ups.

The loss is the NLL of the real steps (padding masked: offsets, pen-up, and end at the pen-ups) per point; per
sequence the objective also gives the summed ``nll`` (offsets and pen-up, Graves' figure), ``offset_nll`` and the
number of ``points``, which the test set's ``finalize`` turns into ``nll_per_point`` and ``offset_nll_per_point``
over all its points. ``sample_strokes`` draws glyphs step by step with Graves' sampling bias.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import nn
from jaxnets.models._base import Model, check_sizes
from jaxnets.models._mdn import bivariate_nll, sample_bivariate, split_mixture
from jaxnets.nn import PyTree, Shape

Array = jax.Array
FEATURES = 4  # per step: dx, dy, pen_up, glyph id
_CELL = nn.lstm_cell()


def _layers(params: PyTree) -> int:
    return sum(k.startswith("rnn") for k in params)


def _inputs(x: Array, num_classes: int) -> Array:
    """Steps (..., 4) -> the previous point and the glyph one-hot (..., 3 + num_classes)."""
    return jnp.concatenate([x[..., :3], jax.nn.one_hot(x[..., 3].astype(jnp.int32), num_classes)], axis=-1)


def _run(params: PyTree, inputs: Array, carries: tuple[PyTree, ...] | None) -> tuple[Array, tuple[PyTree, ...]]:
    """The network over ``inputs`` (batch, time, 3 + classes) from ``carries`` (zeros for None): the packed outputs
    (batch, time, 2 + 6K) and the LSTM states after the last step."""
    hs: list[Array] = []
    new: list[PyTree] = []
    for i in range(_layers(params)):
        below = inputs if i == 0 else jnp.concatenate([inputs, hs[-1]], axis=-1)
        carry, h = nn.scan_cell(_CELL, params[f"rnn{i + 1}"], below, carry=None if carries is None else carries[i])
        hs.append(h)
        new.append(carry)
    out = jnp.concatenate(hs, axis=-1) @ params["out"]["w"] + params["out"]["b"]
    return out, tuple(new)


def split_strokes(outputs: Array, components: int) -> tuple[Array, Array, Array, Array, Array, Array]:
    """Packed outputs (..., 2 + 6K), flattened over the leading axes to N rows -> pen-up logits (N,), end-of-glyph
    logits (N,), mixture logits (N, K), means and log-scales (N, K, 2) and correlation logits (N, K)."""
    size = outputs.shape[-1]
    if size != 2 + 6 * components:
        raise ValueError(f"handwriting outputs of size {size} do not pack {components} components: need 2 + 6K")
    flat = outputs.reshape(-1, size)
    logits, means, log_scales = split_mixture(flat[:, 2 : 2 + 5 * components], components)
    return flat[:, 0], flat[:, 1], logits, means, log_scales, flat[:, 2 + 5 * components :]


def handwriting_summary(means: dict[str, Array]) -> dict[str, Array]:
    """The ``finalize`` of ``handwriting``: test-set sums per sequence -> NLL per point (nats) over all the points."""
    return {
        "loss": means["loss"],
        "nll_per_point": means["nll"] / means["points"],
        "offset_nll_per_point": means["offset_nll"] / means["points"],
    }


def handwriting(
    input_shape: Shape = (40, FEATURES),
    num_classes: int = 36,
    hidden: int = 256,
    layers: int = 2,
    components: int = 20,
    name: str = "handwriting",
) -> Model:
    """Graves' (2013) handwriting network for glyph-conditioned pen-offset sequences (time, 4) (see the module
    docstring): ``layers`` LSTMs of ``hidden`` with skip connections, a mixture of ``components`` bivariate Gaussians
    (K = 1: a single Gaussian head). ``num_classes`` = the number of glyphs. Params ``{'rnn1'..: LSTM, 'out'}``."""
    if len(input_shape) != 2 or int(input_shape[1]) != FEATURES or int(input_shape[0]) < 1:
        raise ValueError(f"{name} takes steps of shape (time, {FEATURES}); got input_shape {tuple(input_shape)}")
    check_sizes(name, num_classes=num_classes, hidden=hidden, layers=layers, components=components)
    time = int(input_shape[0])
    head = nn.dense(2 + 6 * components, w_init=nn.initializers.glorot_uniform(), name="out")

    def init(key: Array, in_shape: Shape) -> tuple[PyTree, PyTree, Shape]:
        keys = jax.random.split(key, layers + 1)
        width = 3 + num_classes
        params = {f"rnn{i + 1}": _CELL.init(keys[i], width + (hidden if i else 0), hidden) for i in range(layers)}
        params["out"], _, out_shape = head.init(keys[-1], (time, layers * hidden))
        return params, {}, out_shape

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return _run(params, _inputs(x, num_classes), None)[0], state

    def objective(
        model: Model, params, state, x: Array, y: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[dict[str, Array], PyTree]:
        outputs, state = model.apply(params, state, x, key=key, train=train)
        if y.shape != x.shape:
            raise ValueError(
                f"{model.name} targets must be steps (batch, {time}, 4) of (dx, dy, pen_up, valid); got {y.shape}"
            )
        y = y.astype(outputs.dtype)
        pen, end, logits, means, log_scales, rho = split_strokes(outputs, components)
        valid = y[..., 3]
        last = valid * (1.0 - jnp.concatenate([valid[:, 1:], jnp.zeros_like(valid[:, :1])], axis=1))
        steps = y.reshape(-1, 4)
        offset = bivariate_nll(logits, means, log_scales, rho, steps[:, :2]).reshape(valid.shape)
        pen_nll = optax.sigmoid_binary_cross_entropy(pen, steps[:, 2]).reshape(valid.shape)
        end_nll = optax.sigmoid_binary_cross_entropy(end, last.reshape(-1)).reshape(valid.shape)
        points = jnp.sum(valid, axis=1)
        total = jnp.sum(valid * (offset + pen_nll), axis=1)
        return {
            "loss": (total + jnp.sum(valid * y[..., 2] * end_nll, axis=1)) / jnp.maximum(points, 1.0),
            "nll": total,
            "offset_nll": jnp.sum(valid * offset, axis=1),
            "points": points,
        }, state

    return Model(
        name,
        nn.Layer(init, apply, name),
        tuple(int(d) for d in input_shape),
        head="linear",
        objective=objective,
        finalize=handwriting_summary,
    )


def sample_strokes(
    model: Model, params: PyTree, glyphs: jax.typing.ArrayLike, key: Array, bias: float = 0.0, steps: int | None = None
) -> tuple[Array, Array]:
    """Draw one pen-offset sequence per glyph id in ``glyphs`` (n,) from a trained ``handwriting`` model, step by
    step: each offset from the bivariate mixture with Graves' sampling ``bias`` b >= 0 (``sample_bivariate``), the
    pen-up flag from its Bernoulli and, where the pen lifts, the end of the glyph from its own. Returns the steps
    (n, steps, 3) ``(dx, dy, pen_up)`` and ``valid`` (n, steps), false from the step after the end of the glyph
    (``steps``: the model's sequence length)."""
    if not bias >= 0:
        raise ValueError(f"bias must be >= 0 (0: the model's own density); got {bias}")
    steps = int(model.input_shape[0]) if steps is None else steps
    check_sizes(model.name, steps=steps)
    num_classes = params["rnn1"]["input"]["wx"].shape[0] - 3
    ids = np.asarray(glyphs)
    if (
        ids.ndim != 1
        or not np.issubdtype(ids.dtype, np.integer)
        or ids.min(initial=0) < 0
        or ids.max(initial=0) >= num_classes
    ):
        raise ValueError(f"glyphs must be a vector of integer glyph ids in [0, {num_classes}); got {ids!r}")
    return _sample(params, jnp.asarray(ids, jnp.int32), key, jnp.float32(bias), steps, num_classes)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _sample(params: PyTree, glyphs: Array, key: Array, bias: Array, steps: int, num_classes: int):
    n = glyphs.shape[0]
    components = (params["out"]["b"].shape[0] - 2) // 6
    hidden = params["rnn1"]["input"]["wh"].shape[0]
    carries = tuple(_CELL.zero_carry(n, hidden, jnp.float32) for _ in range(_layers(params)))
    start = jnp.zeros((n, 3)).at[:, 2].set(1.0)

    def step(carry, k):
        prev, states, alive = carry
        x = jnp.concatenate([prev, glyphs[:, None].astype(prev.dtype)], axis=-1)[:, None]
        out, states = _run(params, _inputs(x, num_classes), states)
        pen, end, logits, means, log_scales, rho = split_strokes(out, components)
        k_xy, k_pen, k_end = jax.random.split(k, 3)
        xy = sample_bivariate(k_xy, logits, means, log_scales, rho, bias)
        up = jax.random.bernoulli(k_pen, jax.nn.sigmoid(pen))
        stop = up & jax.random.bernoulli(k_end, jax.nn.sigmoid(end))
        point = jnp.concatenate([xy, up[:, None].astype(xy.dtype)], axis=-1)
        return (point, states, alive & ~stop), (point, alive)

    _, (points, valid) = jax.lax.scan(step, (start, carries, jnp.ones(n, bool)), jax.random.split(key, steps))
    return jnp.swapaxes(points, 0, 1), jnp.swapaxes(valid, 0, 1)
