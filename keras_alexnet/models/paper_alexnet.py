"""`PaperAlexNet`: the network of Krizhevsky, Sutskever & Hinton (2012), for 224×224 ImageNet
images."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras

from keras_alexnet.models.backbone import AlexNetBackbone

PAPER_INPUT_SHAPE = (224, 224, 3)
PAPER_NUM_CLASSES = 1000
# The paper tests on the centre 224×224 of an image whose shorter side is resized to 256.
PAPER_CROP_FRACTION = 224 / 256
# Per-channel mean and std of ImageNet's training pixels on the raw 0–255 scale (the published
# 0–1 values ×255).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@keras.saving.register_keras_serializable(package="keras_alexnet")
class PaperAlexNet(AlexNetBackbone):
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
        super().__init__(**self.architecture(input_shape, groups, lrn), dropout=dropout,
                         num_classes=num_classes, init=init, mean=mean, std=std, seed=seed,
                         name=name, dtype=dtype, **kwargs)
        self.groups = groups
        self.lrn = lrn

    @staticmethod
    def architecture(input_shape: Sequence[int] = PAPER_INPUT_SHAPE, groups: int = 2,
                     lrn: bool = True) -> dict[str, Any]:
        """The backbone arguments that `PaperAlexNet`'s own arguments set (its layers, their
        sizes and its test view)."""
        if groups not in (1, 2):
            raise ValueError(f"groups must be 1 or 2, got {groups!r}")
        return {"image_shape": input_shape, "conv_filters": (96, 256, 384, 384, 256),
                "conv_kernel_sizes": (11, 5, 3, 3, 3), "conv_strides": (4, 1, 1, 1, 1),
                "conv_groups": (1, groups, 1, groups, groups),
                "conv_lrn": (lrn, lrn, False, False, False),
                "conv_pooling": (True, True, False, False, True), "conv1_padding": 2,
                "pool_size": 3, "pool_strides": 2, "dropout_before": ("fc7", "fc8"),
                "test_crop_fraction": PAPER_CROP_FRACTION}

    def get_config(self):
        # Keras' own part (name, trainable) and this class's arguments, which set the rest.
        return {**keras.Model.get_config(self), "num_classes": self.num_classes,
                "input_shape": list(self.image_shape), "groups": self.groups, "lrn": self.lrn,
                "init": self.init, "dropout": self.dropout, "mean": self.mean, "std": self.std,
                "seed": self.seed}
