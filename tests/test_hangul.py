"""Hangul letter by letter: syllables <-> jamo (checked against unicodedata's NFD/NFC on every syllable), the jamo
tokenisation of text datasets, sampling that recomposes syllables, held-out bits, and a jamo char_lstm whose loss
falls through train.run."""

from __future__ import annotations

import functools
import random
import unicodedata

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnets
from jaxnets import train
from jaxnets.cli import sample as sample_cli
from jaxnets.data import hangul, text
from jaxnets.models import char_lm
from jaxnets.train.sampling import text_bits

ALL = "".join(chr(hangul.SYLLABLE_BASE + i) for i in range(hangul.SYLLABLES))
KOREAN = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.\n"


def test_every_syllable_round_trips_and_matches_unicode():
    assert len(ALL) == 11172 and ALL[0] == "가" and ALL[-1] == "힣"
    jamo = [hangul.decompose(s) for s in ALL]
    assert all(hangul.compose(j) == s for j, s in zip(jamo, ALL, strict=True))  # one syllable at a time
    assert all(j == unicodedata.normalize("NFD", s) for j, s in zip(jamo, ALL, strict=True))  # the standard's
    assert hangul.decompose(ALL) == "".join(jamo) and hangul.compose("".join(jamo)) == ALL  # and as one text
    assert {len(j) for j in jamo} == {2, 3} and sum(len(j) == 2 for j in jamo) == 19 * 21
    assert set("".join(jamo)) == set(hangul.JAMO) and len(hangul.JAMO) == 19 + 21 + 27
    assert [hex(ord(c)) for c in hangul.decompose("한")] == ["0x1112", "0x1161", "0x11ab"]  # ᄒ ᅡ ᆫ (hand-computed)
    assert [hex(ord(c)) for c in hangul.decompose("각")] == ["0x1100", "0x1161", "0x11a8"]


def test_other_text_passes_through_and_compose_is_nfc_on_jamo():
    mixed = "Hello, 세계! ㄱㅏ café 漢字 ①\n" + KOREAN  # (compatibility jamo ㄱ ㅏ are not conjoining jamo)
    assert hangul.compose(hangul.decompose(mixed)) == mixed
    assert hangul.decompose("abc ㄱㅏ 漢字") == "abc ㄱㅏ 漢字" and hangul.compose("abc ㄱㅏ") == "abc ㄱㅏ"
    rng = random.Random(0)
    alphabet = hangul.JAMO + "가각한 a."  # jamo in any order, syllables with and without a final
    for _ in range(300):
        s = "".join(rng.choice(alphabet) for _ in range(12))
        assert hangul.compose(s) == unicodedata.normalize("NFC", s), s
    medial, final = hangul.MEDIAL_JAMO[0], hangul.FINAL_JAMO[3]  # ᅡ, ᆫ
    assert hangul.compose("하" + final) == "한" and hangul.compose("한" + final) == "한" + final
    assert hangul.syllable_validity(hangul.compose(medial + "가" + hangul.INITIAL_JAMO[0] + " x")) == (1, 3)


def test_jamo_dataset_holds_out_the_same_text(tmp_path):
    path = tmp_path / "ko.txt"
    body = KOREAN * 4 + "국민 갖춘"  # the last 10% holds two syllables (갖, 춘) that training never shows
    path.write_text(body, encoding="utf-8")
    train_text, test_text = text.split_text(body)
    chars = text.load_text(path, seq_len=8)
    jamo = text.load_text(path, seq_len=8, tokens="jamo")
    assert text.tokens_of(chars.vocab) == "chars" and text.tokens_of(jamo.vocab) == "jamo"
    assert not any(map(hangul.is_syllable, jamo.vocab)) and jamo.vocab == text.vocabulary(hangul.decompose(body))
    first = text.decode(jamo.test_x[0], jamo.vocab) + text.decode(jamo.test_y[0, -1:], jamo.vocab)
    assert hangul.decompose(test_text).startswith(first)  # the split is made on characters, then decomposed
    assert text.detokenize(first, jamo.vocab) == hangul.compose(first)
    np.testing.assert_array_equal(jamo.train_y[:, :-1], jamo.train_x[:, 1:])

    held = text.load_text(path, seq_len=8, unknown="?")  # vocabulary from the training text, plus "?"
    assert set(held.vocab) == set(train_text) | {"?"} and "갖" not in held.vocab
    unknown_id = held.vocab.index("?")
    ids = text.encode(test_text, held.vocab, "?")
    assert [test_text[i] for i in np.flatnonzero(ids == unknown_id)] == ["갖", "춘"]
    with pytest.raises(ValueError, match="windows of 65 jamo need at least 650 jamo"):
        text.load_text(path, tokens="jamo")
    with pytest.raises(ValueError, match="tokens must be one of chars, jamo; got 'bytes'"):
        text.load_text(path, seq_len=8, tokens="bytes")
    with pytest.raises(ValueError, match="is for a text:FILE dataset"):
        jaxnets.data.load_raw("xor", tokens="jamo")
    with pytest.raises(ValueError, match="tokens 'bytes'"):
        train.TrainConfig(model="char_lstm", dataset=f"text:{path}", tokens="bytes").resolved()
    with pytest.raises(train.ParameterError, match="is for a text:FILE dataset") as err:
        train.TrainConfig(model="char_lstm", dataset="xor", tokens="jamo").resolved()
    assert err.value.param == "tokens"


def test_text_bits_equal_the_training_loss():
    """Bits summed over windows that tile the text = the objective's bits per token x tokens; a shorter text's bits
    are a prefix of a longer one's (the last window padded: the model is causal)."""
    model = char_lm((6,), 9, embed=4, hidden=8, layers=1)
    params, state = model.init(jax.random.key(0))
    ids = np.random.default_rng(0).integers(0, 9, 6 * 5 + 1)
    bits = text_bits(model, params, state, ids, batch_size=2)
    x, y = ids[:-1].reshape(5, 6), ids[1:].reshape(5, 6)
    metrics, _ = jax.jit(model.metrics)(params, state, jnp.asarray(x), jnp.asarray(y))
    assert bits.shape == (30,) and np.all(bits > 0)
    np.testing.assert_allclose(bits.reshape(5, 6).mean(axis=1), metrics["bpc"], rtol=1e-5)
    np.testing.assert_allclose(text_bits(model, params, state, ids[:17], batch_size=2), bits[:16], rtol=1e-5)
    with pytest.raises(ValueError, match="at least two tokens"):
        text_bits(model, params, state, ids[:1])


def test_jamo_sampling_keeps_the_prompt_whole():
    """A model that always predicts a final consonant: after 하 the first jamo drawn is not one (it would make 한);
    after 한 it is (a stray final, counted invalid); the text comes back recomposed."""
    vocab = text.vocabulary(hangul.decompose("하한 a"))
    final = vocab.index(hangul.decompose("한")[-1])
    model = char_lm((4,), len(vocab), embed=2, hidden=2, layers=1)
    params, state = model.init(jax.random.key(0))
    params["out"] = {"w": jnp.zeros_like(params["out"]["w"]), "b": jnp.zeros(len(vocab)).at[final].set(10.0)}
    sample = functools.partial(train.sample_text, model, params, state, vocab, temperature=0, key=jax.random.key(0))
    assert sample("하", length=1) == vocab[0]  # the best token that is not a final (all others tie)
    assert sample("한", length=1) == vocab[final]
    assert sample("하", length=2) == vocab[0] + vocab[final]
    assert sample("한", length=3) == vocab[final] * 3 and hangul.syllable_validity(vocab[final] * 3) == (0, 3)


def test_jamo_char_lstm_loss_falls_and_samples_syllables(tmp_path, capsys, monkeypatch):
    """train.py's path with --tokens jamo, gradient clipping and dropout, then jaxnets-sample from the run."""
    _, description = jaxnets.models.REGISTRY["char_lstm"]
    monkeypatch.setitem(jaxnets.models.REGISTRY, "char_lstm", (functools.partial(char_lm, embed=16), description))
    path = tmp_path / "ko.txt"
    path.write_text(KOREAN * 16, encoding="utf-8")
    config = train.TrainConfig(
        model="char_lstm",
        dataset=f"text:{path}",
        tokens="jamo",
        epochs=3,
        batch_size=2,
        lr=1e-2,
        clip_norm=1.0,
        model_args={"hidden": 64, "layers": 1, "dropout": 0.1},
        workdir=str(tmp_path / "run"),
    )
    result = train.run(config, progress=False, log=lambda s: None)
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < 0.8 * losses[0], losses

    assert sample_cli.main(["--workdir", str(tmp_path / "run"), "--prompt", "국민", "--length", "30"]) == 0
    printed = capsys.readouterr().out.rstrip("\n")  # 30 jamo after the prompt's, recomposed
    assert printed.startswith("국민") and hangul.compose(printed) == printed
    assert len(hangul.decompose(printed)) == len(hangul.decompose("국민")) + 30
    vocab = train.load_text_run(tmp_path / "run")[3]
    assert text.tokens_of(vocab) == "jamo" and vocab == text.vocabulary(hangul.decompose(KOREAN))
