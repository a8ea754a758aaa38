"""`AlexNet`: the seed blog's CIFAR-10 port of the network, for 32×32 images."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras

from keras_alexnet.data.cifar10 import IMAGE_SHAPE, NUM_CLASSES
from keras_alexnet.models.backbone import AlexNetBackbone
from keras_alexnet.models.layers import DENSE_UNITS

# Per-channel mean and std of CIFAR-10's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255). `train()` passes the statistics of its own training split instead.
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)


# The five convolutions' filters (each kernel 3×3; conv1, conv2, conv5 followed by a 2×2 max-pool).
CONV_FILTERS = (64, 192, 384, 256, 256)
# Filter counts scaled by a width multiplier are rounded to a multiple of this (CPU kernels run
# channel blocks of 16).
FILTER_ROUNDING = 16


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNet(AlexNetBackbone):
    """AlexNet for 32×32 images: five 3×3 convolutions, three dense layers, raw pixels in.

    The seed's CIFAR-10 adaptation of Krizhevsky et al. (2012): conv1 64 3×3/2 → max-pool 2 →
    conv2 192 → max-pool 2 → conv3 384 → conv4 256 → conv5 256 → max-pool 2 → flatten (1024) →
    dropout → fc6 4096 → dropout → fc7 4096 → dropout → fc8, ReLU after every hidden layer.
    `width_multiplier` scales the five filter counts and `dense_units` sets fc6 and fc7's width.
    The model takes raw 0–255 pixels (float32; uint8 is cast) and normalises them per channel
    itself, so an exported model needs no preprocessing. It outputs logits, in float32 also under
    a mixed-precision policy.

    conv1 pads one pixel on every side, as PyTorch's `padding=1` (Keras' `"same"` with stride 2
    would pad only the bottom and right), so the layers line up with the seed's exactly.

    Args:
        num_classes: Number of output logits.
        init: `"torch"`: PyTorch's default initialisation, which the seed used (weights and biases
            U(−1/√fan_in, 1/√fan_in)); `"paper"`: N(0, 0.01) weights, biases 1 in conv2, conv4,
            conv5, fc6, fc7 and 0 elsewhere.
        dropout: Dropout rate before fc6, fc7 and fc8.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).
        seed: Seed of the initialisation; `None` draws a fresh one.
        conv1_stride: 2 (the seed) or 1: conv1 keeps the 32×32 resolution, so conv2 sees 16×16
            maps, conv3–conv5 8×8 and fc6 a 4096-value flatten (about 3× the compute).
        batch_norm: Batch normalisation (PyTorch's momentum 0.1 and ε 1e-5) between each
            convolution and its ReLU; the convolutions then have no bias.
        width_multiplier: Factor on the five convolutions' filter counts (64, 192, 384, 256,
            256), each rounded to a multiple of 16 (`conv_filters`); 0.5 gives 32, 96, 192, 128,
            128.
        dense_units: Width of fc6 and fc7.
        name: Model name.
        dtype: The dtype policy of every layer but the input standardisation and the logits
            (float32 always); `None`: Keras' global policy.

    Example:

    >>> model = AlexNet(num_classes=10, init="torch", seed=0)
    >>> model.count_params()
    23272266
    >>> images = np.zeros((2, 32, 32, 3), "uint8")     # raw 0–255 pixels
    >>> model.predict(images, verbose=0).shape        # logits
    (2, 10)
    """

    def __init__(self, num_classes: int = NUM_CLASSES, init: str = "torch", dropout: float = 0.5,
                 mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                 seed: Optional[int] = None, conv1_stride: int = 2, batch_norm: bool = False,
                 width_multiplier: float = 1.0, dense_units: int = DENSE_UNITS,
                 name: str = "alexnet_cifar10", dtype=None, **kwargs):
        super().__init__(**self.architecture(conv1_stride, batch_norm, width_multiplier,
                                             dense_units),
                         dropout=dropout, num_classes=num_classes, init=init, mean=mean, std=std,
                         seed=seed, name=name, dtype=dtype, **kwargs)
        self.conv1_stride = conv1_stride
        self.batch_norm = batch_norm
        self.width_multiplier = float(width_multiplier)
        self.dense_units = int(dense_units)

    @staticmethod
    def architecture(conv1_stride: int = 2, batch_norm: bool = False,
                     width_multiplier: float = 1.0,
                     dense_units: int = DENSE_UNITS) -> dict[str, Any]:
        """The backbone arguments that `AlexNet`'s own arguments set (its layers' sizes)."""
        if conv1_stride not in (1, 2):
            raise ValueError(f"conv1_stride must be 1 or 2, got {conv1_stride!r}")
        return {"image_shape": IMAGE_SHAPE, "conv_filters": conv_filters(width_multiplier),
                "conv_strides": (conv1_stride, 1, 1, 1, 1), "batch_norm": batch_norm,
                "dense_units": dense_units}

    def get_config(self):
        # Keras' own part (name, trainable) and this class's arguments, which set the rest.
        return {**keras.Model.get_config(self), "num_classes": self.num_classes,
                "init": self.init, "dropout": self.dropout, "mean": self.mean, "std": self.std,
                "seed": self.seed, "conv1_stride": self.conv1_stride,
                "batch_norm": self.batch_norm, "width_multiplier": self.width_multiplier,
                "dense_units": self.dense_units}


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
