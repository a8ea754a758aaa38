"""`AlexNetNetwork`: a whole AlexNet as one model (pixel statistics, convolutions and head), the
layout of the deprecated `AlexNet` and `PaperAlexNet` and of the models and presets saved before
the backbone, task and preprocessor split (`AlexNetImageClassifier` replaces it)."""

from __future__ import annotations

from typing import Optional, Sequence

import keras

from keras_alexnet.models.backbone import STACKWISE, check_stack, conv_stack, plain
from keras_alexnet.models.initializers import LayerInitializers
from keras_alexnet.models.layers import (
    DENSE_NAMES,
    DENSE_UNITS,
    check_crop_fraction,
    check_head,
    classifier_head,
    standardize,
)
from keras_alexnet.models.preset_files import PresetMixin
from keras_alexnet.models.preset_mapping import LayerSizes


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNetNetwork(LayerSizes, PresetMixin, keras.Model):
    """A whole AlexNet in one model (the deprecated layout): raw pixels → per-channel
    standardisation → five convolutions (each with ReLU, optionally batch norm or LRN, some
    followed by max-pooling) → flatten → fc6 → fc7 → fc8 logits, with dropout before the dense
    layers `dropout_before` names.

    Every difference between the networks is one of these arguments (keras-hub's stackwise
    style: one entry per convolution), and what the code around a model needs of it, it asks the
    model: `image_shape` (what it takes) and `test_crop_fraction` (its test view of a larger
    image). The pixel statistics (`mean`, `std`) are the data set's, not the architecture's. The
    model takes raw 0–255 pixels (float32; uint8 is cast), so an exported model needs no
    preprocessing, and gives logits, in float32 also under a mixed-precision policy. The
    defaults are the seed's CIFAR-10 network (`AlexNet()`, but with pixel statistics 0 and 1).

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
        dense_units: Width of fc6 and fc7.
        dropout: Dropout rate.
        dropout_before: The dense layers (`"fc6"`, `"fc7"`, `"fc8"`) dropout comes before.
        test_crop_fraction: At test, a larger image's shorter side is resized to
            `image_shape`'s side ÷ this, and its centre `image_shape` cut (the paper's 224 of
            256: 0.875); `None`: the whole image is resized to `image_shape`.
        num_classes: Number of output logits.
        init: `"torch"` (PyTorch's defaults) or `"paper"` (N(0, 0.01); biases 1 in conv2, conv4,
            conv5, fc6, fc7); see `initializers.LayerInitializers`.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).
        seed: Seed of the initialisation; `None` draws a fresh one.
        name: Model name.
        dtype: The dtype policy of every layer but the input standardisation and the logits
            (float32 always); `None`: Keras' global policy.

    Example:

    >>> model = AlexNetNetwork(image_shape=(64, 64, 3), conv_filters=(32, 64, 96, 96, 64),
    ...                        conv_kernel_sizes=(5, 3, 3, 3, 3), conv_strides=(2, 1, 1, 1, 1),
    ...                        dense_units=256, num_classes=100, mean=(127,) * 3,
    ...                        std=(64,) * 3, seed=0)
    >>> model.predict(np.zeros((2, 64, 64, 3), "uint8"), verbose=0).shape
    (2, 100)
    """

    def __init__(self, image_shape: Sequence[int] = (32, 32, 3),
                 conv_filters: Sequence[int] = (64, 192, 384, 256, 256),
                 conv_kernel_sizes: Sequence[int] = (3, 3, 3, 3, 3),
                 conv_strides: Sequence[int] = (2, 1, 1, 1, 1),
                 conv_groups: Sequence[int] = (1, 1, 1, 1, 1),
                 conv_lrn: Sequence[bool] = (False,) * 5,
                 conv_pooling: Sequence[bool] = (True, True, False, False, True),
                 conv1_padding: int = 1, pool_size: int = 2, pool_strides: int = 2,
                 batch_norm: bool = False, dense_units: int = DENSE_UNITS, dropout: float = 0.5,
                 dropout_before: Sequence[str] = DENSE_NAMES,
                 test_crop_fraction: Optional[float] = None, num_classes: int = 10,
                 init: str = "torch", mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), seed: Optional[int] = None,
                 name: str = "alexnet", dtype=None, **kwargs):
        stack = _check_architecture(locals())
        initializers = LayerInitializers(init, seed)
        images = keras.Input(shape=tuple(image_shape), name="images")
        x = conv_stack(standardize(images, mean, std), stack, conv1_padding, pool_size,
                       pool_strides, batch_norm, initializers, dtype)
        x = classifier_head(x, num_classes, dense_units, dropout, dropout_before, initializers,
                            dtype)
        super().__init__(inputs=images, outputs=x, name=name, dtype=dtype, **kwargs)
        self.image_shape = tuple(int(side) for side in image_shape)
        self.test_crop_fraction = test_crop_fraction
        self.num_classes = num_classes
        self.init = init
        self.dropout = dropout
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.seed = seed
        self._architecture = {
            **{key: [plain(value) for value in stack_values]
               for key, stack_values in zip(STACKWISE, stack)},
            "conv1_padding": conv1_padding, "pool_size": pool_size, "pool_strides": pool_strides,
            "batch_norm": batch_norm, "dense_units": int(dense_units),
            "dropout_before": list(dropout_before)}

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                **self._architecture, "test_crop_fraction": self.test_crop_fraction,
                "num_classes": self.num_classes, "init": self.init, "dropout": self.dropout,
                "mean": self.mean, "std": self.std, "seed": self.seed}


def _check_architecture(arguments: dict) -> tuple[tuple, ...]:
    """The per-convolution sequences, each checked to have five entries; `ValueError` for an
    argument out of range."""
    check_head(arguments["num_classes"], arguments["dropout"], arguments["dense_units"],
               arguments["dropout_before"])
    check_crop_fraction(arguments["test_crop_fraction"])
    return check_stack(arguments)
