"""Data files that ship inside packages from PyPI (the `text` extra), found without importing the package (konlpy's
import starts Java, gensim's takes seconds): konlpy's Korean corpora and gensim's test corpus and evaluation files."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """The path of ``parts`` inside the installed ``package``; one-line ``ValueError`` naming the pip install if the
    package or the file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package} is not installed: pip install {package} (or jaxnets[text])")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise ValueError(f"{path} is missing from the installed {package}")
    return path


def konlpy_corpus() -> list[Path]:
    """The Korean texts shipped in konlpy: the constitution (kolaw/constitution.txt, first) and ten bills
    (kobill/*.txt, sorted): 65,199 characters of UTF-8 text."""
    corpus = package_file("konlpy", "data", "corpus")
    return [corpus / "kolaw" / "constitution.txt", *sorted((corpus / "kobill").glob("*.txt"))]


def gensim_test_data(name: str) -> Path:
    """A file of gensim's test data: e.g. 'lee_background.cor' (the Lee news corpus), 'wordsim353.tsv',
    'simlex999.txt', 'questions-words.txt'."""
    return package_file("gensim", "test", "test_data", name)
