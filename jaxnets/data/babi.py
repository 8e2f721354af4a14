"""bAbI-style question answering stories (Weston et al. 2015, "Towards AI-complete question answering") from a small
world simulator, for end-to-end memory networks (``models.memn2n``).

Four people (Mary, John, Daniel, Sandra) move between six places and pick up and drop three objects (football,
apple, milk), told in the templates of the original tasks ("Mary moved to the bathroom.", "John picked up the
football there.", "Sandra dropped the milk."). Questions are interleaved in a story as in bAbI; each is one example
whose memory is the story's sentences before it (never the questions). Five tasks (``TASKS``):

1. single supporting fact, people moving: "Where is Mary?" -> bathroom;
2. two supporting facts, objects carried: "Where is the football?" -> the carrier's place or where it was dropped;
3. three supporting facts: "Where was the football before the kitchen?" -> where it was before it was last carried
   into the kitchen (its present place); stories are long, questions are asked only while their facts are among
   the last ``WINDOW`` = 50 sentences;
6. yes/no questions: "Is John in the garden?" -> yes / no (half each);
7. counting: "How many objects is Mary carrying?" -> none / one / two / three.

The simulator computes every answer and its supporting facts from the world state (not from the text). A data set
counts questions as bAbI does: "1k" is 1,000 training questions, "10k" 10,000, and both have the same 1,000 test
questions; train and test come from different fixed seeds. This is not the Facebook data: the same kind of tasks
and templates, our own generator (its templates are ``MOVES``, ``GETS``, ``DROPS`` and ``QUESTIONS``).

Encoding (``babi_dataset``): words lowercase without punctuation, a fixed vocabulary per task (every word of its
templates, sorted, id 0 = padding); ``x = {"story": (memory_size, sentence_len), "question": (sentence_len,)}``
int32 with the story's most recent ``memory_size`` sentences, row 0 the latest (row i = i sentences back; empty rows
at the end), ``y`` the answer word's id. ``BabiDataset.train_facts``/``test_facts`` give the supporting facts as
memory rows (-1 padded; a fact older than ``memory_size`` sentences is -1 too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from jaxnets.data.base import Dataset

TASKS = (1, 2, 3, 6, 7)
SIZES = {"1k": 1000, "10k": 10000}  # training questions
TEST_QUESTIONS = 1000
PREFIX = "babi:"
MEMORY_SIZE = 50  # the paper's memory: the last 50 sentences
WINDOW = 50  # task 3 asks a question only if its supporting facts are among the last WINDOW sentences
MAX_FACTS = 3
PEOPLE = ("Mary", "John", "Daniel", "Sandra")
PLACES = ("bathroom", "bedroom", "garden", "hallway", "kitchen", "office")
OBJECTS = ("football", "apple", "milk")
COUNTS = ("none", "one", "two", "three")
MOVES = ("moved to the", "went to the", "journeyed to the", "travelled to the", "went back to the")
GETS = ("got the {} there", "picked up the {} there", "grabbed the {} there", "took the {} there")
DROPS = ("dropped the {}", "discarded the {}", "put down the {}", "left the {}")
QUESTIONS = {
    1: ("Where is {p}?",),
    2: ("Where is the {o}?",),
    3: ("Where was the {o} before the {l}?",),
    6: ("Is {p} in the {l}?",),
    7: ("How many objects is {p} carrying?",),
}
ANSWERS = {6: ("yes", "no"), 7: COUNTS}
QUESTIONS_PER_STORY = 5
# sentences told before each question: (fewest, most), drawn uniformly per question
GAPS = {1: (2, 2), 2: (2, 6), 3: (4, 14), 6: (2, 2), 7: (2, 4)}
NAMES = {f"{PREFIX}{t}{s}": (t, size) for t in TASKS for s, size in (("", "1k"), (":10k", "10k"))}
DESCRIPTIONS = {
    f"{PREFIX}{t}": f"bAbI-style task {t} ({title}) from our story simulator, 1,000 / 1,000 questions; x = "
    "{'story': (50, words), 'question': (words,)} word ids, y = answer word (babi:T:10k: 10,000 training)"
    for t, title in zip(
        TASKS,
        ("single supporting fact", "two supporting facts", "three supporting facts", "yes/no", "counting"),
        strict=True,
    )
}


class Question(NamedTuple):
    """A question of a story, its answer word and its supporting facts (indices of the story's sentences)."""

    text: str
    answer: str
    facts: tuple[int, ...]


Story = list[str | Question]  # sentences and questions in the order told


@dataclass(frozen=True)
class BabiDataset(Dataset):
    """A ``Dataset`` of encoded bAbI-style questions: ``vocab[i]`` is word ``i`` (0: padding); ``train_facts`` and
    ``test_facts`` (n, 3) are the memory rows of each question's supporting facts, -1 padded."""

    vocab: tuple[str, ...] = ()
    task: int = 0
    train_facts: np.ndarray = field(default_factory=lambda: np.zeros((0, MAX_FACTS), np.int32))
    test_facts: np.ndarray = field(default_factory=lambda: np.zeros((0, MAX_FACTS), np.int32))


def words(text: str) -> list[str]:
    """A sentence's words: lowercase, punctuation dropped."""
    return "".join(c for c in text.lower() if c.isalnum() or c.isspace()).split()


def _templates(task: int) -> list[str]:
    """Every sentence and question form of ``task`` (``{}`` fillers as one word each)."""
    told = [f"{{p}} {m} {{l}}" for m in MOVES]
    if task != 1:
        told += ["{p} " + g.format("{o}") for g in GETS + DROPS]
    return told + list(QUESTIONS[task])


def vocabulary(task: int) -> tuple[str, ...]:
    """The fixed vocabulary of ``task``: '<pad>' (id 0), then every word of its templates, names, places, objects
    and answers can produce, sorted."""
    _check_task(task)
    vocab = {w for t in _templates(task) for w in words(t.format(p="", o="", l=""))}
    vocab |= {w.lower() for w in PEOPLE + PLACES} | set(ANSWERS.get(task, ()))
    if task != 1:
        vocab |= set(OBJECTS)
    return ("<pad>", *sorted(vocab))


def sentence_length(task: int) -> int:
    """Words in the longest sentence or question of ``task`` (every filler is one word)."""
    _check_task(task)
    return max(len(words(t.format(p="x", o="x", l="x"))) for t in _templates(task))


def _check_task(task: int) -> None:
    if task not in TASKS:
        raise ValueError(f"bAbI task must be one of {', '.join(map(str, TASKS))}; got {task!r}")


class _World:
    """Where everyone and everything is, and the sentences that established it (indices into the story)."""

    def __init__(self) -> None:
        self.place: dict[str, str] = {}  # person -> place
        self.moved: dict[str, int] = {}  # person -> their last move
        self.holder: dict[str, str] = {}  # object -> person carrying it
        self.lying: dict[str, tuple[str, int, int]] = {}  # object -> (place, drop sentence, dropper's move before)
        self.got: dict[str, int] = {}  # object -> its last pick-up
        # object -> (the move that carried it to its present place, the place before, the carrier's move there)
        self.entered: dict[str, tuple[int, str, int, int]] = {}
        self.handled: dict[str, dict[str, int]] = {p: {} for p in PEOPLE}  # person -> object -> last get/drop

    def carried(self, person: str) -> list[str]:
        return [o for o in OBJECTS if self.holder.get(o) == person]

    def move(self, i: int, person: str, place: str) -> None:
        for o in self.carried(person):
            self.entered[o] = (i, self.place[person], self.moved[person], self.got[o])
        self.place[person], self.moved[person] = place, i

    def get(self, i: int, person: str, obj: str) -> None:
        self.holder[obj], self.got[obj] = person, i
        self.lying.pop(obj, None)
        self.handled[person][obj] = i

    def drop(self, i: int, person: str, obj: str) -> None:
        del self.holder[obj]
        self.lying[obj] = (self.place[person], i, self.moved[person])
        self.handled[person][obj] = i

    def can_get(self, person: str) -> list[str]:
        """Objects ``person`` can pick up: nobody carries them and they lie here or nowhere known."""
        if person not in self.place:
            return []
        return [
            o
            for o in OBJECTS
            if o not in self.holder and self.lying.get(o, (self.place[person],))[0] == self.place[person]
        ]

    def located(self, obj: str) -> tuple[str, tuple[int, ...]] | None:
        """An object's place and the two facts that tell it (pick-up and carrier's move, or move and drop)."""
        if obj in self.holder:
            p = self.holder[obj]
            return self.place[p], (self.got[obj], self.moved[p])
        if obj in self.lying:
            place, drop, moved = self.lying[obj]
            return place, (moved, drop)
        return None


def _act(rng: np.random.Generator, world: _World, i: int, task: int) -> str:
    """One random event applied to ``world`` (sentence ``i``) and its sentence."""
    person = PEOPLE[rng.integers(len(PEOPLE))]
    kind = "move" if task == 1 else ("move", "get", "drop")[rng.choice(3, p=(0.5, 0.25, 0.25))]
    free, held = world.can_get(person), world.carried(person)
    if kind == "get" and free:
        obj = free[rng.integers(len(free))]
        world.get(i, person, obj)
        return f"{person} {GETS[rng.integers(len(GETS))].format(obj)}."
    if kind == "drop" and held:
        obj = held[rng.integers(len(held))]
        world.drop(i, person, obj)
        return f"{person} {DROPS[rng.integers(len(DROPS))].format(obj)}."
    places = [p for p in PLACES if p != world.place.get(person)]
    place = places[rng.integers(len(places))]
    world.move(i, person, place)
    return f"{person} {MOVES[rng.integers(len(MOVES))]} {place}."


def _ask(rng: np.random.Generator, world: _World, task: int, told: int) -> Question | None:
    """A question about the present world (``told`` sentences so far), or None if none can be asked yet."""
    if task in (1, 6):
        people = [p for p in PEOPLE if p in world.place]
        if not people:
            return None
        p = people[rng.integers(len(people))]
        if task == 1:
            return Question(f"Where is {p}?", world.place[p], (world.moved[p],))
        others = [place for place in PLACES if place != world.place[p]]
        place = world.place[p] if rng.random() < 0.5 else others[rng.integers(len(others))]
        return Question(f"Is {p} in the {place}?", "yes" if place == world.place[p] else "no", (world.moved[p],))
    if task == 7:
        people = [p for p in PEOPLE if world.handled[p]]
        if not people:
            return None
        p = people[rng.integers(len(people))]
        facts = tuple(sorted(world.handled[p].values()))
        return Question(f"How many objects is {p} carrying?", COUNTS[len(world.carried(p))], facts)
    if task == 2:
        known = [o for o in OBJECTS if world.located(o) is not None]
        if not known:
            return None
        o = known[rng.integers(len(known))]
        place, facts = world.located(o)  # type: ignore[misc]
        return Question(f"Where is the {o}?", place, tuple(sorted(facts)))
    recent = [o for o in OBJECTS if o in world.entered and min(world.entered[o][2:]) >= told - WINDOW]
    if not recent:
        return None
    o = recent[rng.integers(len(recent))]
    move, before, carrier_move, got = world.entered[o]
    here = world.located(o)[0]  # type: ignore[index]
    return Question(f"Where was the {o} before the {here}?", before, tuple(sorted((carrier_move, got, move))))


def babi_stories(task: int, questions: int, seed: int | tuple[int, ...] = 0) -> list[Story]:
    """Stories of ``task`` holding ``questions`` questions in all (``QUESTIONS_PER_STORY`` each, the last story
    fewer), deterministic by ``seed`` (a ``numpy`` seed: an int or a tuple of them)."""
    _check_task(task)
    if questions < 0:
        raise ValueError(f"questions must be >= 0; got {questions}")
    rng = np.random.default_rng(seed)
    lo, hi = GAPS[task]
    stories: list[Story] = []
    while questions > 0:
        world, told = _World(), 0
        story: Story = []
        for _ in range(min(QUESTIONS_PER_STORY, questions)):
            gap, question = int(rng.integers(lo, hi + 1)), None
            while question is None:
                for _ in range(gap):
                    story.append(_act(rng, world, told, task))
                    told += 1
                question, gap = _ask(rng, world, task, told), 1
            story.append(question)
            questions -= 1
        stories.append(story)
    return stories


def encode_stories(
    stories: list[Story], vocab: tuple[str, ...], sentence_len: int, memory_size: int = MEMORY_SIZE
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Stories -> ({'story': (n, memory_size, sentence_len), 'question': (n, sentence_len)} int32 word ids,
    answers (n,), supporting facts (n, MAX_FACTS) as memory rows, -1 padded), one row per question; the memory
    holds the latest ``memory_size`` sentences before the question, most recent first."""
    index = {w: i for i, w in enumerate(vocab)}

    def ids(text: str) -> list[int]:
        return [index[w] for w in words(text)]

    memories, asked, answers, facts = [], [], [], []
    for story in stories:
        told: list[list[int]] = []
        for line in story:
            if isinstance(line, str):
                told.append(ids(line))
                continue
            memory = np.zeros((memory_size, sentence_len), np.int32)
            for row, sentence in enumerate(reversed(told[-memory_size:])):
                memory[row, : len(sentence)] = sentence
            question = np.zeros(sentence_len, np.int32)
            question[: len(ids(line.text))] = ids(line.text)
            rows = [len(told) - 1 - f for f in line.facts]
            memories.append(memory)
            asked.append(question)
            answers.append(index[line.answer])
            facts.append([r if r < memory_size else -1 for r in rows] + [-1] * (MAX_FACTS - len(rows)))
    x = {
        "story": np.asarray(memories, np.int32).reshape(-1, memory_size, sentence_len),
        "question": np.asarray(asked, np.int32).reshape(-1, sentence_len),
    }
    return x, np.asarray(answers, np.int32), np.asarray(facts, np.int32).reshape(-1, MAX_FACTS)


def babi_dataset(task: int, size: str = "1k", seed: int = 0, memory_size: int = MEMORY_SIZE) -> BabiDataset:
    """bAbI-style task ``task`` (one of ``TASKS``): ``size`` "1k" or "10k" training questions and 1,000 test
    questions, encoded with the task's vocabulary (see the module docstring); train and test stories come from the
    seeds (seed, task, 0) and (seed, task, 1), so the 1k training set is the first tenth of the 10k one."""
    _check_task(task)
    if size not in SIZES:
        raise ValueError(f"bAbI size must be one of {', '.join(SIZES)}; got {size!r}")
    if memory_size < 1:
        raise ValueError(f"memory_size must be >= 1; got {memory_size}")
    vocab, length = vocabulary(task), sentence_length(task)
    train = encode_stories(babi_stories(task, SIZES[size], (seed, task, 0)), vocab, length, memory_size)
    test = encode_stories(babi_stories(task, TEST_QUESTIONS, (seed, task, 1)), vocab, length, memory_size)
    name = f"{PREFIX}{task}" + ("" if size == "1k" else f":{size}")
    return BabiDataset(
        name,
        train[0],
        train[1],
        test[0],
        test[1],
        len(vocab),
        vocab=vocab,
        task=task,
        train_facts=train[2],
        test_facts=test[2],
    )


def load_babi(name: str, memory_size: int = MEMORY_SIZE) -> BabiDataset:
    """The dataset of a name ``babi:T`` (1k training questions) or ``babi:T:10k``, T one of ``TASKS``."""
    if name not in NAMES:
        raise ValueError(
            f"unknown bAbI dataset {name!r}; use babi:T or babi:T:10k with T in {', '.join(map(str, TASKS))}"
        )
    task, size = NAMES[name]
    return babi_dataset(task, size, memory_size=memory_size)


def decode(ids: np.ndarray, vocab: tuple[str, ...]) -> str:
    """Word ids (padding dropped) -> the words joined by spaces."""
    return " ".join(vocab[int(i)] for i in np.asarray(ids).reshape(-1) if i)
