"""The two AlexNets as functional Keras models: the seed blog's CIFAR-10 port and the 2012 paper's.

`build_model()` builds either: `variant="cifar"` (default, `AlexNet`) or `variant="paper"`
(`PaperAlexNet`, with `LocalResponseNormalization` and two-group convolutions).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import keras
from keras import ops

from keras_alexnet.config import INITS
from keras_alexnet.data import IMAGE_SHAPE, NUM_CLASSES
from keras_alexnet.initializers import HostRandom

# Per-channel mean and std of CIFAR-10's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255). `train()` passes the statistics of its own training split instead.
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)

# (name, filters, pool after) of the five convolutions; every kernel is 3×3, conv1 has stride 2.
CONV_LAYERS = (("conv1", 64, True), ("conv2", 192, True), ("conv3", 384, False),
               ("conv4", 256, False), ("conv5", 256, True))
DENSE_UNITS = 4096
# Filter counts scaled by a width multiplier are rounded to a multiple of this (CPU kernels run
# channel blocks of 16).
FILTER_ROUNDING = 16
# The paper sets these biases to 1 so that ReLUs start in their positive range.
PAPER_BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")

# The paper's network: (name, filters, kernel, stride, split across the two GPUs, LRN, pool after).
# conv3 is the one convolution that reads the maps of both GPUs.
PAPER_CONV_LAYERS = (("conv1", 96, 11, 4, False, True, True),
                     ("conv2", 256, 5, 1, True, True, True),
                     ("conv3", 384, 3, 1, False, False, False),
                     ("conv4", 384, 3, 1, True, False, False),
                     ("conv5", 256, 3, 1, True, False, True))
PAPER_INPUT_SHAPE = (224, 224, 3)
PAPER_NUM_CLASSES = 1000
# Per-channel mean and std of ImageNet's training pixels on the 0–1 scale.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VARIANTS = ("cifar", "paper")


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNet(keras.Model):
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

    Example:

    >>> model = AlexNet(num_classes=10, init="torch", seed=0)
    >>> model.count_params()
    23272266
    >>> logits = model.predict(images_uint8)           # (N, 32, 32, 3) raw pixels → (N, 10)
    """

    def __init__(self, num_classes: int = NUM_CLASSES, init: str = "torch", dropout: float = 0.5,
                 mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD,
                 seed: Optional[int] = None, conv1_stride: int = 2, batch_norm: bool = False,
                 width_multiplier: float = 1.0, dense_units: int = DENSE_UNITS,
                 name: str = "alexnet_cifar10", **kwargs):
        if conv1_stride not in (1, 2):
            raise ValueError(f"conv1_stride must be 1 or 2, got {conv1_stride}")
        if dense_units < 1:
            raise ValueError(f"dense_units must be >= 1, got {dense_units}")
        initializers = _Initializers(init, seed)
        images = keras.Input(shape=IMAGE_SHAPE, name="images")
        x = _standardize(images, mean, std)
        fan_in = IMAGE_SHAPE[-1]
        for (layer_name, _, pool), filters in zip(CONV_LAYERS, conv_filters(width_multiplier)):
            if layer_name == "conv1":
                x = keras.layers.ZeroPadding2D(1, name="conv1_pad")(x)
            stride = conv1_stride if layer_name == "conv1" else 1
            x = keras.layers.Conv2D(filters, 3, strides=stride,
                                    padding="valid" if layer_name == "conv1" else "same",
                                    activation=None if batch_norm else "relu",
                                    use_bias=not batch_norm, name=layer_name,
                                    **initializers(layer_name, fan_in * 9))(x)
            if batch_norm:
                x = _batch_norm_relu(x, layer_name)
            fan_in = filters
            if pool:
                x = keras.layers.MaxPooling2D(2, name=f"{layer_name}_pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        fan_in = x.shape[-1]
        for layer_name in ("fc6", "fc7"):
            x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
            x = keras.layers.Dense(dense_units, activation="relu", name=layer_name,
                                   **initializers(layer_name, fan_in))(x)
            fan_in = dense_units
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
        self.conv1_stride = conv1_stride
        self.batch_norm = batch_norm
        self.width_multiplier = float(width_multiplier)
        self.dense_units = int(dense_units)

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "init": self.init,
            "dropout": self.dropout,
            "mean": self.mean,
            "std": self.std,
            "seed": self.seed,
            "conv1_stride": self.conv1_stride,
            "batch_norm": self.batch_norm,
            "width_multiplier": self.width_multiplier,
            "dense_units": self.dense_units,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


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
        return tuple(filters for _, filters, _ in CONV_LAYERS)
    return tuple(max(FILTER_ROUNDING, FILTER_ROUNDING * round(filters * width_multiplier
                                                              / FILTER_ROUNDING))
                 for _, filters, _ in CONV_LAYERS)


def _batch_norm_relu(x, layer_name: str):
    """Batch normalisation with PyTorch's defaults (Keras momentum 0.9 = PyTorch 0.1), then ReLU."""
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{layer_name}_bn")(x)
    return keras.layers.ReLU(name=f"{layer_name}_relu")(x)


def _standardize(images, mean: Sequence[float], std: Sequence[float]):
    """Per-channel `(images - mean) / std` in float32, the first layer of both networks."""
    return keras.layers.Normalization(mean=list(mean), variance=[s * s for s in std],
                                      dtype="float32", name="normalize")(images)


class _Initializers:
    """Kernel and bias initializers of one layer, per initialisation scheme; every draw keyed by
    the seed and the weight's name (`conv1/kernel`), so no two weights share a random stream."""

    def __init__(self, init: str, seed: Optional[int]):
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.init = init
        self.seed = seed

    def __call__(self, layer_name: str, fan_in: int) -> dict:
        def draw(distribution: str, scale: float, weight: str) -> HostRandom:
            return HostRandom(distribution, scale, seed=self.seed, key=f"{layer_name}/{weight}")

        if self.init == "torch":
            # PyTorch: kaiming_uniform_(a=√5) for weights, i.e. U(±1/√fan_in); the same bound for
            # biases.
            bound = 1.0 / math.sqrt(fan_in)
            return {"kernel_initializer": draw("uniform", bound, "kernel"),
                    "bias_initializer": draw("uniform", bound, "bias")}
        return {
            "kernel_initializer": draw("normal", 0.01, "kernel"),
            "bias_initializer": "ones" if layer_name in PAPER_BIAS_ONE else "zeros",
        }


@keras.saving.register_keras_serializable(package="keras_alexnet")
class LocalResponseNormalization(keras.layers.Layer):
    """The paper's local response normalisation across channels (Section 3.3).

    b[..., i] = a[..., i] / (k + α Σ_j a[..., j]²)^β, the sum over the `size` channels
    j = i − size//2 … i + size//2 that exist. The same as `tf.nn.local_response_normalization`
    with `depth_radius=size // 2, bias=k, alpha=alpha, beta=beta` (α is not divided by `size`,
    unlike PyTorch's and Caffe's `LocalResponseNorm`), which this layer calls on the TensorFlow
    backend; other backends run the same formula in `keras.ops`.

    Args:
        size: Number of adjacent channels summed over (odd; the paper's n = 5).
        k: Additive constant (the paper's k = 2).
        alpha: Scale of the sum of squares (the paper's α = 1e-4).
        beta: Exponent (the paper's β = 0.75).

    Example:

    >>> lrn = LocalResponseNormalization(size=5, k=2.0, alpha=1e-4, beta=0.75)
    >>> lrn(np.ones((1, 4, 4, 96), "float32")).shape
    (1, 4, 4, 96)
    """

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd number, got {size}")
        self.size = int(size)
        self.k = float(k)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        radius = self.size // 2
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.nn.local_response_normalization(inputs, depth_radius=radius, bias=self.k,
                                                      alpha=self.alpha, beta=self.beta)
        return self.normalize(inputs)

    def normalize(self, inputs):
        """The formula in `keras.ops` (what `call` runs on backends other than TensorFlow)."""
        radius = self.size // 2
        channels = inputs.shape[-1]
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]]
        squared = ops.pad(ops.square(inputs), padding)
        window_sum = sum(squared[..., offset:offset + channels] for offset in range(self.size))
        return inputs * ops.power(self.k + self.alpha * window_sum, -self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "k": self.k, "alpha": self.alpha,
                "beta": self.beta}


@keras.saving.register_keras_serializable(package="keras_alexnet")
class PaperAlexNet(keras.Model):
    """The network of Krizhevsky, Sutskever & Hinton (2012), for 224×224 images and 1000 classes.

    conv1 96 11×11/4 → ReLU → LRN → max-pool 3×3/2 → conv2 256 5×5 → ReLU → LRN → max-pool 3×3/2 →
    conv3 384 3×3 → conv4 384 3×3 → conv5 256 3×3 → max-pool 3×3/2 → flatten → fc6 4096 →
    dropout → fc7 4096 → dropout → fc8, ReLU after every hidden layer. With `groups=2`, conv2, conv4
    and conv5 see only the maps of their own half (the paper's two GPUs); conv3 and the dense layers
    see all. conv1 pads 2 pixels per side, so a 224×224 input gives the paper's 55×55 maps (without
    padding they need the 227×227 input that the paper's arithmetic implies). Every other
    convolution keeps its size ("same"); pools overlap (3×3, stride 2, no padding).

    The model takes float images on the 0–1 scale and standardises them per channel itself (the
    paper subtracted the mean image); it outputs logits, in float32 also under mixed precision.

    Args:
        num_classes: Number of output logits.
        input_shape: `(height, width, 3)`; 224×224 in the paper.
        groups: 2 (the paper's two-GPU split of conv2, conv4, conv5) or 1 (no split).
        lrn: Local response normalisation after conv1 and conv2 (k=2, n=5, α=1e-4, β=0.75).
        init: `"paper"`: N(0, 0.01) weights, biases 1 in conv2, conv4, conv5, fc6, fc7, 0
            elsewhere; `"torch"`: PyTorch's default initialisation.
        dropout: Dropout rate after fc6 and after fc7.
        mean: Per-channel mean of the training pixels (0–1 scale).
        std: Per-channel standard deviation of the training pixels (0–1 scale).
        seed: Seed of the initialisation; `None` draws a fresh one.
        name: Model name.

    Example:

    >>> model = PaperAlexNet(num_classes=1000, groups=2, seed=0)
    >>> model.count_params()
    60965224
    >>> logits = model.predict(images)                 # (N, 224, 224, 3) on 0–1 → (N, 1000)
    """

    def __init__(self, num_classes: int = PAPER_NUM_CLASSES,
                 input_shape: Sequence[int] = PAPER_INPUT_SHAPE, groups: int = 2, lrn: bool = True,
                 init: str = "paper", dropout: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: Optional[int] = None,
                 name: str = "alexnet_paper", **kwargs):
        if groups not in (1, 2):
            raise ValueError(f"groups must be 1 or 2, got {groups}")
        initializers = _Initializers(init, seed)
        images = keras.Input(shape=tuple(input_shape), name="images")
        x = _standardize(images, mean, std)
        fan_in = input_shape[-1]
        for layer_name, filters, kernel, stride, split, normalize, pool in PAPER_CONV_LAYERS:
            layer_groups = groups if split else 1
            if layer_name == "conv1":
                x = keras.layers.ZeroPadding2D(2, name="conv1_pad")(x)
            x = keras.layers.Conv2D(filters, kernel, strides=stride, groups=layer_groups,
                                    padding="valid" if layer_name == "conv1" else "same",
                                    activation="relu", name=layer_name,
                                    **initializers(layer_name,
                                                   fan_in // layer_groups * kernel ** 2))(x)
            fan_in = filters
            if normalize and lrn:
                x = LocalResponseNormalization(name=f"{layer_name}_lrn")(x)
            if pool:
                x = keras.layers.MaxPooling2D(3, strides=2, name=f"{layer_name}_pool")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        fan_in = x.shape[-1]
        for layer_name in ("fc6", "fc7"):
            x = keras.layers.Dense(DENSE_UNITS, activation="relu", name=layer_name,
                                   **initializers(layer_name, fan_in))(x)
            x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout")(x)
            fan_in = DENSE_UNITS
        logits = keras.layers.Dense(num_classes, dtype="float32", name="fc8",
                                    **initializers("fc8", fan_in))(x)
        super().__init__(inputs=images, outputs=logits, name=name, **kwargs)
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
        return {
            "num_classes": self.num_classes,
            "input_shape": list(self.image_shape),
            "groups": self.groups,
            "lrn": self.lrn,
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


def build_model(variant: str = "cifar", *, num_classes: Optional[int] = None,
                input_shape: Optional[Sequence[int]] = None, init: Optional[str] = None,
                dropout: float = 0.5, mean: Optional[Sequence[float]] = None,
                std: Optional[Sequence[float]] = None, groups: int = 2, lrn: bool = True,
                conv1_stride: int = 2, batch_norm: bool = False, width_multiplier: float = 1.0,
                dense_units: int = DENSE_UNITS, seed: Optional[int] = None) -> keras.Model:
    """Builds the seed's CIFAR-10 AlexNet or the paper's ImageNet AlexNet.

    Args:
        variant: `"cifar"` (`AlexNet`: the seed's 32×32 port, raw 0–255 pixels in) or `"paper"`
            (`PaperAlexNet`: the 2012 network, 0–1 pixels in).
        num_classes: Output logits; default 10 (cifar) or 1000 (paper).
        input_shape: Image shape of the paper variant; default (224, 224, 3). The CIFAR variant
            is built for (32, 32, 3) only.
        init: `"torch"` or `"paper"`; default: the variant's own (torch for cifar, as the seed;
            paper for paper).
        dropout: Dropout rate of the dense layers.
        mean: Per-channel input mean; default CIFAR-10's (0–255) or ImageNet's (0–1).
        std: Per-channel input std; default CIFAR-10's (0–255) or ImageNet's (0–1).
        groups: Paper variant: 2 splits conv2, conv4, conv5 in two groups as the paper; 1 does not.
        lrn: Paper variant: local response normalisation after conv1 and conv2.
        conv1_stride: CIFAR variant: conv1's stride, 2 (the seed) or 1.
        batch_norm: CIFAR variant: batch normalisation after every convolution.
        width_multiplier: CIFAR variant: factor on the convolutions' filter counts.
        dense_units: CIFAR variant: width of fc6 and fc7.
        seed: Seed of the initialisation.

    Example:

    >>> build_model(seed=0).count_params()                        # the seed's CIFAR-10 model
    23272266
    >>> build_model("paper", num_classes=1000, groups=2, lrn=True, seed=0).count_params()
    60965224
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if variant == "cifar":
        if input_shape is not None and tuple(input_shape) != IMAGE_SHAPE:
            raise ValueError(f"the cifar variant takes {IMAGE_SHAPE} images, "
                             f"got {tuple(input_shape)}")
        return AlexNet(num_classes=num_classes or NUM_CLASSES, init=init or "torch",
                       dropout=dropout,
                       mean=CIFAR10_MEAN if mean is None else mean,
                       std=CIFAR10_STD if std is None else std, seed=seed,
                       conv1_stride=conv1_stride, batch_norm=batch_norm,
                       width_multiplier=width_multiplier, dense_units=dense_units)
    return PaperAlexNet(num_classes=num_classes or PAPER_NUM_CLASSES,
                        input_shape=input_shape or PAPER_INPUT_SHAPE, groups=groups, lrn=lrn,
                        init=init or "paper", dropout=dropout,
                        mean=IMAGENET_MEAN if mean is None else mean,
                        std=IMAGENET_STD if std is None else std, seed=seed)
