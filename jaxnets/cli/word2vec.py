"""``jaxnets-word2vec`` (also ``python -m jaxnets.cli.word2vec``): word vectors from UTF-8 text files::

    jaxnets-word2vec --corpus a.txt b.txt --workdir runs/w2v --query king love

trains ``models.Word2Vec`` (skip-gram or CBOW with negative sampling) through ``train.fit``: a checkpoint each
epoch, ``--resume``, Ctrl-C saves and exits 130. Then writes ``WORKDIR/vectors.txt`` in word2vec's text format
(gensim's ``KeyedVectors.load_word2vec_format`` reads it) and prints the nearest neighbours of the ``--query`` words."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from jaxnets.cli._common import check_platforms, fail, invocation, one_line, prog_name, to_flags

COMMAND = ("jaxnets.cli.word2vec", "jaxnets-word2vec", "jaxnets-word2vec")  # module, console script, fallback
PARAMS = (
    *("corpus", "workdir", "architecture", "dim", "window", "negative", "min_count", "sample", "epochs"),
    *("batch_size", "alpha", "seed", "split", "query"),
)
VECTORS = "vectors.txt"


def parser(prog: str) -> argparse.ArgumentParser:
    """The command line's parser (the defaults are word2vec's C code's and gensim's)."""
    p = argparse.ArgumentParser(prog=prog, description="Train word2vec vectors on UTF-8 text files.")
    p.add_argument("--corpus", nargs="+", required=True, metavar="FILE", help="UTF-8 text files")
    p.add_argument("--workdir", required=True, metavar="DIR", help="the run's folder (checkpoint, vectors.txt)")
    p.add_argument("--architecture", default="skipgram", choices=("skipgram", "cbow"), help="(default skipgram)")
    p.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    p.add_argument("--window", type=int, default=5, help="largest window on each side (default 5)")
    p.add_argument("--negative", type=int, default=5, help="noise words per centre (default 5)")
    p.add_argument("--min-count", type=int, default=5, help="rarer words are dropped (default 5)")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold, 0 = off (default 1e-3)")
    p.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default 5)")
    p.add_argument("--batch-size", type=int, default=1024, help="centre words per step (default 1024)")
    p.add_argument("--alpha", type=float, default=0.025, help="first learning rate, falling linearly (0.025)")
    p.add_argument("--split", default="paragraph", choices=("paragraph", "line"), help="what a sentence is")
    p.add_argument("--seed", type=int, default=0, help="(default 0)")
    p.add_argument("--query", nargs="*", default=(), metavar="WORD", help="print these words' nearest neighbours")
    p.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    p.add_argument("--overwrite", action="store_true", help="start afresh over a run in --workdir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def write_vectors(path: Path, words, vectors: np.ndarray) -> Path:
    """``vectors`` (one row per word) in word2vec's text format: a ``count dim`` line, then ``word v1 v2 ...``."""
    lines = [f"{len(words)} {vectors.shape[1]}"]
    lines += [w + " " + " ".join(f"{v:.6g}" for v in row) for w, row in zip(words, vectors, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """Train, write the vectors, print the neighbours. Exit status 2 for bad flags, files or workdir (one line on
    stderr), 130 on Ctrl-C (the checkpoint saved: rerun with --resume)."""
    prog = prog_name(invocation(*COMMAND))
    args = parser(prog).parse_args(argv)
    from jaxnets import data, models, train
    from jaxnets.train import CheckpointError, safety

    options = {k: v for k, v in vars(args).items() if k in PARAMS and k not in ("corpus", "workdir", "query")}
    try:
        check_platforms()
        corpus = data.read_corpus(args.corpus, min_count=args.min_count, split=args.split)
        unknown = [w for w in args.query if w.lower() not in corpus.index]
        if unknown:
            raise ValueError(f"query words not in the vocabulary (min_count {args.min_count}): {', '.join(unknown)}")
        model = models.Word2Vec(len(corpus.words), args.dim, args.window, args.negative, args.architecture)
        step = train.word2vec_step(
            model, corpus, batch_size=args.batch_size, epochs=args.epochs, alpha=args.alpha, sample=args.sample
        )
        result = train.fit(
            step,
            corpus.positions,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            workdir=args.workdir,
            resume=args.resume,
            overwrite=args.overwrite,
            config={**options, "corpus": [str(Path(f).resolve()) for f in args.corpus]},
            progress=not args.no_progress,
        )
    except safety.TrainingInterrupted as e:
        print(f"{one_line(e)}: rerun the same command with --resume", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except (ValueError, OSError, CheckpointError) as e:
        return fail(prog, to_flags(one_line(e), PARAMS, booleans=("resume", "overwrite")))
    vectors = np.asarray(result.state.params["input"])
    print(f"wrote {write_vectors(Path(args.workdir) / VECTORS, corpus.words, vectors)}")
    for word in args.query:
        ids, cosines = models.nearest_neighbours(vectors, corpus.index[word.lower()], k=8)
        print(f"{word}: " + ", ".join(f"{corpus.words[i]} ({c:.2f})" for i, c in zip(ids, cosines, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
