"""Data: embedded toy sets, TFDS datasets read into numpy (the classic image sets without TensorFlow; offline from a
manual dir), on-device batching."""

from jaxnets.data._augment import (
    AUGMENTATIONS,
    Augment,
    affine,
    augmentation,
    elastic_distortion,
    random_affine,
    random_shift,
    resample,
)
from jaxnets.data.babi import BabiDataset, babi_dataset, babi_stories, load_babi
from jaxnets.data.base import MANUAL_DIR_ENV, DataUnavailable
from jaxnets.data.batching import epoch_batches, padded_batches, steps_per_epoch
from jaxnets.data.canvas import SUPERRES_DATASETS, CanvasDataset, Canvases, load_canvas, mnist_canvases
from jaxnets.data.captions import (
    CaptionDataset,
    ShapeScenes,
    decode_caption,
    draw_scenes,
    encode_caption,
    random_scenes,
    scene_captions,
    shapes_captions,
)
from jaxnets.data.datasets import (
    CANVAS,
    DATASETS,
    EMBEDDED,
    NORMALISATIONS,
    Dataset,
    Preprocessing,
    check_fits,
    load,
    load_raw,
    prepare,
    preprocessing,
)
from jaxnets.data.episodes import episode_indices, pair_indices
from jaxnets.data.features import BLOCK_NORMS, hog_features, oriented_gradient_filters
from jaxnets.data.glyphs import GlyphDataset, draw_glyph, glyph_classes, hershey_glyphs
from jaxnets.data.mnist_m import make_mnist_m
from jaxnets.data.moons import rotate, two_moons
from jaxnets.data.packaged import gensim_test_data, konlpy_corpus, package_file
from jaxnets.data.regression_toys import bishop_inverse, gap_sine
from jaxnets.data.sort_of_clevr import SortOfClevrDataset, sort_of_clevr_dataset
from jaxnets.data.strokes import StrokeDataset, glyph_points, hershey_strokes, to_polylines
from jaxnets.data.superres import (
    SUPERRES_SCALES,
    TEST_PHOTOGRAPHS,
    TRAIN_PHOTOGRAPHS,
    SuperResolutionPairs,
    luminance,
    patches,
    photographs,
    superres_pairs,
)
from jaxnets.data.text import TextDataset, load_text
from jaxnets.data.tfds_source import label_names, load_tfds
from jaxnets.data.toy import spirals, xor
from jaxnets.data.vqa import VQADataset, easy_vqa
from jaxnets.data.words import (
    Corpus,
    build_corpus,
    keep_probabilities,
    noise_distribution,
    read_analogies,
    read_corpus,
    read_sentences,
    read_similarity_pairs,
    tokenise,
)

__all__ = [
    "AUGMENTATIONS",
    "Augment",
    "BLOCK_NORMS",
    "BabiDataset",
    "CANVAS",
    "CanvasDataset",
    "Canvases",
    "CaptionDataset",
    "Corpus",
    "DATASETS",
    "DataUnavailable",
    "Dataset",
    "EMBEDDED",
    "GlyphDataset",
    "MANUAL_DIR_ENV",
    "NORMALISATIONS",
    "Preprocessing",
    "SUPERRES_DATASETS",
    "SUPERRES_SCALES",
    "ShapeScenes",
    "SortOfClevrDataset",
    "StrokeDataset",
    "SuperResolutionPairs",
    "TEST_PHOTOGRAPHS",
    "TRAIN_PHOTOGRAPHS",
    "TextDataset",
    "VQADataset",
    "affine",
    "augmentation",
    "babi_dataset",
    "babi_stories",
    "bishop_inverse",
    "build_corpus",
    "check_fits",
    "decode_caption",
    "draw_glyph",
    "draw_scenes",
    "easy_vqa",
    "elastic_distortion",
    "encode_caption",
    "episode_indices",
    "epoch_batches",
    "gap_sine",
    "gensim_test_data",
    "glyph_classes",
    "glyph_points",
    "hershey_glyphs",
    "hershey_strokes",
    "hog_features",
    "keep_probabilities",
    "konlpy_corpus",
    "label_names",
    "load",
    "load_babi",
    "load_canvas",
    "load_raw",
    "load_text",
    "load_tfds",
    "luminance",
    "make_mnist_m",
    "mnist_canvases",
    "noise_distribution",
    "oriented_gradient_filters",
    "package_file",
    "padded_batches",
    "pair_indices",
    "patches",
    "photographs",
    "prepare",
    "preprocessing",
    "random_affine",
    "random_scenes",
    "random_shift",
    "read_analogies",
    "read_corpus",
    "read_sentences",
    "read_similarity_pairs",
    "resample",
    "rotate",
    "scene_captions",
    "shapes_captions",
    "sort_of_clevr_dataset",
    "spirals",
    "steps_per_epoch",
    "superres_pairs",
    "to_polylines",
    "tokenise",
    "two_moons",
    "xor",
]
