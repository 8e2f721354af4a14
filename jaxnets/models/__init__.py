"""Model builders and a registry of them by name; every name is flat here (``models.resnet20``,
``models.main_params``), the modules of each family are private.

A new model family is a private module ``_family.py`` here, its builders exported below, and a ``REGISTRY`` entry.
Builders take ``input_shape`` and ``num_classes`` (sizes below 1 are a ``ValueError`` naming the argument, see
``check_sizes``); convolution layers follow ``nn.conv_strategy``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from jaxnets import _names, nn
from jaxnets.models._alexnet import alexnet
from jaxnets.models._autoencoders import (
    CORRUPTIONS,
    ELBO,
    Reconstruction,
    autoencoder,
    conv_autoencoder,
    conv_dae,
    corrupt,
    dae,
    dae_layer,
    reconstruct,
    reconstructs,
    reparameterise,
    vae,
    vae_encode,
    vae_sample,
)
from jaxnets.models._avb import AdversarialVB, avb, avb_log_likelihood, avb_parts
from jaxnets.models._avb import critic_loss as avb_critic_loss
from jaxnets.models._base import (
    InputShapes,
    Model,
    Objective,
    check_sizes,
    example_shape,
    input_shapes,
    num_examples,
    shape_record,
    zeros_like_inputs,
)
from jaxnets.models._boltzmann import (
    ContrastiveDivergence,
    cd_surrogate,
    cd_update,
    gibbs_chain,
    gibbs_step,
    hidden_probs,
    rbm,
    rbm_layer,
    visible_logits,
    with_initial_params,
)
from jaxnets.models._cam import CLASS_MAPS, box_from_map, cam_cnn, class_activation_map, grad_cam, localisation_accuracy
from jaxnets.models._captioning import (
    CaptionLoss,
    beam_search,
    bleu,
    caption_attention,
    greedy_decode,
    show_attend_tell,
    show_tell,
    soft_attention,
    teacher_forced,
)
from jaxnets.models._classic import logistic_regression, mlp, perceptron, perceptron_rule
from jaxnets.models._cnn import small_cnn
from jaxnets.models._dann import DomainAdversarial, dann, dann_lambda, dann_learning_rate, domain_parts
from jaxnets.models._detection import (
    Detections,
    YoloLoss,
    ap_counts,
    average_precision,
    box_iou,
    detect,
    detection_summary,
    match_detections,
    mean_average_precision,
    nms,
    yolo,
)
from jaxnets.models._gan import (
    Adversarial,
    adversarial_parts,
    class_histogram,
    classifier_features,
    dcgan,
    feature_classifier,
    frechet_distance,
    gan,
    gan_sample,
)
from jaxnets.models._googlenet import INCEPTION, AuxObjective, googlenet, googlenet_aux, inception, main_params
from jaxnets.models._handwriting import handwriting, sample_strokes, split_strokes
from jaxnets.models._iwae import vae_log_likelihood, vae_log_weights
from jaxnets.models._lenet import C3_TABLE, lenet5, lenet5_modern, rbf_output
from jaxnets.models._mdn import (
    bivariate_nll,
    heteroscedastic,
    mdn,
    mdn_head,
    mixture_density,
    mixture_moments,
    sample_bivariate,
    split_mixture,
)
from jaxnets.models._memn2n import memn2n, memory_attention, position_encoding
from jaxnets.models._metric import (
    conv4,
    embedding_mlp,
    per_item,
    protonet,
    prototype_logits,
    recall_at_1,
    siamese,
    triplet,
)
from jaxnets.models._recurrent import (
    char_lm,
    gradient_norms_over_time,
    gru_classifier,
    lstm_classifier,
    next_token_objective,
    rnn_classifier,
    sequence_classifier,
)
from jaxnets.models._resnet import (
    basic_block,
    block_norms,
    bottleneck_block,
    cifar_resnet,
    deletable_blocks,
    resnet,
    resnet18,
    resnet20,
    resnet34,
    resnet50,
)
from jaxnets.models._segmentation import (
    bilinear_init,
    class_counts,
    fcn,
    mean_iou,
    pixel_cross_entropy,
    segmentation_summary,
    unet,
)
from jaxnets.models._style import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    random_filter_features,
    random_filters,
    style_targets,
    synthesise_image,
    vgg19_features,
)
from jaxnets.models._superres import SuperResolution, espcn, psnr, srcnn, ssim, upscale
from jaxnets.models._torchvision import (
    TORCHVISION_ARCHITECTURES,
    from_torchvision,
    pretrained_torchvision,
    to_torchvision,
)
from jaxnets.models._vgg import vgg, vgg11, vgg13, vgg16, vgg19
from jaxnets.models._vqa import (
    cnn_mlp,
    encode_question,
    object_pairs,
    question_type_summary,
    relation_module,
    relation_network,
    vqa_lstm_cnn,
    with_coordinates,
)
from jaxnets.models._word2vec import (
    Word2Vec,
    analogy,
    analogy_accuracy,
    corpus_arrays,
    nearest_neighbours,
    negative_sampling_loss,
    pca_projection,
    similarity_spearman,
    spearman,
    word2vec_update,
)

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
    "char_lstm": (
        char_lm,
        "character-level language model (Karpathy's char-rnn 2015): 2 LSTM layers of 256; --dataset text:FILE",
    ),
    "mdn": (mdn, "mixture density network (Bishop 1994): tanh MLP 20, 3 Gaussians, NLL on real-valued targets"),
    "heteroscedastic": (heteroscedastic, "Gaussian regressor with a predicted variance (one-component MDN), NLL"),
    "handwriting": (
        handwriting,
        "handwriting-style strokes (Graves 2013): 2 LSTMs of 256, 20 bivariate Gaussians + pen-up; --dataset hershey",
    ),
    "triplet": (triplet, "embedding net, L2-normalised, batch-hard triplet loss (Schroff 2015; Hermans 2017)"),
    "gan": (gan, "GAN (Goodfellow et al. 2014): MLP generator 100-256-512-784 (tanh), MLP discriminator, two players"),
    "dcgan": (dcgan, "DCGAN (Radford et al. 2016): transposed-conv generator with batch norm, strided-conv critic"),
    "avb": (avb, "adversarial variational Bayes (Mescheder et al. 2017): implicit encoder, critic T(x, z) for the KL"),
    "dann": (dann, "domain-adversarial network (Ganin et al. 2016): features, label and domain heads, reversal layer"),
    "srcnn": (srcnn, "SRCNN 9-1-5, 64/32 filters (Dong et al. 2014): convs on the bicubic enlargement (scale=), MSE"),
    "espcn": (espcn, "ESPCN (Shi et al. 2016): convs at low resolution, sub-pixel shuffle to x3 (scale=), MSE"),
    "cam_cnn": (cam_cnn, "CAM classifier (Zhou et al. 2016): convs -> global average pooling -> dense; class maps"),
    "yolo": (yolo, "YOLO v1-style grid detector (Redmon et al. 2016): 8x8 cells, 2 boxes each, its loss, NMS"),
    "fcn": (fcn, "FCN-8s (Long et al. 2015), scaled: VGG-style blocks, scores at strides 8/16/32 fused; per-pixel CE"),
    "vqa_lstm_cnn": (
        vqa_lstm_cnn,
        "VQA baseline LSTM Q + norm I (Antol et al. 2015): CNN x LSTM, product fusion, MLP; --dataset easy_vqa",
    ),
    "relation_network": (
        relation_network,
        "relation network (Santoro et al. 2017): f(sum_ij g(o_i, o_j, q)) on CNN cells; --dataset sort_of_clevr",
    ),
    "cnn_mlp": (cnn_mlp, "Sort-of-CLEVR baseline (Santoro et al. 2017): CNN feature map + question -> MLP"),
    "show_tell": (
        show_tell,
        "Show and Tell (Vinyals et al. 2015): CNN image embedding as the LSTM's first input; --dataset shapes_captions",
    ),
    "show_attend_tell": (
        show_attend_tell,
        "Show, Attend and Tell (Xu et al. 2015): soft attention over 8x8 CNN regions, gate, deep output, doubly "
        "stochastic regulariser; --dataset shapes_captions",
    ),
    "memn2n": (
        memn2n,
        "end-to-end memory network (Sukhbaatar et al. 2015): attention hops over sentence memories; --dataset babi:T",
    ),
    "unet": (unet, "U-Net (Ronneberger et al. 2015), scaled: 4 levels of 16-128 maps, crop-concat skips; per-pixel CE"),
}


def build(
    name: str,
    input_shape: tuple[int, ...] | Mapping[str, tuple[int, ...]] | None = None,
    num_classes: int | None = None,
    *,
    strategy: str | None = None,
    **kwargs,
) -> Model:
    """Build a registered model by name, for a given per-example input shape (several inputs: a dict of shapes by
    name) and number of classes; ``kwargs`` are
    the builder's options. ``strategy`` ('auto', 'xla', 'im2col') builds every convolution of the model with that
    implementation (``nn.conv_strategy``); by default each builder's own choice stands."""
    try:
        builder, _ = REGISTRY[name]
    except KeyError:
        raise ValueError(_names.unknown("model", name, sorted(REGISTRY))) from None
    check_sizes(name, num_classes=num_classes)
    if input_shape is not None:
        kwargs["input_shape"] = input_shapes(input_shape)
        shapes = kwargs["input_shape"].values() if isinstance(input_shape, Mapping) else [kwargs["input_shape"]]
        for shape in shapes:
            check_sizes(name, input_shape=shape)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if strategy is None:
        return builder(**kwargs)
    with nn.conv_strategy(strategy):
        return builder(**kwargs)


# One sorted list of every exported name (tests/test_public_api.py checks it): add new names in place, no `+=`.
__all__ = [
    "Adversarial",
    "AdversarialVB",
    "AuxObjective",
    "C3_TABLE",
    "CLASS_MAPS",
    "CONTENT_LAYERS",
    "CORRUPTIONS",
    "CaptionLoss",
    "ContrastiveDivergence",
    "Detections",
    "DomainAdversarial",
    "ELBO",
    "INCEPTION",
    "InputShapes",
    "Model",
    "Objective",
    "REGISTRY",
    "Reconstruction",
    "STYLE_LAYERS",
    "SuperResolution",
    "TORCHVISION_ARCHITECTURES",
    "Word2Vec",
    "YoloLoss",
    "adversarial_parts",
    "alexnet",
    "analogy",
    "analogy_accuracy",
    "ap_counts",
    "autoencoder",
    "avb",
    "avb_critic_loss",
    "avb_log_likelihood",
    "avb_parts",
    "average_precision",
    "basic_block",
    "beam_search",
    "bilinear_init",
    "bivariate_nll",
    "bleu",
    "block_norms",
    "bottleneck_block",
    "box_from_map",
    "box_iou",
    "build",
    "cam_cnn",
    "caption_attention",
    "cd_surrogate",
    "cd_update",
    "char_lm",
    "check_sizes",
    "cifar_resnet",
    "class_activation_map",
    "class_counts",
    "class_histogram",
    "classifier_features",
    "cnn_mlp",
    "conv4",
    "conv_autoencoder",
    "conv_dae",
    "corpus_arrays",
    "corrupt",
    "dae",
    "dae_layer",
    "dann",
    "dann_lambda",
    "dann_learning_rate",
    "dcgan",
    "deletable_blocks",
    "detect",
    "detection_summary",
    "domain_parts",
    "embedding_mlp",
    "encode_question",
    "espcn",
    "example_shape",
    "fcn",
    "feature_classifier",
    "frechet_distance",
    "from_torchvision",
    "gan",
    "gan_sample",
    "gibbs_chain",
    "gibbs_step",
    "googlenet",
    "googlenet_aux",
    "grad_cam",
    "gradient_norms_over_time",
    "greedy_decode",
    "gru_classifier",
    "handwriting",
    "heteroscedastic",
    "hidden_probs",
    "inception",
    "input_shapes",
    "lenet5",
    "lenet5_modern",
    "localisation_accuracy",
    "logistic_regression",
    "lstm_classifier",
    "main_params",
    "match_detections",
    "mdn",
    "mdn_head",
    "mean_average_precision",
    "mean_iou",
    "memn2n",
    "memory_attention",
    "mixture_density",
    "mixture_moments",
    "mlp",
    "nearest_neighbours",
    "negative_sampling_loss",
    "next_token_objective",
    "nms",
    "num_examples",
    "object_pairs",
    "pca_projection",
    "per_item",
    "perceptron",
    "perceptron_rule",
    "pixel_cross_entropy",
    "position_encoding",
    "pretrained_torchvision",
    "protonet",
    "prototype_logits",
    "psnr",
    "question_type_summary",
    "random_filter_features",
    "random_filters",
    "rbf_output",
    "rbm",
    "rbm_layer",
    "recall_at_1",
    "reconstruct",
    "reconstructs",
    "relation_module",
    "relation_network",
    "reparameterise",
    "resnet",
    "resnet18",
    "resnet20",
    "resnet34",
    "resnet50",
    "rnn_classifier",
    "sample_bivariate",
    "sample_strokes",
    "segmentation_summary",
    "sequence_classifier",
    "shape_record",
    "show_attend_tell",
    "show_tell",
    "siamese",
    "similarity_spearman",
    "small_cnn",
    "soft_attention",
    "spearman",
    "split_mixture",
    "split_strokes",
    "srcnn",
    "ssim",
    "style_targets",
    "synthesise_image",
    "teacher_forced",
    "to_torchvision",
    "triplet",
    "unet",
    "upscale",
    "vae",
    "vae_encode",
    "vae_log_likelihood",
    "vae_log_weights",
    "vae_sample",
    "vgg",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "vgg19_features",
    "visible_logits",
    "vqa_lstm_cnn",
    "with_coordinates",
    "with_initial_params",
    "word2vec_update",
    "yolo",
    "zeros_like_inputs",
]
