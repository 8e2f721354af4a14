"""bAbI-style story generator (jaxnets.data.babi) and end-to-end memory networks (models.memn2n), through train.py."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnets
from jaxnets import train
from jaxnets.data.babi import (
    TASKS,
    Question,
    babi_dataset,
    babi_stories,
    decode,
    encode_stories,
    load_babi,
    sentence_length,
    vocabulary,
    words,
)
from jaxnets.models import memn2n, memory_attention, position_encoding

MOVE = re.compile(r"^(\w+) (?:moved|went|went back|journeyed|travelled) to the (\w+)\.$")
GET = re.compile(r"^(\w+) (?:got|picked up|grabbed|took) the (\w+) there\.$")
DROP = re.compile(r"^(\w+) (?:dropped|discarded|put down|left) the (\w+)\.$")
NUMBERS = ("none", "one", "two", "three")


def parse_answers(story) -> list[str]:
    """Answer every question of a story from its text alone: a reader independent of the simulator."""
    place, holder, history = {}, {}, {}  # person -> place, object -> person, object -> places it has been in
    answers = []
    for line in story:
        if isinstance(line, Question):
            q = line.text
            if m := re.fullmatch(r"Where is (\w+)\?", q):
                answers.append(place[m[1]])
            elif m := re.fullmatch(r"Where is the (\w+)\?", q):
                answers.append(history[m[1]][-1])
            elif m := re.fullmatch(r"Where was the (\w+) before the (\w+)\?", q):
                seen = history[m[1]]
                last = max(i for i, p in enumerate(seen) if p == m[2] and i > 0)
                answers.append(seen[last - 1])
            elif m := re.fullmatch(r"Is (\w+) in the (\w+)\?", q):
                answers.append("yes" if place[m[1]] == m[2] else "no")
            elif m := re.fullmatch(r"How many objects is (\w+) carrying\?", q):
                answers.append(NUMBERS[sum(h == m[1] for h in holder.values())])
            else:
                raise AssertionError(f"unparsed question {q!r}")
        elif m := MOVE.match(line):
            place[m[1]] = m[2]
            for obj, who in holder.items():
                if who == m[1]:
                    history[obj].append(m[2])
        elif m := GET.match(line):
            holder[m[2]] = m[1]
            if history.get(m[2], [None])[-1] != place[m[1]]:
                history.setdefault(m[2], []).append(place[m[1]])
        elif m := DROP.match(line):
            assert holder.pop(m[2]) == m[1]
        else:
            raise AssertionError(f"unparsed sentence {line!r}")
    return answers


@pytest.mark.parametrize("task", TASKS)
def test_every_answer_follows_from_the_text(task):
    stories = babi_stories(task, 1000, seed=3)
    assert len(stories) == 200
    told = [q.answer for s in stories for q in s if isinstance(q, Question)]
    assert len(told) == 1000
    assert [a for s in stories for a in parse_answers(s)] == told
    assert len(set(told)) >= (2 if task == 6 else 3)


@pytest.mark.parametrize("task", TASKS)
def test_supporting_facts_mention_the_entity(task):
    for story in babi_stories(task, 200, seed=1):
        sentences = [line for line in story if isinstance(line, str)]
        for q in (line for line in story if isinstance(line, Question)):
            facts = [sentences[i] for i in q.facts]
            assert len(facts) == {1: 1, 2: 2, 3: 3, 6: 1}.get(task, len(facts)) >= 1
            entity = re.findall(r"(?:is|the) (\w+)(?: carrying| in|\?| before)", q.text, re.I)[0]
            if task in (2, 3):  # the object's pick-up or drop, and its carrier's moves
                handling = [f for f in facts if GET.match(f) or DROP.match(f)]
                assert handling and all(entity in f for f in handling)
                carrier = handling[-1].split()[0]
                assert all(carrier in f for f in facts)
            else:
                assert all(f.startswith(entity) for f in facts)
            if task == 1:
                assert words(facts[0])[-1] == q.answer


def test_encoding_rows_facts_and_vocabulary():
    stories = babi_stories(3, 100, seed=0)
    vocab, length = vocabulary(3), sentence_length(3)
    x, y, facts = encode_stories(stories, vocab, length, memory_size=50)
    assert vocab[0] == "<pad>" and list(vocab[1:]) == sorted(vocab[1:])
    assert x["story"].shape == (100, 50, length) and x["story"].dtype == np.int32 and x["question"].shape == (100, 7)
    n = 0
    for story in stories:
        told = []
        for line in story:
            if isinstance(line, str):
                told.append(line)
                continue
            recent = told[::-1][:50]
            assert [decode(r, vocab) for r in x["story"][n][: len(recent)]] == [" ".join(words(s)) for s in recent]
            assert not x["story"][n][len(recent) :].any()
            assert decode(x["question"][n], vocab) == " ".join(words(line.text)) and vocab[y[n]] == line.answer
            rows = [r for r in facts[n] if r >= 0]
            assert len(rows) == 3  # task 3 asks only while its facts are among the last 50 sentences
            assert sorted(len(told) - 1 - r for r in rows) == list(line.facts)
            n += 1
    assert max(sum(isinstance(line, str) for line in s) for s in stories) > 50  # long stories are cut to 50


def test_dataset_deterministic_by_seed_and_names():
    a, b, c = babi_dataset(1), babi_dataset(1), babi_dataset(1, seed=1)
    assert a.name == "babi:1" and a.num_classes == len(a.vocab) and a.task == 1
    assert len(a.train_y) == len(a.test_y) == 1000 and a.train_facts.shape == (1000, 3)
    for part in ("story", "question"):
        np.testing.assert_array_equal(a.train_x[part], b.train_x[part])
        assert not np.array_equal(a.train_x[part], c.train_x[part])
        assert not np.array_equal(a.train_x[part], a.test_x[part])
    big = load_babi("babi:1:10k")
    assert big.name == "babi:1:10k" and len(big.train_y) == 10000
    np.testing.assert_array_equal(big.test_y, a.test_y)
    np.testing.assert_array_equal(big.train_x["story"][:1000], a.train_x["story"])  # 1k = the first tenth of 10k
    with pytest.raises(ValueError, match=r"babi:T .* 1, 2, 3, 6, 7"):
        load_babi("babi:4")
    with pytest.raises(ValueError, match="size"):
        babi_dataset(1, size="5k")


SHAPE = {"story": (6, 4), "question": (4,)}
V = 12


def _batch(rows: int = 3, memory: int = 6) -> dict[str, jnp.ndarray]:
    """Two stories of ``rows`` sentences (of 2-4 words, ids 1..V-1) in ``memory`` slots, the rest empty."""
    rng = np.random.default_rng(0)
    story = np.zeros((2, memory, 4), np.int32)
    for b in range(2):
        for r in range(rows):
            n = 2 + (b + r) % 3
            story[b, r, :n] = rng.integers(1, V, n)
    question = np.array([[3, 4, 5, 0], [7, 1, 0, 0]], np.int32)
    return {"story": jnp.asarray(story), "question": jnp.asarray(question)}


def test_position_encoding_hand_computed():
    got = position_encoding(jnp.array([3]), 5, 4)[0]
    want = np.array(  # (1 - j/3) - (k/4)(1 - 2j/3), j = 1..3, k = 1..4; padding words 0
        [[7 / 12, 1 / 2, 5 / 12, 1 / 3], [5 / 12, 1 / 2, 7 / 12, 2 / 3], [1 / 4, 1 / 2, 3 / 4, 1.0], [0] * 4, [0] * 4]
    )
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_attention_sums_to_one_over_stored_memories(tying):
    model = memn2n(SHAPE, V, embed=8, hops=2, tying=tying)
    params, state = model.init(jax.random.key(0))
    p = memory_attention(model, params, state, _batch())
    assert p.shape == (2, 2, 6)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(p[..., 3:]) == 0) and np.all(np.asarray(p[..., :3]) > 0)


def test_trailing_empty_memories_change_nothing():
    small, big = memn2n(SHAPE, V, embed=8), memn2n({"story": (9, 4), "question": (4,)}, V, embed=8)
    params, state = big.init(jax.random.key(1))
    cut = {k: {"table": v["table"][:6]} if k.startswith("temporal") else v for k, v in params.items()}
    x = _batch()
    padded = {"story": jnp.pad(x["story"], ((0, 0), (0, 3), (0, 0))), "question": x["question"]}
    np.testing.assert_allclose(small.apply(cut, state, x)[0], big.apply(params, state, padded)[0], rtol=1e-5)


def test_adjacent_tying_shares_tables():
    d, hops, m = 8, 3, 6

    def count(model):
        return sum(a.size for a in jax.tree.leaves(model.init(jax.random.key(0))[0]))

    assert count(memn2n(SHAPE, V, embed=d, hops=hops)) == (hops + 1) * (V * d + m * d)
    assert count(memn2n(SHAPE, V, embed=d, hops=hops, temporal=False)) == (hops + 1) * V * d
    assert count(memn2n(SHAPE, V, embed=d, hops=hops, tying="layerwise")) == 3 * V * d + 2 * m * d + d * d + d * V


def _reference(params, x, hops, linear):
    """The bag-of-words, temporal, adjacent-tied network by hand in numpy (softmax over the stored memories or,
    for linear start, none)."""
    story, question = np.asarray(x["story"]), np.asarray(x["question"])
    table = [np.asarray(params[f"embed{k}"]["table"]) for k in range(hops + 1)]
    times = [np.asarray(params[f"temporal{k}"]["table"]) for k in range(hops + 1)]
    stored = (story != 0).any(-1)
    u = np.where((question == 0)[..., None], 0, table[0][question]).sum(1)
    pad = (story == 0)[..., None]
    for k in range(hops):
        m = np.where(pad, 0, table[k][story]).sum(2) + times[k][None]
        c = np.where(pad, 0, table[k + 1][story]).sum(2) + times[k + 1][None]
        score = np.einsum("bmd,bd->bm", m, u)
        if linear:
            p = np.where(stored, score, 0)
        else:
            e = np.where(stored, np.exp(score - score.max(1, keepdims=True)), 0)
            p = e / e.sum(1, keepdims=True)
        u = u + np.einsum("bm,bmd->bd", p, c)
    return u @ table[hops].T


def test_linear_start_then_softmax():
    model = memn2n(SHAPE, V, embed=8, hops=2, encoding="bow", linear_start_steps=2)
    params, state = model.init(jax.random.key(2))
    x = _batch()
    np.testing.assert_allclose(model.apply(params, state, x)[0], _reference(params, x, 2, True), rtol=1e-4)
    for _ in range(2):
        _, state = model.apply(params, state, x, train=True)
    assert int(state["step"]) == 2
    np.testing.assert_allclose(model.apply(params, state, x)[0], _reference(params, x, 2, False), rtol=1e-4)
    assert int(model.apply(params, state, x)[1]["step"]) == 2  # evaluation does not count


def test_random_noise_shifts_ages_at_training_only():
    model = memn2n(SHAPE, V, embed=8, random_noise=0.5)
    params, state = model.init(jax.random.key(3))
    x = _batch()
    plain = model.apply(params, state, x)[0]
    a = model.apply(params, state, x, key=jax.random.key(0), train=True)[0]
    b = model.apply(params, state, x, key=jax.random.key(0), train=True)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, plain)
    with pytest.raises(ValueError, match="random_noise needs a key"):
        model.apply(params, state, x, train=True)
    with pytest.raises(ValueError, match="encoding must be one of position, bow"):
        memn2n(SHAPE, V, encoding="lstm")


def test_loss_falls_on_task1_and_compiles_once():
    data = babi_stories(1, 200, seed=0)
    vocab = vocabulary(1)
    x, y, _ = encode_stories(data, vocab, sentence_length(1), memory_size=10)
    x, y = {k: jnp.asarray(v) for k, v in x.items()}, jnp.asarray(y)
    model = memn2n({"story": (10, 6), "question": (6,)}, len(vocab), embed=16)
    params, state = model.init(jax.random.key(0))
    opt = optax.adam(0.02)
    opt_state = opt.init(params)
    traces = []

    @jax.jit
    def step(params, opt_state, state, x, y):
        traces.append(1)

        def loss(p):
            metrics, new = model.metrics(p, state, x, y, train=True)
            return metrics["loss"].mean(), new

        (value, new), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, new, value

    losses = []
    for i in range(30):
        rows = slice((i % 5) * 40, (i % 5) * 40 + 40)
        params, opt_state, state, value = step(params, opt_state, state, {k: v[rows] for k, v in x.items()}, y[rows])
        losses.append(float(value))
    assert len(traces) == 1 and int(state["step"]) == 30
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_train_py_path_writes_the_attention_figure_and_the_run_loads(tmp_path):
    """train.run on babi:1 (dict inputs, the memory model's step counter in its state): metrics, the attention PNG,
    and jaxnets.load + evaluation reproducing the last epoch's test metrics."""
    config = train.TrainConfig(model="memn2n", dataset="babi:1", epochs=2, workdir=str(tmp_path / "run"))
    result = train.run(config, progress=False, log=lambda s: None)
    assert (tmp_path / "run" / "memory_attention.png").stat().st_size > 10_000
    trained = jaxnets.load(tmp_path / "run")
    assert int(trained.state["step"]) == result.history[-1]["step"]
    metrics = train.evaluate_trained(trained)
    assert metrics["test_accuracy"] == pytest.approx(result.history[-1]["test_accuracy"], abs=1e-6)
    assert trained.record["vocab"] == list(babi_dataset(1).vocab)
