"""`AlexNetImageClassifierPreprocessor`: what a task does to raw pixels before its backbone —
the training pixels' statistics, and the test view that brings an image of any size to the
network's input."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import keras
import numpy as np

from keras_alexnet.models.layers import check_crop_fraction, normalization
from keras_alexnet.models.preset_mapping import PreprocessorPresets


@keras.saving.register_keras_serializable(package="keras_alexnet")
class AlexNetImageClassifierPreprocessor(PreprocessorPresets, keras.layers.Layer):
    """Raw 0–255 pixels (uint8 or float) → per-channel standardised float32, and the test view.

    The task calls it first, so a task (and its exports) takes raw pixels. Called, it
    standardises images already of `image_shape`; `test_view` brings images of any size there
    first: the whole image resized to `image_shape`, or with `test_crop_fraction` its shorter
    side resized to `image_shape`'s side ÷ the fraction and the centre cut (the paper's 224 of
    256).

    Args:
        image_shape: `(height, width, 3)` of the network's input.
        mean: Per-channel mean of the training pixels (0–255 scale).
        std: Per-channel standard deviation of the training pixels (0–255 scale).
        test_crop_fraction: The test view's crop (0, 1]; `None`: resize the whole image.

    Example:

    >>> preprocessor = AlexNetImageClassifierPreprocessor(mean=(128,) * 3, std=(64,) * 3)
    >>> float(preprocessor(np.full((1, 32, 32, 3), 192, "uint8"))[0, 0, 0, 0])
    1.0
    """

    def __init__(self, image_shape: Sequence[int] = (32, 32, 3),
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 test_crop_fraction: Optional[float] = None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("name", "alexnet_preprocessor")
        super().__init__(**kwargs)
        check_crop_fraction(test_crop_fraction)
        self.image_shape = tuple(int(side) for side in image_shape)
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]
        self.test_crop_fraction = test_crop_fraction
        self.normalize = normalization(self.mean, self.std)

    def build(self, input_shape):
        self.normalize.build(input_shape)

    def call(self, images):
        return self.normalize(images)

    @property
    def shorter_side(self) -> Optional[int]:
        """The side the test view resizes an image's shorter side to; `None`: no crop."""
        if self.test_crop_fraction is None:
            return None
        return round(self.image_shape[0] / self.test_crop_fraction)

    def test_view(self, images: np.ndarray) -> np.ndarray:
        """Images of any size (a batch, HWC, 0–255) as the network sees them at test, uint8 of
        `image_shape` (`data.imagenet.eval_view`, bilinear, antialiased)."""
        images = np.asarray(images)
        if images.shape[1:3] == self.image_shape[:2]:
            return images
        from keras_alexnet.data.imagenet import eval_view

        return np.stack([np.round(np.asarray(eval_view(image, self.image_shape[0],
                                                       self.shorter_side))).astype("uint8")
                         for image in images])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "image_shape": list(self.image_shape), "mean": self.mean,
                "std": self.std, "test_crop_fraction": self.test_crop_fraction}
