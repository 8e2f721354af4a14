"""Recurrent cells (Elman RNN, LSTM, GRU) and a layer that runs one over a sequence with ``lax.scan``.

A cell is a pure function ``cell(params, carry, x_t) -> (carry, h_t)`` over named parameters, plus ``init`` and a
zero carry. The layer ``recurrent(cell, hidden)`` follows the layer protocol: its input is batch-first
``(batch, time, features)``, its output ``(batch, time, hidden)`` with ``return_sequences=True`` or else the last
valid state ``(batch, hidden)``. Inside, time is the leading axis of the scan and the input-to-hidden products of all
steps are one matrix product made before it; only ``h @ W_h`` runs step by step.

Variable lengths: ``apply`` also takes ``lengths`` (batch,) or a boolean ``mask`` (batch, time). A masked step
carries the state through unchanged and outputs zeros, so a sequence padded anywhere (after its end, or before its
start for ``reverse=True`` readers) ends in exactly the state of the unpadded sequence. ``serial`` does not forward
these keywords: pass them when calling the layer (or ``scan_cell``) yourself.

A bidirectional layer is ``parallel(recurrent(cell, n), recurrent(cell, n, reverse=True))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnets.nn import initializers as inits
from jaxnets.nn._activations import get_activation
from jaxnets.nn._core import Layer, PyTree, Shape

Array = jax.Array

LSTM_GATES = ("input", "forget", "cell", "output")
GRU_GATES = ("reset", "update", "candidate")


class Cell(NamedTuple):
    """A recurrent cell as pure functions.

    ``init(key, in_features, hidden) -> params`` (named dicts); ``fuse(params)`` stacks the per-gate matrices into
    the arrays the step uses (once per sequence, outside the scan); ``project(fused, x)`` is the input-to-hidden part
    of every gate for any number of leading axes (all time steps in one product); ``step(fused, carry, p_t)`` one
    time step from a projected input; ``zero_carry(batch, hidden, dtype)`` the initial state; ``output(carry)`` the
    hidden state ``h`` in a carry. Calling the cell, ``cell(params, carry, x_t)``, is one plain step.
    """

    init: Callable[[Array, int, int], PyTree]
    fuse: Callable[[PyTree], PyTree]
    project: Callable[[PyTree, Array], Array]
    step: Callable[[PyTree, PyTree, Array], tuple[PyTree, Array]]
    zero_carry: Callable[[int, int, Any], PyTree]
    output: Callable[[PyTree], Array]
    name: str

    def __call__(self, params: PyTree, carry: PyTree, x: Array) -> tuple[PyTree, Array]:
        """One time step: ``(params, carry, x_t) -> (new carry, h_t)``."""
        fused = self.fuse(params)
        return self.step(fused, carry, self.project(fused, x))


def _gate(key: Array, in_features: int, hidden: int, wx_init, wh_init, bias: float = 0.0, **extra) -> PyTree:
    kx, kh = jax.random.split(key)
    return {
        "wx": wx_init(kx, (in_features, hidden)),
        "wh": wh_init(kh, (hidden, hidden)),
        "b": jnp.full((hidden,), bias, jnp.float32),
        **extra,
    }


def _stack(params: PyTree, gates: tuple[str, ...], name: str) -> Array:
    return jnp.concatenate([params[g][name] for g in gates], axis=-1)


def _project(fused: PyTree, x: Array) -> Array:
    return x @ fused["wx"] + fused["b"]


def _h(carry: PyTree) -> Array:
    return carry


def _zeros(batch: int, hidden: int, dtype) -> Array:
    return jnp.zeros((batch, hidden), dtype)


def rnn_cell(
    activation: str = "tanh", *, wx_init: inits.Initializer | None = None, wh_init: inits.Initializer | None = None
) -> Cell:
    """Elman's simple recurrent network (Elman 1990): ``h' = act(x W_x + h W_h + b)``.

    Params ``{'wx': (in, hidden), 'wh': (hidden, hidden), 'b': (hidden,)}``; ``W_x`` LeCun-normal, ``W_h``
    orthogonal (Saxe et al. 2014), ``b`` zero.
    """
    act = get_activation(activation)
    wx_init = wx_init or inits.lecun_normal()
    wh_init = wh_init or inits.orthogonal()

    def init(key, in_features, hidden):
        return _gate(key, in_features, hidden, wx_init, wh_init)

    def step(fused, h, p):
        h = act(p + h @ fused["wh"])
        return h, h

    return Cell(init, lambda params: params, _project, step, _zeros, _h, f"rnn_{activation}")


def lstm_cell(
    forget_bias: float = 1.0, *, wx_init: inits.Initializer | None = None, wh_init: inits.Initializer | None = None
) -> Cell:
    """Long short-term memory (Hochreiter & Schmidhuber 1997) with a forget gate (Gers, Schmidhuber & Cummins 2000):

        i = sigmoid(x W_xi + h W_hi + b_i)     f = sigmoid(x W_xf + h W_hf + b_f)
        g = tanh(x W_xg + h W_hg + b_g)        o = sigmoid(x W_xo + h W_ho + b_o)
        c' = f * c + i * g                     h' = o * tanh(c')

    Params ``{'input'|'forget'|'cell'|'output': {'wx', 'wh', 'b'}}``; the carry is ``(c, h)``. The forget gate's
    bias starts at ``forget_bias`` (1.0: remember by default, Gers et al. 2000; Jozefowicz et al. 2015), the others
    at 0; ``W_x`` LeCun-normal, ``W_h`` orthogonal. flax's ``LSTMCell`` is the same function (its forget bias starts
    at 0), PyTorch's ``nn.LSTM`` too (gate order i, f, g, o, two biases).
    """
    wx_init = wx_init or inits.lecun_normal()
    wh_init = wh_init or inits.orthogonal()

    def init(key, in_features, hidden):
        keys = jax.random.split(key, 4)
        return {
            g: _gate(k, in_features, hidden, wx_init, wh_init, forget_bias if g == "forget" else 0.0)
            for g, k in zip(LSTM_GATES, keys, strict=True)
        }

    def fuse(params):
        return {k: _stack(params, LSTM_GATES, k) for k in ("wx", "wh", "b")}

    def step(fused, carry, p):
        c, h = carry
        i, f, g, o = jnp.split(p + h @ fused["wh"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h

    def zero_carry(batch, hidden, dtype):
        return _zeros(batch, hidden, dtype), _zeros(batch, hidden, dtype)

    return Cell(init, fuse, _project, step, zero_carry, lambda carry: carry[1], "lstm")


def gru_cell(
    reset_after: bool = True, *, wx_init: inits.Initializer | None = None, wh_init: inits.Initializer | None = None
) -> Cell:
    """Gated recurrent unit (Cho et al. 2014):

        r = sigmoid(x W_xr + h W_hr + b_r)     z = sigmoid(x W_xz + h W_hz + b_z)
        n = tanh(x W_xn + b_n + r * (h W_hn + b_hn))      (reset_after=True)
        n = tanh(x W_xn + b_n + (r * h) W_hn)             (reset_after=False: the paper's equation 8)
        h' = z * h + (1 - z) * n

    Params ``{'reset'|'update'|'candidate': {'wx', 'wh', 'b'}}``, plus ``candidate['bh']`` (b_hn) when
    ``reset_after``. Resetting after the product (cuDNN's variant, the default of PyTorch, Keras and flax, whose
    ``GRUCell`` this equals) lets all three hidden products be one matrix product per step; the paper's form needs two.
    """
    wx_init = wx_init or inits.lecun_normal()
    wh_init = wh_init or inits.orthogonal()

    def init(key, in_features, hidden):
        keys = jax.random.split(key, 3)
        params = {g: _gate(k, in_features, hidden, wx_init, wh_init) for g, k in zip(GRU_GATES, keys, strict=True)}
        if reset_after:
            params["candidate"]["bh"] = jnp.zeros((hidden,), jnp.float32)
        return params

    def fuse(params):
        fused = {k: _stack(params, GRU_GATES, k) for k in ("wx", "b")}
        if reset_after:
            return {**fused, "wh": _stack(params, GRU_GATES, "wh"), "bh": params["candidate"]["bh"]}
        return {**fused, "wh_rz": _stack(params, GRU_GATES[:2], "wh"), "wh_n": params["candidate"]["wh"]}

    def step(fused, h, p):
        pr, pz, pn = jnp.split(p, 3, axis=-1)
        if reset_after:
            hr, hz, hn = jnp.split(h @ fused["wh"], 3, axis=-1)
            r, z = jax.nn.sigmoid(pr + hr), jax.nn.sigmoid(pz + hz)
            n = jnp.tanh(pn + r * (hn + fused["bh"]))
        else:
            hr, hz = jnp.split(h @ fused["wh_rz"], 2, axis=-1)
            r, z = jax.nn.sigmoid(pr + hr), jax.nn.sigmoid(pz + hz)
            n = jnp.tanh(pn + (r * h) @ fused["wh_n"])
        h = z * h + (1.0 - z) * n
        return h, h

    return Cell(init, fuse, _project, step, _zeros, _h, "gru" if reset_after else "gru_cho2014")


CELLS: dict[str, Callable[..., Cell]] = {"rnn": rnn_cell, "lstm": lstm_cell, "gru": gru_cell}


def get_cell(name: str | Cell, **kwargs) -> Cell:
    """A cell by name ('rnn', 'lstm', 'gru'), built with ``kwargs``; a ``Cell`` is returned as is."""
    if isinstance(name, Cell):
        return name
    try:
        return CELLS[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown recurrent cell {name!r}; choose one of {sorted(CELLS)}") from None


def lengths_to_mask(lengths: Array, time: int) -> Array:
    """``(batch,)`` sequence lengths -> ``(batch, time)`` boolean mask of the valid (leading) steps."""
    return jnp.arange(time)[None, :] < jnp.asarray(lengths)[:, None]


def scan_cell(
    cell: Cell,
    params: PyTree,
    x: Array,
    *,
    mask: Array | None = None,
    carry: PyTree | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
) -> tuple[PyTree, Array]:
    """Run ``cell`` over a batch-first sequence ``x`` (batch, time, features) with ``lax.scan``.

    Returns the final carry (the state after the last valid step, in processing order) and the outputs
    ``(batch, time, hidden)`` (zeros at masked steps). ``mask`` (batch, time) marks valid steps; ``carry`` is the
    initial state (zeros by default); ``reverse`` runs from the last step to the first; ``unroll`` steps are
    unrolled per loop iteration (``lax.scan``'s option: less loop overhead, longer compilation).
    """
    if x.ndim != 3:
        raise ValueError(f"recurrent input must be (batch, time, features); got shape {tuple(x.shape)}")
    fused = cell.fuse(params)
    proj = jnp.swapaxes(cell.project(fused, x), 0, 1)  # (time, batch, gates * hidden): time-major for the scan
    if carry is None:
        carry = cell.zero_carry(x.shape[0], _hidden(params), proj.dtype)

    if mask is None:

        def body(c, p):
            return cell.step(fused, c, p)

        carry, hs = jax.lax.scan(body, carry, proj, reverse=reverse, unroll=unroll)
    else:
        mask = jnp.asarray(mask, bool)
        if mask.shape != x.shape[:2]:
            raise ValueError(f"mask must be (batch, time) = {tuple(x.shape[:2])}; got {tuple(mask.shape)}")

        def body(c, pm):
            p, m = pm
            new, h = cell.step(fused, c, p)
            keep = m[:, None]
            new = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, c)
            return new, jnp.where(keep, h, jnp.zeros_like(h))

        carry, hs = jax.lax.scan(body, carry, (proj, jnp.swapaxes(mask, 0, 1)), reverse=reverse, unroll=unroll)
    return carry, jnp.swapaxes(hs, 0, 1)


def _hidden(params: PyTree) -> int:
    """The hidden size of a cell's params: the width of any recurrent matrix (all cells keep one named 'wh')."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if jax.tree_util.keystr(path[-1:], simple=True) == "wh":
            return leaf.shape[-1]
    raise ValueError("cannot find the hidden size: no 'wh' in the cell's parameters")


def recurrent(
    cell: Cell | str,
    hidden: int,
    *,
    return_sequences: bool = False,
    reverse: bool = False,
    unroll: int | bool = 1,
    name: str | None = None,
) -> Layer:
    """A recurrent layer: ``cell`` (a ``Cell`` or 'rnn'/'lstm'/'gru') over ``(batch, time, features)`` inputs.

    Output ``(batch, time, hidden)`` with ``return_sequences``, else the last valid hidden state ``(batch, hidden)``
    (for ``reverse``, the state after reading the first step). ``apply`` takes ``mask`` (batch, time) or ``lengths``
    (batch,) as extra keywords for variable-length (padded) batches. ``unroll``: see ``scan_cell``.
    """
    cell = get_cell(cell)
    if hidden < 1:
        raise ValueError(f"recurrent layer needs hidden >= 1; got {hidden}")

    def init(key: Array, in_shape: Shape):
        if len(in_shape) != 2:
            raise ValueError(f"{cell.name} layer takes sequences of shape (time, features); got {tuple(in_shape)}")
        time, features = in_shape
        return cell.init(key, features, hidden), {}, ((time, hidden) if return_sequences else (hidden,))

    def apply(params, state, x, *, key=None, train=False, mask=None, lengths=None):
        del key, train
        if lengths is not None:
            if mask is not None:
                raise ValueError("pass either mask or lengths, not both")
            mask = lengths_to_mask(lengths, x.shape[1])
        carry, hs = scan_cell(cell, params, x, mask=mask, reverse=reverse, unroll=unroll)
        return (hs if return_sequences else cell.output(carry)), state

    return Layer(init, apply, name or cell.name)


def rnn(hidden: int, activation: str = "tanh", **kwargs) -> Layer:
    """Elman RNN layer: ``recurrent(rnn_cell(activation), hidden, ...)``."""
    return recurrent(rnn_cell(activation), hidden, **kwargs)


def lstm(hidden: int, forget_bias: float = 1.0, **kwargs) -> Layer:
    """LSTM layer: ``recurrent(lstm_cell(forget_bias), hidden, ...)``."""
    return recurrent(lstm_cell(forget_bias), hidden, **kwargs)


def gru(hidden: int, reset_after: bool = True, **kwargs) -> Layer:
    """GRU layer: ``recurrent(gru_cell(reset_after), hidden, ...)``."""
    return recurrent(gru_cell(reset_after), hidden, **kwargs)
