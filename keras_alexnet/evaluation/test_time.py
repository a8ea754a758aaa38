"""Test-time augmentation: the flip average and the paper's ten crops (4 corners + centre, and
their mirrors)."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from keras_alexnet.config import TEST_TIME_AUGMENTATIONS
from keras_alexnet.errors import ConfigError


def test_time_augmented(probabilities_of: Callable[[np.ndarray], np.ndarray],
                        mode: str = "none", pad: int = 4) -> Callable[[np.ndarray], np.ndarray]:
    """`probabilities_of` with test-time augmentation: `"none"` returns it as it is; `"flip"`
    averages the probabilities of each image and of its left–right mirror image; `"ten_crop"`
    those of the ten crops of the image zero-padded by `pad` pixels per side (the CIFAR
    network's: crops of its own size, corners the farthest offsets of its training crops).

    Example:

    >>> left_bright = lambda x: np.stack([x[:, :, :16].mean((1, 2, 3)),
    ...                                   x[:, :, 16:].mean((1, 2, 3))], 1) / 255
    >>> images = np.zeros((1, 32, 32, 3)); images[:, :, :16] = 255
    >>> left_bright(images), test_time_augmented(left_bright, "flip")(images)
    (array([[1., 0.]]), array([[0.5, 0.5]], dtype=float32))
    """
    if mode not in TEST_TIME_AUGMENTATIONS:
        raise ConfigError(f"test-time augmentation must be one of "
                         f"{', '.join(TEST_TIME_AUGMENTATIONS)}, got {mode!r}")
    if mode == "none":
        return probabilities_of
    if mode == "ten_crop":
        return lambda images: ten_crop_probabilities(
            probabilities_of, np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)]),
            images.shape[1])

    def flip_averaged(images: np.ndarray) -> np.ndarray:
        mirrored = np.ascontiguousarray(images[:, :, ::-1])
        total = (np.asarray(probabilities_of(images), np.float64)
                 + np.asarray(probabilities_of(mirrored), np.float64))
        return (total / 2).astype(np.float32)

    return flip_averaged


def ten_crops(images: np.ndarray, crop_size: int) -> Iterator[np.ndarray]:
    """The paper's ten test patches of a batch: top-left, top-right, bottom-left, bottom-right,
    centre, then the same five mirrored left–right.

    Args:
        images: NHWC images at least `crop_size` high and wide.
        crop_size: Side of the square patches.

    Yields:
        Ten `[N, crop_size, crop_size, C]` arrays (views of `images`, no copies).
    """
    height, width = images.shape[1:3]
    if crop_size > min(height, width):
        raise ValueError(f"crop_size {crop_size} is larger than the {height}×{width} images")
    bottom, right = height - crop_size, width - crop_size
    corners = ((0, 0), (0, right), (bottom, 0), (bottom, right), (bottom // 2, right // 2))
    patches = [images[:, top:top + crop_size, left:left + crop_size] for top, left in corners]
    yield from patches
    for patch in patches:
        yield patch[:, :, ::-1]


def ten_crop_probabilities(probabilities_of: Callable[[np.ndarray], np.ndarray],
                           images: np.ndarray, crop_size: int) -> np.ndarray:
    """The mean of the class probabilities of the ten patches of `ten_crops(images, crop_size)`.

    Example:

    >>> x_test = np.zeros((5, 32, 32, 3), "uint8")
    >>> padded = np.pad(x_test, [(0, 0), (4, 4), (4, 4), (0, 0)])   # CIFAR: 32 crops of 40×40
    >>> uniform = lambda x: np.full((len(x), 10), 0.1)             # a model's probabilities
    >>> ten_crop_probabilities(uniform, padded, 32).shape
    (5, 10)
    """
    total = None
    for patch in ten_crops(images, crop_size):
        probabilities = np.asarray(probabilities_of(np.ascontiguousarray(patch)), dtype=np.float64)
        total = probabilities if total is None else total + probabilities
    return (total / 10).astype(np.float32)


def streamed_probabilities(probabilities_of: Callable[[np.ndarray], np.ndarray],
                           batches: Iterable, mode: str = "none", crop_size: Optional[int] = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single-view and test-time augmented class probabilities, and the labels, of
    `(images, labels)` batches.

    With `mode="ten_crop"` the batches hold squares larger than the model's input (the paper's
    256×256, `data.imagenet.eval_dataset(..., ten_crop=True)`): the single view is their centre
    `crop_size` patch, the augmented view the mean of their ten `crop_size` patches. Otherwise the
    images are the single view, and `mode` is `test_time_augmented`'s.
    """
    if mode == "ten_crop" and crop_size is None:
        raise ValueError("ten_crop needs crop_size")
    single, augmented, labels = [], [], []
    for images, batch_labels in batches:
        if mode == "ten_crop":
            top, left = (images.shape[1] - crop_size) // 2, (images.shape[2] - crop_size) // 2
            view = np.ascontiguousarray(images[:, top:top + crop_size, left:left + crop_size])
            single.append(probabilities_of(view))
            augmented.append(ten_crop_probabilities(probabilities_of, images, crop_size))
        else:
            single.append(probabilities_of(images))
            if mode != "none":
                augmented.append(test_time_augmented(probabilities_of, mode)(images))
        labels.append(batch_labels)
    single = np.concatenate(single)
    return single, np.concatenate(augmented) if augmented else single, np.concatenate(labels)
