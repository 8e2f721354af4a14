"""Word-level corpora for word2vec: tokenising, a vocabulary with ``min_count``, the corpus as one array of word ids
with a sentence id per word, the unigram^0.75 noise distribution, the frequent-word subsampling keep-probabilities
(as in Mikolov et al.'s C code and gensim), and readers of the word-similarity and analogy test files (WordSim-353,
SimLex-999, questions-words.txt, in the format gensim ships them).

``read_corpus(paths)`` -> a ``Corpus``: ``corpus.ids`` (int32, out-of-vocabulary words dropped, as word2vec drops
them before windowing), ``corpus.sentence`` (the sentence of each word: windows never cross one), ``corpus.words``
and ``corpus.counts`` (the vocabulary, most frequent first)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jaxnets.data.text import read_text

TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*")  # lower-case words, inner apostrophes kept ("o'er", "don't")
SPLITS = ("line", "paragraph")
MAX_SENTENCE = 10_000  # longer sentences are cut (gensim's and the C code's limit)


def tokenise(text: str, split: str = "paragraph") -> list[list[str]]:
    """``text`` as sentences of lower-case word tokens: one per non-empty line (``split="line"``) or per block of
    lines between blank lines (``"paragraph"``), each cut into pieces of at most ``MAX_SENTENCE`` words."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    blocks = text.splitlines() if split == "line" else re.split(r"\n\s*\n", text)
    sentences = []
    for block in blocks:
        tokens = TOKEN.findall(block.lower())
        sentences += [tokens[i : i + MAX_SENTENCE] for i in range(0, len(tokens), MAX_SENTENCE)]
    return sentences


@dataclass(frozen=True)
class Corpus:
    """A corpus over a vocabulary: ``ids`` (N,) int32 word ids, ``sentence`` (N,) int32 sentence ids
    (non-decreasing), ``words`` (most frequent first, ties in order of first appearance) and their ``counts``."""

    ids: np.ndarray
    sentence: np.ndarray
    words: tuple[str, ...]
    counts: np.ndarray
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {w: i for i, w in enumerate(self.words)})

    @property
    def positions(self) -> np.ndarray:
        """The examples word2vec trains on: every position of the corpus, ``arange(N)`` (int32)."""
        return np.arange(len(self.ids), dtype=np.int32)

    def encode(self, words: Iterable[str]) -> list[int]:
        """The ids of ``words``; ``ValueError`` naming the first word not in the vocabulary."""
        missing = next((w for w in words if w not in self.index), None)
        if missing is not None:
            raise ValueError(f"word {missing!r} is not in the vocabulary ({len(self.words)} words)")
        return [self.index[w] for w in words]


def build_corpus(sentences: Sequence[Sequence[str]], min_count: int = 5, max_vocab: int | None = None) -> Corpus:
    """The vocabulary of the words seen at least ``min_count`` times (the ``max_vocab`` most frequent of them, if
    given) and the corpus of their ids; sentences left empty are dropped."""
    if min_count < 1 or (max_vocab is not None and max_vocab < 1):
        raise ValueError(f"min_count and max_vocab must be >= 1; got {min_count}, {max_vocab}")
    counted = Counter(w for s in sentences for w in s)
    kept = [(w, c) for w, c in counted.items() if c >= min_count]  # (Counter keeps first-appearance order)
    kept.sort(key=lambda wc: -wc[1])  # stable: ties stay in order of first appearance
    kept = kept[:max_vocab]
    if not kept:
        raise ValueError(f"no word occurs min_count={min_count} times: lower min_count or give a longer corpus")
    index = {w: i for i, (w, _) in enumerate(kept)}
    encoded = [[index[w] for w in s if w in index] for s in sentences]
    encoded = [s for s in encoded if s]
    ids = np.fromiter((i for s in encoded for i in s), np.int32)
    sentence = np.repeat(np.arange(len(encoded), dtype=np.int32), [len(s) for s in encoded])
    return Corpus(ids, sentence, tuple(w for w, _ in kept), np.array([c for _, c in kept], np.int64))


def read_sentences(paths: str | Path | Iterable[str | Path], split: str = "paragraph") -> list[list[str]]:
    """The sentences (``tokenise``) of UTF-8 text files: files in the order given, a directory's ``*.txt`` in name
    order."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    files = [f for p in map(Path, paths) for f in (sorted(p.glob("*.txt")) if p.is_dir() else [p])]
    if not files:
        raise ValueError(f"paths: no text files in {', '.join(map(str, paths)) or 'nothing given'}")
    return [s for f in files for s in tokenise(read_text(f), split)]


def read_corpus(
    paths: str | Path | Iterable[str | Path], min_count: int = 5, split: str = "paragraph", max_vocab: int | None = None
) -> Corpus:
    """A ``Corpus`` of UTF-8 text files (``read_sentences``, ``build_corpus``)."""
    return build_corpus(read_sentences(paths, split), min_count, max_vocab)


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """The negative-sampling distribution over the vocabulary: ``counts ** power``, normalised (Mikolov et al.
    2013b: the unigram distribution raised to 3/4)."""
    weights = np.asarray(counts, np.float64) ** power
    return (weights / weights.sum()).astype(np.float32)


def keep_probabilities(counts: np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """The probability of keeping each word when frequent words are subsampled with threshold ``sample``: with
    ``t = sample * total count``, ``min(1, (sqrt(count / t) + 1) * t / count)``, the C code's and gensim's formula
    (the paper's ``1 - sqrt(t / f)``, smoothed); ``sample=0``: every word kept."""
    if not 0 <= sample < 1:
        raise ValueError(f"sample must be in [0, 1); got {sample}")
    counts = np.asarray(counts, np.float64)
    if sample == 0:
        return np.ones(counts.shape, np.float32)
    t = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / t) + 1) * t / counts).astype(np.float32)


def read_similarity_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """(word, word, human score) of a tab-separated word-similarity file (WordSim-353, SimLex-999 as gensim ships
    them; lines starting with '#' skipped), the words lower-cased."""
    pairs = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            pairs.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{n}: expected 'word<TAB>word<TAB>score'; got {line!r}") from None
    return pairs


def read_analogies(path: str | Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """The analogy questions ``a : b :: c : d`` of a questions-words.txt file by section (``: capital-common-
    countries`` starts one), the words lower-cased."""
    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    current = None
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if line.startswith(":"):
            current = sections.setdefault(line[1:].strip(), [])
            continue
        words = line.lower().split()
        if not words:
            continue
        if current is None or len(words) != 4:
            raise ValueError(f"{path}:{n}: expected four words after a ': section' line; got {line!r}")
        current.append((words[0], words[1], words[2], words[3]))
    return sections
