"""Model builders, one module per family, and a registry of them by name."""

from __future__ import annotations

from collections.abc import Callable

from jaxnets._names import unknown
from jaxnets.models.alexnet import alexnet
from jaxnets.models.autoencoders import autoencoder, conv_autoencoder, conv_dae, dae, vae
from jaxnets.models.base import Model
from jaxnets.models.boltzmann import pretrain_stack, rbm, with_initial_params
from jaxnets.models.classic import logistic_regression, mlp, perceptron, perceptron_rule
from jaxnets.models.cnn import small_cnn
from jaxnets.models.googlenet import googlenet, googlenet_aux, inception
from jaxnets.models.lenet import C3_TABLE, lenet5, lenet5_modern
from jaxnets.models.recurrent import char_lm, gru_classifier, lstm_classifier, rnn_classifier, sequence_classifier
from jaxnets.models.resnet import cifar_resnet, resnet, resnet18, resnet20, resnet34, resnet50
from jaxnets.models.vgg import vgg, vgg11, vgg13, vgg16, vgg19

# name -> (builder(input_shape=..., num_classes=...) -> Model, one-line description)
REGISTRY: dict[str, tuple[Callable[..., Model], str]] = {
    "perceptron": (perceptron, "Rosenblatt's perceptron: threshold units, trained by the perceptron rule"),
    "logistic": (logistic_regression, "logistic / softmax regression: one affine map"),
    "mlp": (mlp, "multilayer perceptron 300-100 with ReLU (LeCun et al. 1998's 784-300-100-10 on MNIST)"),
    "small_cnn": (small_cnn, "conv3x3(64) -> ReLU -> maxpool 2 -> dense"),
    "lenet5": (lenet5, "LeNet-5 as published in 1998: 32x32 input, C3 partial table, scaled tanh, RBF output"),
    "lenet5_modern": (lenet5_modern, "LeNet-5 with ReLU, max-pooling, full C3 and a softmax head"),
    "autoencoder": (autoencoder, "deep autoencoder 784-1000-500-250-30 (Hinton & Salakhutdinov 2006), ReLU, BCE"),
    "dae": (dae, "denoising autoencoder (Vincent et al. 2008): autoencoder on 25%-masked inputs"),
    "conv_autoencoder": (conv_autoencoder, "convolutional autoencoder: stride-2 convs to a 32-d code, upsample + conv"),
    "conv_dae": (conv_dae, "denoising convolutional autoencoder: conv_autoencoder on 25%-masked inputs"),
    "vae": (vae, "variational autoencoder (Kingma & Welling 2013): 500 hidden, 20-d Gaussian latent, -ELBO"),
    "rbm": (rbm, "restricted Boltzmann machine, 500 binary hidden units, CD-1 (Hinton 2002)"),
    "alexnet": (alexnet, "AlexNet (Krizhevsky et al. 2012), single tower, torchvision layout; small-input variant"),
    "vgg11": (vgg11, "VGG-11, configuration A (Simonyan & Zisserman 2014); batch_norm option"),
    "vgg13": (vgg13, "VGG-13, configuration B (Simonyan & Zisserman 2014); batch_norm option"),
    "vgg16": (vgg16, "VGG-16, configuration D (Simonyan & Zisserman 2014); batch_norm option"),
    "vgg19": (vgg19, "VGG-19, configuration E (Simonyan & Zisserman 2014); batch_norm option"),
    "googlenet": (googlenet, "GoogLeNet / Inception v1 (Szegedy et al. 2014); torchvision or paper layout"),
    "resnet18": (resnet18, "ResNet-18, basic blocks (He et al. 2015), batch norm, torchvision layout"),
    "resnet34": (resnet34, "ResNet-34, basic blocks (He et al. 2015), batch norm, torchvision layout"),
    "resnet50": (resnet50, "ResNet-50, bottleneck blocks (He et al. 2015), batch norm, torchvision layout"),
    "resnet20": (resnet20, "CIFAR ResNet-20 (He et al. 2015, section 4.2): 16/32/64 maps, option A shortcuts"),
    "rnn": (rnn_classifier, "Elman RNN (1990), tanh, 128 units, reading an image row by row (28 steps on MNIST)"),
    "lstm": (lstm_classifier, "LSTM (Hochreiter & Schmidhuber 1997; forget gate, Gers 2000), 128 units, row by row"),
    "gru": (gru_classifier, "GRU (Cho et al. 2014), 128 units, reading an image row by row"),
    "char_lstm": (char_lm, "character-level language model (Karpathy's char-rnn 2015): 2 LSTM layers of 256; "
                  "--dataset text:FILE"),
}


def build(name: str, input_shape: tuple[int, ...] | None = None, num_classes: int | None = None, **kwargs) -> Model:
    """Build a registered model by name, for a given per-example input shape and number of classes."""
    try:
        builder, _ = REGISTRY[name]
    except KeyError:
        raise ValueError(unknown("model", name, sorted(REGISTRY))) from None
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return builder(**kwargs)


__all__ = ["C3_TABLE", "REGISTRY", "Model", "autoencoder", "conv_autoencoder", "conv_dae", "dae", "pretrain_stack",
           "rbm", "vae", "with_initial_params", "alexnet", "build", "cifar_resnet", "googlenet", "googlenet_aux",
           "inception", "lenet5", "lenet5_modern", "logistic_regression", "mlp", "perceptron", "perceptron_rule",
           "resnet", "resnet18", "resnet20", "resnet34", "resnet50", "small_cnn", "vgg", "vgg11", "vgg13", "vgg16",
           "vgg19"]
__all__ += ["char_lm", "gru_classifier", "lstm_classifier", "rnn_classifier", "sequence_classifier"]
