"""`PaperAlexNet`: the network of Krizhevsky, Sutskever & Hinton (2012), for 224×224 ImageNet
images."""

from __future__ import annotations

from typing import Optional, Sequence

import keras

from keras_alexnet.models.initializers import LayerInitializers
from keras_alexnet.models.layers import (
    DENSE_UNITS,
    LocalResponseNormalization,
    check_head,
    conv_relu,
    dense,
    standardize,
)
from keras_alexnet.models.preset_files import PresetMixin

# The paper's network: (name, filters, kernel, stride, split across the two GPUs, LRN, pool after).
# conv3 is the one convolution that reads the maps of both GPUs.
PAPER_CONV_LAYERS = (("conv1", 96, 11, 4, False, True, True),
                     ("conv2", 256, 5, 1, True, True, True),
                     ("conv3", 384, 3, 1, False, False, False),
                     ("conv4", 384, 3, 1, True, False, False),
                     ("conv5", 256, 3, 1, True, False, True))
PAPER_INPUT_SHAPE = (224, 224, 3)
PAPER_NUM_CLASSES = 1000
# Per-channel mean and std of ImageNet's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@keras.saving.register_keras_serializable(package="keras_alexnet")
class PaperAlexNet(PresetMixin, keras.Model):
    """The network of Krizhevsky, Sutskever & Hinton (2012), for 224×224 images and 1000 classes.

    conv1 96 11×11/4 → ReLU → LRN → max-pool 3×3/2 → conv2 256 5×5 → ReLU → LRN → max-pool 3×3/2 →
    conv3 384 3×3 → conv4 384 3×3 → conv5 256 3×3 → max-pool 3×3/2 → flatten → fc6 4096 →
    dropout → fc7 4096 → dropout → fc8, ReLU after every hidden layer. With `groups=2`, conv2, conv4
    and conv5 see only the maps of their own half (the paper's two GPUs); conv3 and the dense layers
    see all. conv1 pads 2 pixels per side, so a 224×224 input gives the paper's 55×55 maps (without
    padding they need the 227×227 input that the paper's arithmetic implies). Every other
    convolution keeps its size ("same"); pools overlap (3×3, stride 2, no padding).

    The model takes raw 0–255 pixels, as `AlexNet` (one input scale for both networks, so an
    export takes the uint8 images a client has), and standardises them per channel itself (the
    paper subtracted the mean image); it outputs logits, in float32 also under mixed precision.

    Args:
        num_classes: Number of output logits.
        input_shape: `(height, width, 3)`; 224×224 in the paper.
        groups: 2 (the paper's two-GPU split of conv2, conv4, conv5) or 1 (no split).
        lrn: Local response normalisation after conv1 and conv2 (k=2, n=5, α=1e-4, β=0.75).
        init: `"paper"`: N(0, 0.01) weights, biases 1 in conv2, conv4, conv5, fc6, fc7, 0
            elsewhere; `"torch"`: PyTorch's default initialisation.
        dropout: Dropout rate after fc6 and after fc7.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).
        seed: Seed of the initialisation; `None` draws a fresh one.
        name: Model name.
        dtype: The dtype policy of every layer but the input standardisation and the logits
            (float32 always); `None`: Keras' global policy.

    Example:

    >>> model = PaperAlexNet(num_classes=1000, groups=2, seed=0)
    >>> model.count_params()
    60965224
    >>> images = np.zeros((2, 224, 224, 3), "uint8")    # raw 0–255 pixels
    >>> model.predict(images, verbose=0).shape         # logits
    (2, 1000)
    """

    def __init__(self, num_classes: int = PAPER_NUM_CLASSES,
                 input_shape: Sequence[int] = PAPER_INPUT_SHAPE, groups: int = 2, lrn: bool = True,
                 init: str = "paper", dropout: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: Optional[int] = None,
                 name: str = "alexnet_paper", dtype=None, **kwargs):
        check_head(num_classes, dropout)
        if groups not in (1, 2):
            raise ValueError(f"groups must be 1 or 2, got {groups!r}")
        initializers = LayerInitializers(init, seed)
        images = keras.Input(shape=tuple(input_shape), name="images")
        x = keras.layers.ZeroPadding2D(2, name="conv1_pad")(standardize(images, mean, std))
        for layer_name, filters, kernel, stride, split, normalize, pool in PAPER_CONV_LAYERS:
            x = conv_relu(x, filters, kernel, layer_name, initializers, strides=stride,
                          groups=groups if split else 1,
                          padding="valid" if layer_name == "conv1" else "same", dtype=dtype)
            if normalize and lrn:
                x = LocalResponseNormalization(name=f"{layer_name}_lrn", dtype=dtype)(x)
            if pool:
                x = keras.layers.MaxPooling2D(3, strides=2, name=f"{layer_name}_pool",
                                              dtype=dtype)(x)
        x = keras.layers.Flatten(name="flatten", dtype=dtype)(x)
        for layer_name in ("fc6", "fc7"):
            x = dense(x, DENSE_UNITS, layer_name, initializers, dtype=dtype)
            x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout", dtype=dtype)(x)
        logits = dense(x, num_classes, "fc8", initializers, activation=None, dtype="float32")
        super().__init__(inputs=images, outputs=logits, name=name, dtype=dtype, **kwargs)
        self.num_classes = num_classes
        self.image_shape = tuple(int(d) for d in input_shape)
        self.groups = groups
        self.lrn = lrn
        self.init = init
        self.dropout = dropout
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.seed = seed

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "input_shape": list(self.image_shape), "groups": self.groups, "lrn": self.lrn,
                "init": self.init, "dropout": self.dropout, "mean": self.mean, "std": self.std,
                "seed": self.seed}
