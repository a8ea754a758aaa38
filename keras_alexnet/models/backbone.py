"""`AlexNetBackbone`: AlexNet's convolutional features — five convolutions, each with its ReLU and
optionally batch norm, LRN and max-pooling — every AlexNet's as a set of its arguments."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras

from keras_alexnet.models.architectures import CONV_FILTERS
from keras_alexnet.models.initializers import LayerInitializers
from keras_alexnet.models.layers import LocalResponseNormalization, conv_relu
from keras_alexnet.models.preset_mapping import BackbonePresets, one_model_class

CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")
# The arguments of the one-model network that belong to the task or its preprocessor.
NOT_THE_BACKBONES = ("num_classes", "dense_units", "dropout", "dropout_before", "mean", "std",
                     "test_crop_fraction")
STACKWISE = ("conv_filters", "conv_kernel_sizes", "conv_strides", "conv_groups", "conv_lrn",
             "conv_pooling")


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNetBackbone(BackbonePresets, keras.Model):
    """AlexNet's convolutional features: standardised images → conv1…conv5 → conv5's pooled maps.

    keras-hub's stackwise style: one entry per convolution in each `conv_*` argument, so every
    AlexNet (the seed's CIFAR-10 network, the paper's, each recipe's) is a set of these arguments;
    `AlexNetImageClassifier` puts its head on top. The input is what
    `AlexNetImageClassifierPreprocessor` gives: per-channel standardised float32 images. The
    defaults are the seed's CIFAR-10 features.

    Args:
        image_shape: `(height, width, 3)` of the input.
        conv_filters: Filters of conv1…conv5.
        conv_kernel_sizes: Square kernel side of each convolution.
        conv_strides: Stride of each convolution.
        conv_groups: Filter groups of each (2: the paper's two-GPU split).
        conv_lrn: Local response normalisation after each convolution's ReLU.
        conv_pooling: Max-pooling after each convolution (after its LRN).
        conv1_padding: Zero padding per side before conv1 (it pads nothing itself; the others
            pad "same").
        pool_size: The max-pools' window.
        pool_strides: The max-pools' stride.
        batch_norm: Batch normalisation (PyTorch's momentum 0.1, ε 1e-5) between each
            convolution and its ReLU; the convolutions then have no bias.
        init: `"torch"` (PyTorch's defaults) or `"paper"` (N(0, 0.01); biases 1 in conv2, conv4,
            conv5); see `initializers.LayerInitializers`.
        seed: Seed of the initial weights only, not kept in the config (a loaded model's weights
            come from its file); `None` draws from NumPy's global generator, which
            `keras.utils.set_random_seed` seeds.
        name: Model name.
        dtype: The dtype policy of the layers; `None`: Keras' global policy.

    Example:

    >>> backbone = AlexNetBackbone(conv_filters=(16, 48, 96, 64, 64), seed=0)
    >>> backbone.output_shape
    (None, 2, 2, 64)
    """

    def __init__(self, image_shape: Sequence[int] = (32, 32, 3),
                 conv_filters: Sequence[int] = CONV_FILTERS,
                 conv_kernel_sizes: Sequence[int] = (3, 3, 3, 3, 3),
                 conv_strides: Sequence[int] = (2, 1, 1, 1, 1),
                 conv_groups: Sequence[int] = (1, 1, 1, 1, 1),
                 conv_lrn: Sequence[bool] = (False,) * 5,
                 conv_pooling: Sequence[bool] = (True, True, False, False, True),
                 conv1_padding: int = 1, pool_size: int = 2, pool_strides: int = 2,
                 batch_norm: bool = False, init: str = "torch", seed: Optional[int] = None,
                 name: str = "alexnet_backbone", dtype=None, **kwargs):
        arguments = {key: value for key, value in locals().items()
                     if key not in ("self", "seed", "name", "dtype", "kwargs", "__class__")}
        misplaced = sorted(set(kwargs) & set(NOT_THE_BACKBONES))
        if misplaced:
            raise TypeError(f"AlexNetBackbone takes the convolutions' arguments, not "
                            f"{', '.join(misplaced)}: the head's are AlexNetImageClassifier's, "
                            f"the pixel statistics and test view its preprocessor's")
        stack = check_stack(arguments)
        images = keras.Input(shape=tuple(image_shape), name="images")
        features = conv_stack(images, stack, conv1_padding, pool_size, pool_strides, batch_norm,
                              LayerInitializers(init, seed), dtype)
        super().__init__(inputs=images, outputs=features, name=name, dtype=dtype, **kwargs)
        self.image_shape = tuple(int(side) for side in image_shape)
        self._arguments = {**arguments, "image_shape": list(self.image_shape),
                           **{key: [plain(value) for value in values]
                              for key, values in zip(STACKWISE, stack)}}

    def get_config(self) -> dict[str, Any]:
        return {**keras.Model.get_config(self), **self._arguments}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        if "num_classes" in config:  # a whole network saved under this name before the split
            return one_model_class().from_config(config)
        return cls(**config)


def conv_stack(x, stack: tuple[tuple, ...], conv1_padding: int, pool_size: int,
               pool_strides: int, batch_norm: bool, initializers: LayerInitializers, dtype=None):
    """conv1…conv5 on `x` (each with ReLU, batch norm, LRN and pooling as `stack` says), the
    layers named as every AlexNet of the package names them (`conv1`, `conv1_bn`, …)."""
    x = keras.layers.ZeroPadding2D(conv1_padding, name="conv1_pad")(x)
    for layer_name, filters, kernel, stride, groups, lrn, pool in zip(CONV_NAMES, *stack):
        x = conv_relu(x, filters, kernel, layer_name, initializers, strides=stride,
                      groups=groups, padding="valid" if layer_name == "conv1" else "same",
                      batch_norm=batch_norm, dtype=dtype)
        if lrn:
            x = LocalResponseNormalization(name=f"{layer_name}_lrn", dtype=dtype)(x)
        if pool:
            x = keras.layers.MaxPooling2D(pool_size, strides=pool_strides,
                                          name=f"{layer_name}_pool", dtype=dtype)(x)
    return x


def check_stack(arguments: dict[str, Any]) -> tuple[tuple, ...]:
    """The six per-convolution sequences of `arguments`, each checked to have five entries."""
    stack = tuple(tuple(arguments[key]) for key in STACKWISE)
    for key, values in zip(STACKWISE, stack):
        if len(values) != len(CONV_NAMES):
            raise ValueError(f"{key} must have {len(CONV_NAMES)} entries (conv1…conv5), got "
                             f"{len(values)}")
    return stack


def plain(value):
    """A JSON-plain `bool` or `int` of a stackwise entry."""
    return value if isinstance(value, bool) else int(value)


def eval_resize_side(model: keras.Model) -> Optional[int]:
    """The shorter side a larger image is resized to before the centre crop a model takes at
    test (its preprocessor's `test_crop_fraction`, or the deprecated whole network's); `None`:
    the image is resized to the model's input as a whole (any other Keras model too).

    Example:

    >>> eval_resize_side(keras_alexnet.AlexNetImageClassifier.from_arguments("paper", seed=0))
    256
    """
    fraction = getattr(getattr(model, "preprocessor", model), "test_crop_fraction", None)
    if fraction is None:
        return None
    return round(model.input_shape[1] / fraction)
