"""Lesions of residual networks (Veit, Wilber & Belongie 2016): a deleted block is exactly the identity path, i.e. the
residual block with its branch removed, or the remaining layers of a plain network applied by hand; deleting nothing
changes nothing; only the blocks that keep the shape can be deleted; gradient norms per block (``block_norms``)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import models, nn
from jaxnets.models._zoo import conv_unit

SHAPE, CLASSES, WIDTHS = (8, 8, 1), 3, (4, 8, 8)


def trained_like(model: models.Model, seed: int = 0):
    """Parameters and state of ``model``'s shapes as after training (He-scaled weights, BN scales and shifts away
    from 1 and 0, non-trivial running statistics), drawn by numpy without running ``init``."""
    rng = np.random.default_rng(seed)
    params, state = jax.eval_shape(model.init, jax.random.key(0))

    def draw(path, leaf):
        noise = rng.standard_normal(leaf.shape).astype(np.float32)
        if len(leaf.shape) > 1:  # weights
            return noise * np.float32(np.sqrt(2 / np.prod(leaf.shape[:-1])))
        name = path[-1].key
        return np.exp(0.2 * noise) if name in ("scale", "var") else 0.2 * noise

    return jax.tree_util.tree_map_with_path(draw, params), jax.tree_util.tree_map_with_path(draw, state)


def images(n: int = 6) -> jax.Array:
    return jax.random.uniform(jax.random.key(9), (n, *SHAPE))


def test_deleting_a_residual_block_removes_its_branch():
    """In ResNet-14, deleting layer2/block1 = the intact network with that block's last BN scale and shift zero
    (the residual branch's output 0), exactly, in evaluation and in training mode."""
    intact = models.cifar_resnet(14, SHAPE, CLASSES, widths=WIDTHS)
    lesioned = models.cifar_resnet(14, SHAPE, CLASSES, widths=WIDTHS, deleted=["layer2/block1"])
    params, state = trained_like(intact)
    no_branch = copy.deepcopy(params)
    bn = no_branch["layer2"]["block1"]["residual"]["body"]["conv2"]["bn"]
    bn["scale"], bn["bias"] = jnp.zeros_like(bn["scale"]), jnp.zeros_like(bn["bias"])
    x = images()
    for train in (False, True):
        got, _ = lesioned.apply(params, state, x, train=train)
        want, _ = intact.apply(no_branch, state, x, train=train)
        np.testing.assert_array_equal(got, want)
        assert not np.allclose(got, intact.apply(params, state, x, train=train)[0], atol=1e-3)  # it was a lesion


def test_deleting_a_plain_block_applies_the_remaining_layers():
    """In the plain 8-layer network, deleting layer1/block0 = conv1, layer2, layer3, pooling and fc applied by hand
    with the trained parameters of those layers."""
    intact = models.cifar_resnet(8, SHAPE, CLASSES, shortcut=None, widths=WIDTHS)
    lesioned = models.cifar_resnet(8, SHAPE, CLASSES, shortcut=None, widths=WIDTHS, deleted=("layer1/block0",))
    assert intact.name == lesioned.name == "plain8"
    params, state = trained_like(intact)
    by_hand = nn.serial(
        conv_unit(WIDTHS[0], 3, bn=True, name="conv1"),
        nn.serial(models.basic_block(WIDTHS[1], 2, plain=True, name="block0"), name="layer2"),
        nn.serial(models.basic_block(WIDTHS[2], 2, plain=True, name="block0"), name="layer3"),
        nn.global_avg_pool(name="avgpool"),
        nn.dense(CLASSES, name="fc"),
    )
    rest = {k: v for k, v in params.items() if k != "layer1"}
    rest_state = {k: v for k, v in state.items() if k != "layer1"}
    x = images()
    got, new_state = lesioned.apply(params, state, x, train=True)
    want, _ = by_hand.apply(rest, rest_state, x, train=True)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # the deleted block's running statistics are left as they were
    jax.tree.map(np.testing.assert_array_equal, new_state["layer1"], state["layer1"])
    got, _ = lesioned.apply(params, state, x)
    np.testing.assert_allclose(got, by_hand.apply(rest, rest_state, x)[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shortcut", ["A", None])
def test_deleting_no_block_changes_nothing(shortcut):
    intact = models.resnet20(SHAPE, CLASSES, shortcut=shortcut, widths=WIDTHS)
    params, state = trained_like(intact)
    x = images()
    got, _ = models.resnet20(SHAPE, CLASSES, shortcut=shortcut, widths=WIDTHS, deleted=()).apply(params, state, x)
    np.testing.assert_array_equal(got, intact.apply(params, state, x)[0])


def test_which_blocks_can_be_deleted():
    """The blocks that halve the map and double the channels cannot become the identity; the plain twin has the
    same layers (option A shortcuts add no parameters) and the same deletable blocks."""
    kept = (
        "layer1/block0",
        "layer1/block1",
        "layer1/block2",
        "layer2/block1",
        "layer2/block2",
        "layer3/block1",
        "layer3/block2",
    )
    residual, plain = models.resnet20(), models.resnet20(shortcut=None)
    assert models.deletable_blocks(residual) == models.deletable_blocks(plain) == kept
    count = lambda m: sum(np.size(p) for p in jax.tree.leaves(jax.eval_shape(m.init, jax.random.key(0))[0]))  # noqa: E731
    assert count(plain) == count(residual) == 269_722
    for bad in ("layer2/block0", "layer4/block0", "layer1/block3"):
        with pytest.raises(ValueError, match=f"deleted block '{bad}'.*only these can be deleted: layer1/block0"):
            models.resnet20(SHAPE, CLASSES, widths=WIDTHS, deleted=[bad])
    with pytest.raises(ValueError, match="or None"):
        models.resnet20(shortcut="C")


def test_bench_script_on_tiny_data():
    """bench/resnet_lesion.py's study: both networks trained, each evaluated intact and with each deletable block
    deleted, into its table."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import resnet_lesion

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64).astype(np.int32)
    x = (rng.random((64, *SHAPE)) * 0.5 + y[:, None, None, None] * 0.5).astype(np.float32)
    results = resnet_lesion.study(
        x, y, x, y, depth=8, widths=WIDTHS, epochs=1, batch_size=32, ks=(1, 2), draws=2, log=lambda _: None
    )
    assert list(results) == ["residual", "plain"]
    for errors in results.values():
        assert set(errors) == {"none", "layer1/block0", "k=1 random", "seconds"}  # only one block: no k = 2
        assert all(0 <= errors[b] <= 100 for b in ("none", "layer1/block0"))
        assert errors["k=1 random"] == pytest.approx(errors["layer1/block0"])  # every draw deletes that block
    table = resnet_lesion.table(results)
    assert "| layer1/block0 |" in table and "| residual test error % | plain test error % |" in table


def test_deleting_several_residual_blocks_removes_their_branches():
    """Deleting three blocks of ResNet-14 at once = the intact network with each of their residual branches' last BN
    scale and shift zero, exactly."""
    blocks = ["layer1/block0", "layer1/block1", "layer3/block1"]
    intact = models.cifar_resnet(14, SHAPE, CLASSES, widths=WIDTHS)
    lesioned = models.cifar_resnet(14, SHAPE, CLASSES, widths=WIDTHS, deleted=blocks)
    params, state = trained_like(intact, seed=3)
    no_branch = copy.deepcopy(params)
    for block in blocks:
        stage, name = block.split("/")
        bn = no_branch[stage][name]["residual"]["body"]["conv2"]["bn"]
        bn["scale"], bn["bias"] = jnp.zeros_like(bn["scale"]), jnp.zeros_like(bn["bias"])
    x = images()
    for train in (False, True):
        np.testing.assert_array_equal(
            lesioned.apply(params, state, x, train=train)[0], intact.apply(no_branch, state, x, train=train)[0]
        )


def test_block_norms_combine_the_layers_of_each_block():
    """By hand: layer norms 3 and 4 make a block norm of 5; on a tiny ResNet at initialisation, the block norms of
    ``analysis.layer_gradient_norms`` equal the L2 norm of each block's whole gradient subtree."""
    from jaxnets import analysis
    from jaxnets.models import block_norms

    by_hand = {"conv1/conv": 3.0, "conv1/bn": 4.0, "layer1/block0/residual/body/conv1/conv": 1.0, "fc": 2.0}
    assert block_norms(by_hand) == {"conv1": 5.0, "layer1/block0": 1.0, "fc": 2.0}
    model = models.cifar_resnet(8, SHAPE, CLASSES, widths=WIDTHS)
    params, state = trained_like(model, seed=1)
    x, y = images(), jnp.arange(6) % CLASSES
    got = block_norms(analysis.layer_gradient_norms(model, params, state, x, y, train=True))
    assert set(got) == {"conv1", "layer1/block0", "layer2/block0", "layer3/block0", "fc"}

    def loss(p):
        return jnp.mean(model.metrics(p, state, x, y, train=True)[0]["loss"])

    grads = jax.jit(jax.grad(loss))(params)
    for block, norm in got.items():
        subtree = grads[block.split("/")[0]] if "/" in block else grads[block]
        subtree = subtree[block.split("/")[1]] if "/" in block else subtree
        np.testing.assert_allclose(norm, float(analysis.global_norm(subtree)), rtol=1e-4)
        assert norm > 0


def test_depth_table_lists_every_block_of_the_deepest_network():
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import resnet_lesion

    shallow = {"conv1": 1.0, "layer1/block0": 2.0, "fc": 4.0}
    deep = {"conv1": 1.0, "layer1/block0": 1.0, "layer1/block1": 0.5, "fc": 4.0}
    results = {
        "plain8": {"gradient_norms": shallow, "train_loss": [0.5, 0.25], "test_error": [9.0, 8.0]},
        "plain14": {"gradient_norms": deep, "train_loss": [0.5, 0.3], "test_error": [9.5, 8.5]},
    }
    lines = resnet_lesion.depth_table(results).splitlines()
    assert [line.split("|")[1].strip() for line in lines[2:6]] == [f"grad norm `{b}`" for b in deep]
    assert lines[4] == "| grad norm `layer1/block1` |  | 0.5 |"
    assert lines[6] == "| first / last block | 1 | 2 |"  # layer1/block0 over the last block
