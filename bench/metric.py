"""Metric and few-shot learning on MNIST, measured: Keras' mnist_siamese example replicated (pair-verification
accuracy, recall@1), a batch-hard triplet net (recall@1), a 2-D contrastive embedding to plot, and few-shot
learning on held-out digits (train on 0-4, test 5-way on 5-9): prototypical networks and Siamese one-shot; the same
on the many-class glyph set (``data.hershey_glyphs``, Omniglot's stand-in; needs no MNIST).

    python bench/metric.py --out runs/metric         # all parts; --only siamese|triplet|embedding2d|fewshot|glyphs
    python bench/metric.py --quick --out /tmp/metric # a smoke run, not the figures

Prints one JSON line per part and appends it to --out/metrics.jsonl; writes embedding2d.png.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnets import data, models, train, viz

MNIST_DIR = os.environ.get("JAXNETS_MANUAL_DIR", str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))


def _fit(model, x, y, epochs, batch_size, optimizer, seed=0):
    return train.fit(
        model,
        x,
        y,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=False,
        log=lambda s: None,
    ).state


def _pairs(x, y, seed, limit=None):
    idx, same = data.pair_indices(y, pairs_per_class=limit, seed=seed)
    return x[idx], same


def siamese(raw, out: Path, quick: bool) -> dict:
    """Keras' mnist_siamese: the 128-128-128 ReLU MLP with dropout 0.1, contrastive loss (margin 1), RMSprop 1e-3,
    20 epochs, batch 128, pairs made as the example makes them; test pairs from the test set; 'same' iff d < 0.5."""
    epochs = 1 if quick else 20
    x, same = _pairs(raw.train_x, raw.train_y, 0, 300 if quick else None)
    xt, same_t = _pairs(raw.test_x, raw.test_y, 1)
    model = models.siamese((28, 28, 1))
    s = _fit(model, x, same, epochs, 128, optax.rmsprop(1e-3))
    test = train.evaluate(model, s.params, s.model_state, xt, same_t)
    trained = train.evaluate(model, s.params, s.model_state, x, same)
    emb = _tower(model, s, raw.test_x)
    return {
        "part": "siamese",
        "epochs": epochs,
        "train_pairs": len(same),
        "test_pairs": len(same_t),
        "train_pair_accuracy": round(float(trained["accuracy"]), 4),
        "test_pair_accuracy": round(float(test["accuracy"]), 4),
        "keras_reported_test_accuracy": 0.972,
        "test_recall_at_1": round(models.recall_at_1(emb, raw.test_y), 4),
    }


def _tower(model, state, x, batch=2000):
    """Embeddings (n, d) of single images by a Siamese net's tower (per_item's layer on pairs of the same image)."""
    out = []
    for i in range(0, len(x), batch):
        pairs = np.repeat(x[i : i + batch, None], 2, axis=1)
        out.append(np.asarray(model.apply(state.params, state.model_state, jnp.asarray(pairs))[0][:, 0]))
    return np.concatenate(out)


def triplet(raw, out: Path, quick: bool) -> dict:
    """Batch-hard triplet net: the same MLP tower to 64-d (linear last layer), L2-normalised, Euclidean distances,
    margin 0.2, Adam 1e-4, batch 128."""
    epochs = 1 if quick else 10
    n = 5000 if quick else len(raw.train_x)
    model = models.triplet((28, 28, 1), dim=64, margin=0.2)
    x = raw.train_x[:n].astype(np.float32) / 255
    s = _fit(model, x, raw.train_y[:n], epochs, 128, optax.adam(1e-4))
    xt = raw.test_x.astype(np.float32) / 255
    emb = np.concatenate(
        [
            np.asarray(model.apply(s.params, s.model_state, jnp.asarray(xt[i : i + 2000]))[0])
            for i in range(0, len(xt), 2000)
        ]
    )
    return {
        "part": "triplet",
        "epochs": epochs,
        "train_examples": n,
        "test_recall_at_1": round(models.recall_at_1(emb, raw.test_y), 4),
    }


def embedding2d(raw, out: Path, quick: bool) -> dict:
    """A 2-D contrastive embedding (Hadsell et al. 2006's picture): the tower's last layer linear and 2-wide."""
    epochs = 1 if quick else 10
    x, same = _pairs(raw.train_x, raw.train_y, 0, 300 if quick else None)
    model = models.siamese((28, 28, 1), embedding=models.embedding_mlp(2, final_relu=False))
    s = _fit(model, x, same, epochs, 128, optax.adam(1e-3))
    emb = _tower(model, s, raw.test_x)
    viz.plot_embedding(out / "embedding2d.png", emb, raw.test_y, title="MNIST test digits, 2-D contrastive embedding")
    return {"part": "embedding2d", "epochs": epochs, "test_recall_at_1": round(models.recall_at_1(emb, raw.test_y), 4)}


def _episodes(x, y, classes, n_way, k_shot, n_query, count, seed):
    idx, _ = data.episode_indices(y, classes, n_way, k_shot, n_query, count, seed)
    return x[idx], np.zeros(count, np.int32)


def fewshot(raw, out: Path, quick: bool, episodes: int = 2000, pair_epochs: int = 20) -> dict:
    """Prototypical net (conv-4, 64 filters) trained on 5-way 5-shot episodes (15 queries) of digits 0-4, Adam 1e-3;
    a Siamese MLP (the Keras tower) trained on pairs of digits 0-4. Both tested on 1,000 5-way episodes of 5-9
    (15 queries per class), 1-shot and 5-shot: never a test digit in training. ``episodes`` protonet training
    episodes (one epoch), ``pair_epochs`` Siamese epochs."""
    train_classes, test_classes = range(5), range(5, 10)
    episodes = 40 if quick else episodes
    x, y = raw.train_x, raw.train_y
    xe, ye = _episodes(x, y, train_classes, 5, 5, 15, episodes, 0)
    proto = models.protonet((28, 28, 1), n_way=5, k_shot=5, n_query=15)
    s = _fit(proto, xe, ye, 1, 1, optax.adam(1e-3))
    record = {"part": "fewshot", "protonet_train_episodes": episodes}
    test_episodes = 100 if quick else 1000
    seen = np.isin(y, list(train_classes))
    xp, same = _pairs(x[seen], y[seen], 0, 200 if quick else None)
    sia = models.siamese((28, 28, 1))
    s_sia = _fit(sia, xp, same, 1 if quick else pair_epochs, 128, optax.rmsprop(1e-3))
    record.update(siamese_train_pairs=len(same), siamese_epochs=1 if quick else pair_epochs)
    for k in (1, 5):
        xq, yq = _episodes(raw.test_x, raw.test_y, test_classes, 5, k, 15, test_episodes, 10 + k)
        net = models.protonet((28, 28, 1), n_way=5, k_shot=k, n_query=15)
        acc = train.evaluate(net, s.params, s.model_state, xq, yq, batch_size=50)["accuracy"]
        record[f"protonet_5way_{k}shot"] = round(float(acc), 4)
        nearest = models.protonet((28, 28, 1), n_way=5, k_shot=k, n_query=15, embedding=models.embedding_mlp())
        acc = train.evaluate(nearest, s_sia.params, s_sia.model_state, xq, yq, batch_size=50)["accuracy"]
        record[f"siamese_5way_{k}shot"] = round(float(acc), 4)
    record.update(test_episodes=test_episodes, snell_omniglot_5way_1shot=0.988, snell_omniglot_5way_5shot=0.997)
    return record


def _embed(params, state, x, batch=1000) -> np.ndarray:
    """conv-4 embeddings (n, 64) of uint8 images with a protonet's or Siamese net's parameters (per-image: batch
    norm uses its running statistics, so episodes can be cut from these rows)."""
    net = models.conv4()
    f = jax.jit(lambda x: net.apply(params, state, x.astype(jnp.float32) / 255.0)[0])
    return np.concatenate([np.asarray(f(jnp.asarray(x[i : i + batch]))) for i in range(0, len(x), batch)])


def _episode_accuracy(emb, y, k, episodes, seed, n_way=5, n_query=15) -> float:
    """Mean query accuracy of nearest-prototype classification over ``episodes`` n-way k-shot episodes of ``y``'s
    classes, cut from precomputed embeddings."""
    idx, _ = data.episode_indices(y, np.unique(y), n_way, k, n_query, episodes, seed)
    logits, labels = models.prototype_logits(jnp.asarray(emb[idx]), n_way, k)
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == labels))


def glyphs(
    raw, out: Path, quick: bool, episodes: int = 500, scripts: bool = False, train_way: int = 20, pairs_per_class=10
) -> dict:
    """Omniglot-style one-shot learning on ``data.hershey_glyphs()`` (1,182 glyph classes of the 32 Hershey fonts,
    20 jittered drawings each; 886 train / 296 held-out classes by a seeded permutation, or with ``scripts`` 911 /
    271 with whole scripts held out, ``data.glyphs.SCRIPT_SPLIT``). A conv-4 prototypical net trained on ``episodes``
    ``train_way``-way 5-shot episodes (5 queries per class; Snell et al.: 60-way, 5 queries, many more episodes),
    Adam 1e-3; a Siamese net with the same conv-4 tower (Koch et al. 2015 used a deeper conv net) on
    ``pairs_per_class`` same + as many different pairs per train class, contrastive loss, Adam 1e-3, one epoch. Both
    tested on 1,000 5-way 1-shot and 5-shot episodes (15 queries per class) of the held-out classes."""
    del raw
    g = data.hershey_glyphs(drawings=20, seed=0, test_fonts=data.glyphs.SCRIPT_SPLIT if scripts else ())
    episodes, test_episodes = (20, 100) if quick else (episodes, 1000)
    xe, ye = _episodes(g.train_x, g.train_y, np.unique(g.train_y), train_way, 5, 5, episodes, 0)
    proto = models.protonet((28, 28, 1), n_way=train_way, k_shot=5, n_query=5)
    s = _fit(proto, xe, ye, 1, 1, optax.adam(1e-3))
    xp, same = _pairs(g.train_x, g.train_y, 0, 2 if quick else pairs_per_class)
    sia = models.siamese((28, 28, 1), embedding=models.conv4())
    s_sia = _fit(sia, xp, same, 1, 32, optax.adam(1e-3))
    record = {
        "part": "glyphs",
        "split": "scripts" if scripts else "classes",
        "classes_train_test": [len(np.unique(g.train_y)), len(np.unique(g.test_y))],
        "drawings": 20,
        "protonet_train": f"{episodes} episodes {train_way}-way 5-shot 5-query",
        "siamese_train_pairs": len(same),
    }
    for name, state in (("protonet", s), ("siamese", s_sia)):
        emb = _embed(state.params, state.model_state, g.test_x)
        for k in (1, 5):
            record[f"{name}_5way_{k}shot"] = round(_episode_accuracy(emb, g.test_y, k, test_episodes, 10 + k), 4)
        record[f"{name}_test_recall_at_1"] = round(models.recall_at_1(emb, g.test_y), 4)
    record.update(test_episodes=test_episodes, snell_omniglot_5way_1shot=0.988, snell_omniglot_5way_5shot=0.997)
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/metric")
    p.add_argument("--only", choices=("siamese", "triplet", "embedding2d", "fewshot", "glyphs"), action="append")
    p.add_argument("--mnist", default=MNIST_DIR, help="directory of the MNIST files")
    p.add_argument("--quick", action="store_true", help="a few steps: a smoke run, not the figures")
    p.add_argument("--episodes", type=int, default=2000, help="fewshot: protonet training episodes")
    p.add_argument("--pair-epochs", type=int, default=20, help="fewshot: Siamese epochs on pairs of digits 0-4")
    p.add_argument("--glyph-episodes", type=int, default=500, help="glyphs: protonet training episodes (20-way)")
    p.add_argument("--glyph-scripts", action="store_true", help="glyphs: hold out whole scripts, not random classes")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or ["siamese", "triplet", "embedding2d", "fewshot", "glyphs"]
    # uint8 images: the pair/episode nets scale them to [0, 1]; the glyph part makes its own
    raw = data.load_raw("mnist", manual_dir=args.mnist) if set(names) - {"glyphs"} else None
    parts = {
        "siamese": siamese,
        "triplet": triplet,
        "embedding2d": embedding2d,
        "fewshot": lambda *a: fewshot(*a, episodes=args.episodes, pair_epochs=args.pair_epochs),
        "glyphs": lambda *a: glyphs(*a, episodes=args.glyph_episodes, scripts=args.glyph_scripts),
    }
    for name in names:
        record = {**parts[name](raw, out, args.quick), "load_average": round(os.getloadavg()[0], 1)}
        print(json.dumps(record), flush=True)
        train.append_metrics(out / "metrics.jsonl", record)


if __name__ == "__main__":
    main()
