"""easy-VQA (Victor Zhou's easy-vqa package on PyPI, the `vqa` extra): 64x64 images of one coloured shape (circle,
rectangle, triangle; 8 colours) with questions about it, 13 answers. Read from the files the package ships (4,000
training images with 38,575 questions, 1,000 test images with 9,673 questions); nothing is downloaded.

Examples are questions: x = {'image': (n, 64, 64, 3) uint8 (models scale it to [0, 1]; float32 copies per question
would take 1.9 GB), 'question': (n, L) int32 word ids, 0 = padding}, y = the answer's index into ``answers`` (the
package's answers.txt order). The vocabulary is that of the training questions (lowercase, punctuation stripped),
after '<pad>' (0) and '<unk>' (1, test words never seen in training); L is the longest question of either split.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaxnets.data.base import Dataset, DataUnavailable
from jaxnets.data.packaged import package_file

NAME = "easy_vqa"
PAD, UNK = "<pad>", "<unk>"


@dataclass(frozen=True)
class VQADataset(Dataset):
    """A ``Dataset`` of image questions with the words behind the ids (``vocab[i]`` is word ``i``, 0 padding, 1
    unknown) and the answers behind the labels (``answers[y]``)."""

    vocab: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()


def words(text: str) -> list[str]:
    """The words of a question: lowercase, punctuation stripped ('What color is the shape?' -> what, color, ...)."""
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def encode(questions: list[str], vocab: tuple[str, ...], length: int) -> np.ndarray:
    """(n, length) int32 word ids of ``questions`` (unknown words -> 1), padded with 0 after each question."""
    index = {w: i for i, w in enumerate(vocab)}
    out = np.zeros((len(questions), length), np.int32)
    for row, q in zip(out, questions, strict=True):
        ids = [index.get(w, 1) for w in words(q)][:length]
        row[: len(ids)] = ids
    return out


def decode(ids: np.ndarray, vocab: tuple[str, ...]) -> str:
    """The question text of one row of word ids (padding dropped)."""
    return " ".join(vocab[i] for i in np.asarray(ids) if i != 0) + "?"


def _data_dir() -> Path:
    if importlib.util.find_spec("easy_vqa") is None:
        raise DataUnavailable("easy_vqa needs the easy-vqa package: pip install easy-vqa (or jaxnets[vqa])")
    return package_file("easy_vqa", "data")


def _split(root: Path, split: str) -> tuple[list[str], list[str], np.ndarray]:
    with open(root / split / "questions.json", encoding="utf-8") as f:
        rows = json.load(f)
    return [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], np.int64)


def _images(root: Path, split: str, ids: np.ndarray) -> np.ndarray:
    """(len(ids), 64, 64, 3) uint8: each distinct image read once, then indexed per question."""
    from PIL import Image

    distinct, inverse = np.unique(ids, return_inverse=True)
    pics = []
    for i in distinct:
        with Image.open(root / split / "images" / f"{i}.png") as im:
            pics.append(np.asarray(im.convert("RGB"), np.uint8))
    return np.stack(pics)[inverse]


def easy_vqa() -> VQADataset:
    """The easy-VQA dataset from the installed easy-vqa package (``DataUnavailable`` if it is not installed)."""
    root = _data_dir()
    answers = tuple(a.strip() for a in (root / "answers.txt").read_text(encoding="utf-8").splitlines() if a.strip())
    train_q, train_a, train_ids = _split(root, "train")
    test_q, test_a, test_ids = _split(root, "test")
    vocab = (PAD, UNK, *sorted({w for q in train_q for w in words(q)}))
    length = max(len(words(q)) for q in train_q + test_q)
    index = {a: i for i, a in enumerate(answers)}

    def split(name: str, qs: list[str], ans: list[str], ids: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        x = {"image": _images(root, name, ids), "question": encode(qs, vocab, length)}
        return x, np.array([index[a] for a in ans], np.int32)

    train_x, train_y = split("train", train_q, train_a, train_ids)
    test_x, test_y = split("test", test_q, test_a, test_ids)
    return VQADataset(NAME, train_x, train_y, test_x, test_y, len(answers), vocab=vocab, answers=answers)
