"""AlexNet adapted to CIFAR-10, as the seed blog built it, as one functional Keras model."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import keras

from keras_alexnet.data import IMAGE_SHAPE, NUM_CLASSES

# Per-channel mean and std of CIFAR-10's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255). `train()` passes the statistics of its own training split instead.
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)

# (name, filters, pool after) of the five convolutions; every kernel is 3×3, conv1 has stride 2.
CONV_LAYERS = (("conv1", 64, True), ("conv2", 192, True), ("conv3", 384, False),
               ("conv4", 256, False), ("conv5", 256, True))
DENSE_UNITS = 4096
# The paper sets these biases to 1 so that ReLUs start in their positive range.
PAPER_BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNet(keras.Model):
    """AlexNet for 32×32 images: five 3×3 convolutions, three dense layers, raw pixels in.

    The seed's CIFAR-10 adaptation of Krizhevsky et al. (2012): conv1 64 3×3/2 → max-pool 2 →
    conv2 192 → max-pool 2 → conv3 384 → conv4 256 → conv5 256 → max-pool 2 → flatten (1024) →
    dropout → fc6 4096 → dropout → fc7 4096 → dropout → fc8, ReLU after every hidden layer.
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
        name: Model name.

    Example:

    >>> model = AlexNet(num_classes=10, init="torch", seed=0)
    >>> model.count_params()
    23272266
    >>> logits = model.predict(images_uint8)           # (N, 32, 32, 3) raw pixels → (N, 10)
    """

    def __init__(self, num_classes: int = NUM_CLASSES, init: str = "torch", dropout: float = 0.5,
                 mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                 seed: Optional[int] = None, name: str = "alexnet_cifar10", **kwargs):
        if init not in ("torch", "paper"):
            raise ValueError(f"init must be 'torch' or 'paper', got {init!r}")
        initializers = _Initializers(init, seed)
        images = keras.Input(shape=IMAGE_SHAPE, name="images")
        x = keras.layers.Normalization(mean=list(mean), variance=[s * s for s in std],
                                       dtype="float32", name="normalize")(images)
        fan_in = IMAGE_SHAPE[-1]
        for layer_name, filters, pool in CONV_LAYERS:
            if layer_name == "conv1":
                x = keras.layers.ZeroPadding2D(1, name="conv1_pad")(x)
            x = keras.layers.Conv2D(filters, 3, strides=2 if layer_name == "conv1" else 1,
                                    padding="valid" if layer_name == "conv1" else "same",
                                    activation="relu", name=layer_name,
                                    **initializers(layer_name, fan_in * 9))(x)
            fan_in = filters
            if pool:
                x = keras.layers.MaxPooling2D(2, name=f"{layer_name}_pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        fan_in = x.shape[-1]
        for layer_name in ("fc6", "fc7"):
            x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
            x = keras.layers.Dense(DENSE_UNITS, activation="relu", name=layer_name,
                                   **initializers(layer_name, fan_in))(x)
            fan_in = DENSE_UNITS
        x = keras.layers.Dropout(dropout, name="fc8_dropout")(x)
        logits = keras.layers.Dense(num_classes, dtype="float32", name="fc8",
                                    **initializers("fc8", fan_in))(x)
        super().__init__(inputs=images, outputs=logits, name=name, **kwargs)
        self.num_classes = num_classes
        self.init = init
        self.dropout = dropout
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.seed = seed

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "init": self.init,
            "dropout": self.dropout,
            "mean": self.mean,
            "std": self.std,
            "seed": self.seed,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Initializers:
    """Kernel and bias initializers of one layer, per initialisation scheme."""

    def __init__(self, init: str, seed: Optional[int]):
        self.init = init
        self.seed = seed
        self.count = 0

    def __call__(self, layer_name: str, fan_in: int) -> dict:
        seeds = (None, None) if self.seed is None else (self.seed + 2 * self.count,
                                                        self.seed + 2 * self.count + 1)
        self.count += 1
        if self.init == "torch":
            # PyTorch: kaiming_uniform_(a=√5) for weights, i.e. U(±1/√fan_in); the same bound for biases.
            bound = 1.0 / math.sqrt(fan_in)
            return {
                "kernel_initializer": keras.initializers.VarianceScaling(
                    scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seeds[0]),
                "bias_initializer": keras.initializers.RandomUniform(-bound, bound, seed=seeds[1]),
            }
        return {
            "kernel_initializer": keras.initializers.RandomNormal(0.0, 0.01, seed=seeds[0]),
            "bias_initializer": "ones" if layer_name in PAPER_BIAS_ONE else "zeros",
        }


def build_model(num_classes: int = NUM_CLASSES, init: str = "torch", dropout: float = 0.5,
                mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                seed: Optional[int] = None) -> keras.Model:
    """Builds the seed's CIFAR-10 AlexNet (see `AlexNet` for the layers and arguments).

    Example:

    >>> model = build_model(init="torch", seed=0)
    >>> [layer.name for layer in model.layers if layer.count_params()][:3]
    ['conv1', 'conv2', 'conv3']
    """
    return AlexNet(num_classes=num_classes, init=init, dropout=dropout, mean=mean, std=std, seed=seed)
