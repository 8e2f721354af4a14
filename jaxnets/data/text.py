"""Character-level text data from any UTF-8 file: a vocabulary of its characters and (input, next-char) windows.

``load_text(path)`` reads the file, takes its distinct characters in code-point order as the vocabulary (so the
same file always gives the same ids), cuts the first 90% of the characters into windows of ``seq_len + 1``
characters for training and the last 10% for testing, and returns a ``TextDataset`` whose examples are
``x = window[:-1]`` and labels ``y = window[1:]`` (int32 ids, shape ``(n, seq_len)``). ``train.py --dataset
text:PATH`` loads a file this way (windows of 64 characters).

The tokens are the characters (``tokens="chars"``) or, with ``tokens="jamo"``, the characters after each Hangul
syllable is written as its two or three jamo (``jaxnets.data.hangul``): 67 letters instead of 11,172 syllables, most
of them rare. Either way a token is one character, so a vocabulary is a string; the split is made on characters
before tokenising, so both tokenisations hold out the same text. ``unknown`` builds the vocabulary from the training
text alone, plus that symbol, which stands for every test token not in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxnets.data import hangul
from jaxnets.data.base import Dataset

PREFIX = "text:"
SEQ_LEN = 64
TEST_FRACTION = 0.1
TOKENS = ("chars", "jamo")


@dataclass(frozen=True)
class TextDataset(Dataset):
    """A ``Dataset`` of token windows with the characters behind the ids: ``vocab[i]`` is token ``i``."""

    vocab: str = ""


def read_text(path: str | Path) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); one-line ``ValueError`` if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"text file {path} not found") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"text file {path} is not UTF-8 (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise ValueError(f"cannot read text file {path}: {e.strerror}") from None


def vocabulary(text: str) -> str:
    """The distinct characters of ``text`` in code-point order (deterministic)."""
    return "".join(sorted(set(text)))


def tokenize(text: str, tokens: str = "chars") -> str:
    """The tokens of ``text``, one character each: its characters, or for ``"jamo"`` its Hangul syllables decomposed
    into jamo."""
    if tokens not in TOKENS:
        raise ValueError(f"tokens must be one of {', '.join(TOKENS)}; got {tokens!r}")
    return hangul.decompose(text) if tokens == "jamo" else text


def tokens_of(vocab: str) -> str:
    """The tokenisation a vocabulary was made with: ``"jamo"`` if it holds conjoining jamo and no Hangul syllable
    (``tokenize`` leaves none), else ``"chars"`` (text without Hangul is the same in both)."""
    jamo = any(c in hangul.JAMO for c in vocab) and not any(map(hangul.is_syllable, vocab))
    return "jamo" if jamo else "chars"


def detokenize(tokens: str, vocab: str) -> str:
    """Tokens (characters of ``vocab``) -> text: jamo recomposed into syllables if ``vocab`` is made of jamo."""
    return hangul.compose(tokens) if tokens_of(vocab) == "jamo" else tokens


def encode(text: str, vocab: str, unknown: str | None = None) -> np.ndarray:
    """Characters -> int32 ids in ``vocab``; those not in it -> the id of ``unknown`` if given, else a
    ``ValueError`` naming them."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - index.keys())
    if missing and unknown is None:
        raise ValueError(f"characters not in the vocabulary: {''.join(missing)!r}")
    other = index[unknown] if unknown is not None else -1
    return np.fromiter((index.get(c, other) for c in text), np.int32, len(text))


def split_text(text: str, test_fraction: float = TEST_FRACTION) -> tuple[str, str]:
    """The first ``1 - test_fraction`` of the characters (training text) and the rest (test text)."""
    cut = round(len(text) * (1 - test_fraction))
    return text[:cut], text[cut:]


def decode(ids, vocab: str) -> str:
    """int ids -> the string of their characters."""
    return "".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1))


def windows(ids: np.ndarray, seq_len: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``seq_len + 1`` ids every ``stride`` (default ``seq_len``: each id is a target once) ->
    inputs ``(n, seq_len)`` and next-id targets ``(n, seq_len)``."""
    stride = stride or seq_len
    n = (len(ids) - seq_len - 1) // stride + 1 if len(ids) > seq_len else 0
    idx = np.arange(n)[:, None] * stride + np.arange(seq_len + 1)[None, :]
    w = np.asarray(ids, np.int32)[idx] if n else np.zeros((0, seq_len + 1), np.int32)
    return w[:, :-1], w[:, 1:]


def load_text(
    path: str | Path,
    seq_len: int = SEQ_LEN,
    test_fraction: float = TEST_FRACTION,
    stride: int | None = None,
    name: str | None = None,
    tokens: str = "chars",
    unknown: str | None = None,
) -> TextDataset:
    """A character-level (or jamo-level: ``tokens``) dataset from a UTF-8 file: train windows of ``seq_len`` tokens
    from the first ``1 - test_fraction`` of the characters, test windows from the rest; ``num_classes`` is the
    vocabulary size. The vocabulary is the tokens of the whole file or, given the one-character symbol ``unknown``,
    those of the training text and ``unknown``, which the test tokens outside it become."""
    if seq_len < 1 or not 0 < test_fraction < 1:
        raise ValueError(f"need seq_len >= 1 and 0 < test_fraction < 1; got {seq_len}, {test_fraction}")
    if unknown is not None and len(unknown) != 1:
        raise ValueError(f"unknown must be one character (the symbol of unseen tokens); got {unknown!r}")
    text = read_text(path)
    train_text, test_text = (tokenize(part, tokens) for part in split_text(text, test_fraction))
    vocab = vocabulary(train_text + (unknown or test_text))
    train_x, train_y = windows(encode(train_text, vocab), seq_len, stride)
    test_x, test_y = windows(encode(test_text, vocab, unknown), seq_len, stride)
    if not len(train_x) or not len(test_x):
        need = int(np.ceil((seq_len + 1) / min(test_fraction, 1 - test_fraction)))
        unit, count = ("", "") if tokens == "chars" else (" jamo", f" = {len(train_text + test_text)} jamo")
        raise ValueError(
            f"text file {path} is too short: {len(text)} characters{count}, windows of {seq_len + 1}{unit} need at "
            f"least {need}{unit}"
        )
    return TextDataset(name or f"{PREFIX}{path}", train_x, train_y, test_x, test_y, len(vocab), vocab=vocab)
