"""The package's AlexNets as argument sets of the backbone, the preprocessor and the task: the
seed's CIFAR-10 network, the paper's, and any whole network's config of the deprecated layout."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from keras_alexnet.models.layers import DENSE_NAMES, DENSE_UNITS

# The seed's CIFAR-10 network: 32×32 images, 10 classes.
CIFAR10_IMAGE_SHAPE = (32, 32, 3)
CIFAR10_NUM_CLASSES = 10
# Per-channel mean and std of CIFAR-10's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255). `train()` passes the statistics of its own training split instead.
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)
# The five convolutions' filters (each kernel 3×3; conv1, conv2, conv5 followed by a 2×2 max-pool).
CONV_FILTERS = (64, 192, 384, 256, 256)
# Filter counts scaled by a width multiplier are rounded to a multiple of this (CPU kernels run
# channel blocks of 16).
FILTER_ROUNDING = 16

PAPER_IMAGE_SHAPE = (224, 224, 3)
PAPER_NUM_CLASSES = 1000
# The paper tests on the centre 224×224 of an image whose shorter side is resized to 256.
PAPER_CROP_FRACTION = 224 / 256
# Per-channel mean and std of ImageNet's training pixels on the raw 0–255 scale.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# Which argument of a whole network goes to which part.
_PREPROCESSOR_KEYS = ("image_shape", "mean", "std", "test_crop_fraction")
_HEAD_KEYS = ("num_classes", "dense_units", "dropout", "dropout_before", "init")
_BACKBONE_KEYS = ("image_shape", "conv_filters", "conv_kernel_sizes", "conv_strides",
                  "conv_groups", "conv_lrn", "conv_pooling", "conv1_padding", "pool_size",
                  "pool_strides", "batch_norm", "init")


@dataclasses.dataclass(frozen=True)
class ArgumentSet:
    """One AlexNet: the arguments of its backbone, its preprocessor and its task's head."""

    backbone: dict[str, Any]
    preprocessor: dict[str, Any]
    head: dict[str, Any]

    def whole_network(self) -> dict[str, Any]:
        """The same network as the arguments of the deprecated one-model `AlexNetNetwork`."""
        return {**self.backbone, **self.preprocessor, **self.head}


def seed_network(num_classes: int = CIFAR10_NUM_CLASSES, init: str = "torch",
                 dropout: float = 0.5, mean: Sequence[float] = CIFAR10_MEAN,
                 std: Sequence[float] = CIFAR10_STD, conv1_stride: int = 2,
                 batch_norm: bool = False, width_multiplier: float = 1.0,
                 dense_units: int = DENSE_UNITS) -> ArgumentSet:
    """The seed blog's CIFAR-10 AlexNet (and every CIFAR recipe's, by these arguments): conv1 64
    3×3/2 → pool → conv2 192 → pool → conv3 384 → conv4 256 → conv5 256 → pool, fc6 and fc7 of
    `dense_units`, dropout before each dense layer.

    Args:
        num_classes: Number of output logits.
        init: `"torch"` (the seed's) or `"paper"` initialisation.
        dropout: Dropout rate before fc6, fc7 and fc8.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).
        conv1_stride: 2 (the seed) or 1 (conv1 keeps the 32×32 resolution).
        batch_norm: Batch normalisation between each convolution and its ReLU.
        width_multiplier: Factor on the five filter counts (`conv_filters`).
        dense_units: Width of fc6 and fc7.

    Example:

    >>> seed_network(width_multiplier=0.5).backbone["conv_filters"]
    (32, 96, 192, 128, 128)
    """
    if conv1_stride not in (1, 2):
        raise ValueError(f"conv1_stride must be 1 or 2, got {conv1_stride!r}")
    return ArgumentSet(
        backbone={"image_shape": CIFAR10_IMAGE_SHAPE,
                  "conv_filters": conv_filters(width_multiplier),
                  "conv_strides": (conv1_stride, 1, 1, 1, 1), "batch_norm": batch_norm,
                  "init": init},
        preprocessor={"image_shape": CIFAR10_IMAGE_SHAPE, "mean": tuple(mean), "std": tuple(std)},
        head={"num_classes": num_classes, "dense_units": dense_units, "dropout": dropout,
              "dropout_before": DENSE_NAMES, "init": init})


def paper_network(num_classes: int = PAPER_NUM_CLASSES,
                  image_shape: Sequence[int] = PAPER_IMAGE_SHAPE, groups: int = 2,
                  lrn: bool = True, init: str = "paper", dropout: float = 0.5,
                  mean: Sequence[float] = IMAGENET_MEAN,
                  std: Sequence[float] = IMAGENET_STD) -> ArgumentSet:
    """The network of Krizhevsky, Sutskever & Hinton (2012): conv1 96 11×11/4 → LRN → pool 3/2 →
    conv2 256 5×5 → LRN → pool → conv3 384 → conv4 384 → conv5 256 → pool, fc6 and fc7 of 4096,
    dropout before fc7 and fc8, the test view the centre 224 of 256.

    Args:
        num_classes: Number of output logits.
        image_shape: `(height, width, 3)`; 224×224 in the paper.
        groups: 2 (the paper's two-GPU split of conv2, conv4, conv5) or 1.
        lrn: Local response normalisation after conv1 and conv2.
        init: `"paper"` (the paper's) or `"torch"` initialisation.
        dropout: Dropout rate before fc7 and fc8.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).

    Example:

    >>> paper_network().backbone["conv_groups"]
    (1, 2, 1, 2, 2)
    """
    if groups not in (1, 2):
        raise ValueError(f"groups must be 1 or 2, got {groups!r}")
    image_shape = tuple(image_shape)
    return ArgumentSet(
        backbone={"image_shape": image_shape, "conv_filters": (96, 256, 384, 384, 256),
                  "conv_kernel_sizes": (11, 5, 3, 3, 3), "conv_strides": (4, 1, 1, 1, 1),
                  "conv_groups": (1, groups, 1, groups, groups),
                  "conv_lrn": (lrn, lrn, False, False, False),
                  "conv_pooling": (True, True, False, False, True), "conv1_padding": 2,
                  "pool_size": 3, "pool_strides": 2, "init": init},
        preprocessor={"image_shape": image_shape, "mean": tuple(mean), "std": tuple(std),
                      "test_crop_fraction": PAPER_CROP_FRACTION},
        head={"num_classes": num_classes, "dense_units": DENSE_UNITS, "dropout": dropout,
              "dropout_before": DENSE_NAMES[1:], "init": init})


def split_network(config: dict[str, Any]) -> ArgumentSet:
    """The backbone's, preprocessor's and head's share of a whole `AlexNetNetwork`'s config."""
    def part(keys: Sequence[str]) -> dict[str, Any]:
        return {key: config[key] for key in keys if key in config}

    return ArgumentSet(part(_BACKBONE_KEYS), part(_PREPROCESSOR_KEYS), part(_HEAD_KEYS))


# The networks `TrainConfig.network` names, each by its argument set.
ARCHITECTURES: dict[str, Callable[..., ArgumentSet]] = {"cifar": seed_network,
                                                        "paper": paper_network}


def architecture(name: str) -> Callable[..., ArgumentSet]:
    """The argument set function of the network `name` (`"cifar"`, `"paper"`)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"variant must be one of {', '.join(ARCHITECTURES)}, got {name!r}")
    return ARCHITECTURES[name]


def conv_filters(width_multiplier: float = 1.0) -> tuple[int, ...]:
    """The five convolutions' filter counts: the seed's (64, 192, 384, 256, 256) times
    `width_multiplier`, each rounded to the nearest multiple of 16 (at least 16).

    Example:

    >>> conv_filters(0.5)
    (32, 96, 192, 128, 128)
    """
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0, got {width_multiplier}")
    if width_multiplier == 1:
        return CONV_FILTERS
    return tuple(max(FILTER_ROUNDING, FILTER_ROUNDING * round(filters * width_multiplier
                                                              / FILTER_ROUNDING))
                 for filters in CONV_FILTERS)
