#!/usr/bin/env python3
"""Hangul letter by letter: the same char_lstm trained on whole syllables and on jamo (``--tokens jamo``), on the
Korean text shipped in the konlpy package (the constitution, kolaw/constitution.txt, and ten bills, kobill/*.txt:
65,199 characters, 36,038 of them Hangul syllables of 445 kinds), compared on the same held-out text.

    python bench/hangul.py                  # 2 x 256 LSTM, dropout 0.2, clip 5, 10 epochs each: 17 min loaded
    python bench/hangul.py --epochs 20      # the README figures: 26 min loaded
    python bench/hangul.py --quick          # a smoke run (1 epoch of a small model)

Held-out text: the last 10% of the characters (``jaxnets.data.text.split_text``), for both models. Each model's
vocabulary is its training text's tokens plus an unknown symbol; a held-out token outside it costs the model's bits
for the unknown symbol plus log2 of the number of tokens of its class (Hangul syllables, initial, medial or final jamo,
other characters) that training never showed, i.e. the unknown mass spread evenly over them: every held-out
character is paid for in full. Bits come from ``jaxnets.train.sampling.text_bits`` (windows as in training; the
jamo model's windows hold as many tokens as 64 characters have jamo on average, so both read the same text span).
Bits per character (syllable) = all bits over the held-out characters' tokens / the number of those characters;
the same is reported over the Hangul syllables alone and over the other characters.

Sampled text: from a newline, ``--samples`` samples of ``--length`` jamo (the syllable model: as many characters as
that many jamo make on average), each recomposed (``hangul.compose``); its last character is dropped (the length may
cut a syllable). Valid share = Hangul syllables / Hangul positions, a position being a syllable or a conjoining jamo
left over because it does not come in initial, medial (, final) order (``hangul.syllable_validity``). Novel share =
sampled syllables that the training text never contains.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import common
import jax
import numpy as np

from jaxnets import data, train
from jaxnets.data import hangul, text
from jaxnets.models import char_lm
from jaxnets.train.sampling import text_bits

UNKNOWN = "\ufffd"  # the replacement character: the symbol of the tokens training never showed
CLASSES = {  # how many tokens each class holds (other: the rest of Unicode's code points)
    "syllable": hangul.SYLLABLES,
    "initial": len(hangul.INITIAL_JAMO),
    "medial": len(hangul.MEDIAL_JAMO),
    "final": len(hangul.FINAL_JAMO),
    "other": 0x110000 - hangul.SYLLABLES - len(hangul.JAMO),
}


def token_class(token: str) -> str:
    if hangul.is_syllable(token):
        return "syllable"
    for name, jamo in (("initial", hangul.INITIAL_JAMO), ("medial", hangul.MEDIAL_JAMO), ("final", hangul.FINAL_JAMO)):
        if token in jamo:
            return name
    return "other"


def heldout_bits(model, params, state, vocab: str, train_text: str, test_text: str, tokens: str) -> np.ndarray:
    """Bits of each held-out character (the sum over its tokens), unseen tokens paid in full (module docstring)."""
    train_tokens, test_tokens = text.tokenize(train_text, tokens), text.tokenize(test_text, tokens)
    ids = text.encode(train_tokens[-1] + test_tokens, vocab, UNKNOWN)  # (the first token: context only)
    bits = text_bits(model, params, state, ids)
    seen = {name: sum(token_class(t) == name for t in set(train_tokens)) for name in CLASSES}
    for i, token in enumerate(test_tokens):
        if token not in vocab:
            bits[i] += math.log2(CLASSES[token_class(token)] - seen[token_class(token)])
    per_char = [len(text.tokenize(c, tokens)) for c in test_text]
    return np.add.reduceat(bits, np.cumsum([0, *per_char[:-1]]))


def sample_stats(samples: list[str], train_syllables: set[str]) -> tuple[float, float, int]:
    """Valid share, novel share and Hangul positions of samples (their last character dropped)."""
    valid = positions = novel = 0
    for s in samples:
        v, p = hangul.syllable_validity(s[:-1])
        valid, positions = valid + v, positions + p
        novel += sum(hangul.is_syllable(c) and c not in train_syllables for c in s[:-1])
    return valid / max(positions, 1), novel / max(valid, 1), positions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--clip-norm", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64, help="characters per window (jamo: as many as they hold)")
    p.add_argument("--samples", type=int, default=4)
    p.add_argument("--length", type=int, default=600, help="jamo per sample")
    p.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.8])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="1 epoch of a 1 x 64 LSTM, 1 sample (a smoke run)")
    args = p.parse_args()
    if args.quick:
        args.epochs, args.hidden, args.layers, args.samples = 1, 64, 1, 1

    corpus = "".join(text.read_text(f) for f in data.konlpy_corpus())
    train_text, test_text = text.split_text(corpus)
    jamo_per_char = len(hangul.decompose(corpus)) / len(corpus)
    train_syllables = {c for c in train_text if hangul.is_syllable(c)}
    is_syllable = np.array([hangul.is_syllable(c) for c in test_text])
    unseen = sorted({c for c in test_text if c not in train_text})
    print(
        f"corpus: {len(corpus):,} characters ({len(train_text):,} train, {len(test_text):,} held out), "
        f"{sum(map(hangul.is_syllable, corpus)):,} Hangul syllables of {len({*filter(hangul.is_syllable, corpus)})} "
        f"kinds, {jamo_per_char:.3f} tokens per character as jamo; held-out characters unseen in training: "
        f"{sum(c in unseen for c in test_text)} ({''.join(unseen)})"
    )
    rows, samples_shown = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "korean.txt"
        path.write_text(corpus, encoding="utf-8")
        for tokens in ("chars", "jamo"):
            seq_len = args.seq_len if tokens == "chars" else round(args.seq_len * jamo_per_char)
            ds = text.load_text(path, seq_len=seq_len, tokens=tokens, unknown=UNKNOWN)
            model = char_lm((seq_len,), ds.num_classes, hidden=args.hidden, layers=args.layers, dropout=args.dropout)
            steps = len(ds.train_x) // args.batch_size * args.epochs
            optimizer = train.make_optimizer(
                "adam", args.lr, schedule="cosine", total_steps=steps, clip_norm=args.clip_norm
            )
            result, seconds = common.timed_fit(
                model,
                ds,
                optimizer,
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=args.seed,
            )
            params, state = result.state.params, result.state.model_state
            bits = heldout_bits(model, params, state, ds.vocab, train_text, test_text, tokens)
            length = args.length if tokens == "jamo" else round(args.length / jamo_per_char)
            by_temperature = {}
            for temperature in args.temperatures:
                samples = [
                    train.sample_text(model, params, state, ds.vocab, "\n", length, jax.random.key(k), temperature)
                    for k in range(args.samples)
                ]
                by_temperature[temperature] = sample_stats(samples, train_syllables)
                samples_shown.setdefault(tokens, samples[0])
            first, last = result.history[0], result.history[-1]
            rows.append(
                (tokens, ds.num_classes, seq_len, len(ds.train_x), seconds, first["train_loss"], last["train_loss"],
                 bits, by_temperature)
            )  # fmt: skip
            print(f"{tokens}: train loss {first['train_loss']:.3f} -> {last['train_loss']:.3f} in {seconds:.0f} s")

    jamo_tokens = len(hangul.decompose(test_text))
    print(
        f"\n{args.layers} x {args.hidden} LSTM, embedding 64, dropout {args.dropout}, Adam lr {args.lr} cosine, "
        f"clip norm {args.clip_norm}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}\n"
    )
    print(
        "| tokens | vocabulary | window | train loss, epoch 1 -> last (nats/token) | bits per jamo | bits per "
        "character | bits per Hangul syllable | bits per other character | training s (loaded) |"
    )
    print("| --- |" + " ---: |" * 8)
    for tokens, vocab, seq_len, _, seconds, first, last, bits, _ in rows:
        per_jamo = f"{bits.sum() / jamo_tokens:.3f}" if tokens == "jamo" else "-"
        print(
            f"| {tokens} | {vocab} | {seq_len} | {first:.3f} -> {last:.3f} | {per_jamo} | {bits.mean():.3f} | "
            f"{bits[is_syllable].mean():.3f} | {bits[~is_syllable].mean():.3f} | {seconds:.0f} |"
        )
    print("\n| tokens | temperature | valid syllables (share of Hangul positions) | novel syllables | positions |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for tokens, *_, by_temperature in rows:
        for temperature, (valid, novel, positions) in by_temperature.items():
            print(f"| {tokens} | {temperature} | {valid:.2%} | {novel:.2%} | {positions} |")
    for tokens, sample in samples_shown.items():
        print(f"\nsample ({tokens}, temperature {args.temperatures[0]}, seed 0):\n{sample}")


if __name__ == "__main__":
    main()
