"""`PaperAlexNet`: the 2012 paper's network as one model, deprecated for
`AlexNetImageClassifier` (its argument set: `architectures.paper_network`)."""

from __future__ import annotations

from typing import Optional, Sequence

import keras

from keras_alexnet.models.architectures import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PAPER_CROP_FRACTION,
    PAPER_IMAGE_SHAPE,
    PAPER_NUM_CLASSES,
    paper_network,
)
from keras_alexnet.models.deprecation import DeprecatedNetwork
from keras_alexnet.models.network import AlexNetNetwork

PAPER_INPUT_SHAPE = PAPER_IMAGE_SHAPE
__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PAPER_CROP_FRACTION", "PAPER_INPUT_SHAPE",
           "PAPER_NUM_CLASSES", "PaperAlexNet"]


@keras.saving.register_keras_serializable(package="keras_alexnet")
class PaperAlexNet(DeprecatedNetwork, AlexNetNetwork):
    """The paper's AlexNet as one model (deprecated: use
    `AlexNetImageClassifier.from_arguments("paper", ...)`).

    The same network, weights and outputs as before: `architectures.paper_network`'s arguments
    (see there; `input_shape` is its `image_shape`) built as one model that takes raw 0–255
    pixels and gives logits.

    Example:

    >>> PaperAlexNet(num_classes=1000, groups=2, seed=0).count_params()    # warns
    60965224
    """

    replacement = "AlexNetImageClassifier"

    def __init__(self, num_classes: int = PAPER_NUM_CLASSES,
                 input_shape: Sequence[int] = PAPER_INPUT_SHAPE, groups: int = 2, lrn: bool = True,
                 init: str = "paper", dropout: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: Optional[int] = None,
                 name: str = "alexnet_paper", dtype=None, **kwargs):
        self.warn_deprecated()
        arguments = paper_network(num_classes, input_shape, groups, lrn, init, dropout, mean, std)
        super().__init__(**arguments.whole_network(), seed=seed, name=name, dtype=dtype,
                         **kwargs)
        self.groups = groups
        self.lrn = lrn

    def get_config(self):
        # Keras' own part (name, trainable) and this class's arguments, which set the rest.
        return {**keras.Model.get_config(self), "num_classes": self.num_classes,
                "input_shape": list(self.image_shape), "groups": self.groups, "lrn": self.lrn,
                "init": self.init, "dropout": self.dropout, "mean": self.mean, "std": self.std,
                "seed": self.seed}
