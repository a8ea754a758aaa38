"""`AlexNet`: the seed blog's CIFAR-10 network as one model, deprecated for
`AlexNetImageClassifier` (its argument set: `architectures.seed_network`)."""

from __future__ import annotations

from typing import Optional, Sequence

import keras

from keras_alexnet.models.architectures import (
    CIFAR10_MEAN,
    CIFAR10_NUM_CLASSES,
    CIFAR10_STD,
    CONV_FILTERS,
    FILTER_ROUNDING,
    conv_filters,
    seed_network,
)
from keras_alexnet.models.deprecation import DeprecatedNetwork
from keras_alexnet.models.layers import DENSE_UNITS
from keras_alexnet.models.network import AlexNetNetwork

__all__ = ["AlexNet", "CIFAR10_MEAN", "CIFAR10_STD", "CONV_FILTERS", "FILTER_ROUNDING",
           "conv_filters"]


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNet(DeprecatedNetwork, AlexNetNetwork):
    """The seed's CIFAR-10 AlexNet as one model (deprecated: use
    `AlexNetImageClassifier.from_arguments("cifar", ...)`, or `.from_preset`).

    The same network, weights and outputs as before: `architectures.seed_network`'s arguments
    (see there) built as one model that takes raw 0–255 pixels and gives logits. Constructing it
    or calling `AlexNet.from_preset` warns once; loading a saved one does not.

    Args:
        num_classes, init, dropout, mean, std, conv1_stride, batch_norm, width_multiplier,
        dense_units: As `architectures.seed_network`.
        seed: Seed of the initialisation; `None` draws a fresh one.
        name: Model name.
        dtype: The dtype policy of every layer but the input standardisation and the logits.

    Example:

    >>> AlexNet(num_classes=10, init="torch", seed=0).count_params()    # warns
    23272266
    """

    replacement = "AlexNetImageClassifier"

    def __init__(self, num_classes: int = CIFAR10_NUM_CLASSES, init: str = "torch",
                 dropout: float = 0.5, mean: Sequence[float] = CIFAR10_MEAN,
                 std: Sequence[float] = CIFAR10_STD, seed: Optional[int] = None,
                 conv1_stride: int = 2, batch_norm: bool = False, width_multiplier: float = 1.0,
                 dense_units: int = DENSE_UNITS, name: str = "alexnet_cifar10", dtype=None,
                 **kwargs):
        self.warn_deprecated()
        arguments = seed_network(num_classes, init, dropout, mean, std, conv1_stride,
                                 batch_norm, width_multiplier, dense_units)
        super().__init__(**arguments.whole_network(), seed=seed, name=name, dtype=dtype,
                         **kwargs)
        self.conv1_stride = conv1_stride
        self.batch_norm = batch_norm
        self.width_multiplier = float(width_multiplier)
        self.dense_units = int(dense_units)

    def get_config(self):
        # Keras' own part (name, trainable) and this class's arguments, which set the rest.
        return {**keras.Model.get_config(self), "num_classes": self.num_classes,
                "init": self.init, "dropout": self.dropout, "mean": self.mean, "std": self.std,
                "seed": self.seed, "conv1_stride": self.conv1_stride,
                "batch_norm": self.batch_norm, "width_multiplier": self.width_multiplier,
                "dense_units": self.dense_units}
