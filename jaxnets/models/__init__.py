"""Model builders, one module per family, and a registry of them by name."""

from __future__ import annotations

from collections.abc import Callable

from jaxnets.models.base import Model
from jaxnets.models.classic import logistic_regression, mlp, perceptron, perceptron_rule
from jaxnets.models.cnn import small_cnn
from jaxnets.models.lenet import C3_TABLE, lenet5, lenet5_modern

# name -> (builder(input_shape=..., num_classes=...) -> Model, one-line description)
REGISTRY: dict[str, tuple[Callable[..., Model], str]] = {
    "perceptron": (perceptron, "Rosenblatt's perceptron: threshold units, trained by the perceptron rule"),
    "logistic": (logistic_regression, "logistic / softmax regression: one affine map"),
    "mlp": (mlp, "multilayer perceptron 300-100 with ReLU (LeCun et al. 1998's 784-300-100-10 on MNIST)"),
    "small_cnn": (small_cnn, "conv3x3(64) -> ReLU -> maxpool 2 -> dense"),
    "lenet5": (lenet5, "LeNet-5 as published in 1998: 32x32 input, C3 partial table, scaled tanh, RBF output"),
    "lenet5_modern": (lenet5_modern, "LeNet-5 with ReLU, max-pooling, full C3 and a softmax head"),
}


def build(name: str, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None, **kwargs) -> Model:
    """Build a registered model by name, for a given per-example input shape and number of classes."""
    try:
        builder, _ = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(REGISTRY)}") from None
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)


__all__ = ["C3_TABLE", "REGISTRY", "Model", "build", "lenet5", "lenet5_modern", "logistic_regression", "mlp",
           "perceptron", "perceptron_rule", "small_cnn"]
