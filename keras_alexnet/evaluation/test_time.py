"""Test-time augmentation: the flip average and the paper's ten crops (4 corners + centre, and
their mirrors)."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from keras_alexnet.config import TEST_TIME_AUGMENTATIONS
from keras_alexnet.errors import ConfigError

MAX_TEN_CROP_PAD = 16  # the ten crops' padding: corners at most half an image off

CENTRE_CROP = 4  # the centre patch's place among `ten_crops`


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
    return lambda images: test_time_views(probabilities_of, images, mode, pad=pad)[1]


def test_time_views(probabilities_of: Callable[[np.ndarray], np.ndarray], images: np.ndarray,
                    mode: str, pad: int = 4, crop_size: Optional[int] = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The single-view and the test-time augmented class probabilities of a batch, each view
    predicted once (the single view is the flip's unmirrored image, the ten crops' centre).

    `mode` is `test_time_augmented`'s. For `"ten_crop"` with `crop_size`, `images` are squares
    larger than the model's input (the paper's 256×256, `data.imagenet.eval_dataset(...,
    ten_crop=True)`) and the single view is their centre `crop_size` patch; without it, they are
    padded by `pad` and cropped back to their own size (the CIFAR network's).
    """
    if mode == "none":
        single = probabilities_of(images)
        return single, single
    if mode == "flip":
        single = probabilities_of(images)
        mirrored = probabilities_of(np.ascontiguousarray(images[:, :, ::-1]))
        total = np.asarray(single, np.float64) + np.asarray(mirrored, np.float64)
        return single, (total / 2).astype(np.float32)
    if crop_size is None:
        crop_size = images.shape[1]
        images = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    views = [np.asarray(probabilities_of(np.ascontiguousarray(patch)), dtype=np.float64)
             for patch in ten_crops(images, crop_size)]
    total = views[0].copy()
    for view in views[1:]:
        total += view
    return views[CENTRE_CROP].astype(np.float32), (total / 10).astype(np.float32)


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
    return test_time_views(probabilities_of, images, "ten_crop", crop_size=crop_size)[1]


def streamed_probabilities(probabilities_of: Callable[[np.ndarray], np.ndarray],
                           batches: Iterable, mode: str = "none", crop_size: Optional[int] = None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single-view and test-time augmented class probabilities, and the labels, of
    `(images, labels)` batches.

    `mode` and `crop_size` are `test_time_views`'; for `"ten_crop"` the batches hold squares
    larger than the model's input and `crop_size` is required.
    """
    if mode == "ten_crop" and crop_size is None:
        raise ValueError("ten_crop needs crop_size")
    single, augmented, labels = [], [], []
    for images, batch_labels in batches:
        views = test_time_views(probabilities_of, images, mode, crop_size=crop_size)
        single.append(views[0])
        augmented.append(views[1])
        labels.append(batch_labels)
    return np.concatenate(single), np.concatenate(augmented), np.concatenate(labels)


def check_ten_crop_pad(pad: int, name: str = "ten_crop_pad") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `pad` is in
    0..`MAX_TEN_CROP_PAD`."""
    if not 0 <= pad <= MAX_TEN_CROP_PAD:
        raise ConfigError(f"{name} must be in 0..{MAX_TEN_CROP_PAD}, got {pad}")
