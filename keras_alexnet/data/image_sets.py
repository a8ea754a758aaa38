"""The data set of a paper-network run, streamed: CIFAR-10, a tensorflow-datasets image set or
a folder of images, as training, validation and test splits of `(uint8 image, int64 label)`.

- `"cifar10"`: the seeded split's 40,000 training and 10,000 validation images; its 10,000 test
  images.
- a tfds name with `validation` and `test` splits: `train`, `validation`, `test`.
- a tfds name with one of them (`imagenet2012`, `imagenette`): `train` less its last
  `validation_size` images, which validate; the test images are the split it has.
- a directory of class folders (`data.image_folder`): a seeded permutation of its images; its
  last `validation_size` are the test images, the `validation_size` before them validate, the
  rest train (as the test images never choose the checkpoint or drive the schedule).

`train_subset` keeps the first N training images. `ImageSet.test_split` says which images the
test metrics come from. The pixel statistics (mean, std, the RGB covariance's eigen-decomposition
that the PCA jitter uses) are the training split's own, from its first `STATS_IMAGES` images.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Union

import numpy as np

from keras_alexnet.config import CIFAR10, TrainConfig
from keras_alexnet.data.cifar10 import CLASS_NAMES, PixelStats, PreparedData, prepare
from keras_alexnet.data.image_folder import read_image_folder
from keras_alexnet.data.imagenet import (
    center_crop,
    decode_image_file,
    load_tfds,
    resize_shorter_side,
)
from keras_alexnet.errors import DataError

STATS_IMAGES = 1000  # training images the pixel statistics are computed from
STATS_SIDE = 64  # …each resized to this shorter side and centre-cropped square first
TFDS_SHUFFLE_BUFFER = 1000  # decoded images a tfds set's training pipeline shuffles (its files too)


@dataclasses.dataclass(frozen=True)
class ImageSet:
    """A data set as three unbatched `tf.data.Dataset`s of `(uint8 HWC image, int64 label)`.

    Attributes:
        class_names: The class names in label order.
        train: The training images (in one order, or, for a folder or a tfds set, their files
            in a new order each pass).
        validation: The validation images.
        test: The test images.
        train_size: Images in `train`.
        validation_size: Images in `validation`.
        test_size: Images in `test`.
        test_split: Where `test` comes from: `"test"`, `"validation"` (a tfds set's) or
            `"held-out test"` (a folder's, held out apart from `validation`).
        stats: The training images' `PixelStats`.
        shuffle_buffer: Decoded images the training pipeline shuffles (`train` itself is read
            in a new order each pass where it is shuffled before decoding: a folder's files, a
            tfds set's files; 0: no buffer).
    """

    class_names: tuple[str, ...]
    train: Any
    validation: Any
    test: Any
    train_size: int
    validation_size: int
    test_size: int
    test_split: str
    stats: PixelStats
    shuffle_buffer: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


RunData = Union[PreparedData, ImageSet]  # CIFAR-10 in memory, or streamed images


def load_run_data(config: TrainConfig) -> RunData:
    """What a run of `config` trains on: its images streamed (`load_image_set`) for a network
    that streams them (`TrainConfig.streams_images`: the paper's), else CIFAR-10 in memory
    (`cifar10.prepare`)."""
    return load_image_set(config) if config.streams_images else prepare(config)


def load_image_set(config: TrainConfig) -> ImageSet:
    """The data set `config.dataset` names, split as the module docstring says.

    Raises:
        DataError: The data set is missing, not image classification, too small for
            `validation_size` (a folder: twice `validation_size`), or (a folder) has fewer
            than two classes or an empty class.

    Example:

    >>> data = load_image_set(TrainConfig.from_recipe("paper", data_dir="cifar-10-batches-py"))
    >>> data.class_names[:2], data.train_size, data.test_split
    (('airplane', 'automobile'), 40000, 'test')
    """
    if config.dataset == CIFAR10:
        return _cifar10(config)
    if _is_path(config.dataset):
        return _folder(config)
    return _tfds(config)


def _is_path(dataset: str) -> bool:
    """A directory, or a name written as a path; tfds names (`imagenette/320px-v2`) are not."""
    return os.path.isdir(dataset) or dataset.startswith((".", "/", "~"))


def _cifar10(config: TrainConfig) -> ImageSet:
    import tensorflow as tf

    prepared = prepare(config)
    split = prepared.split
    slices = tf.data.Dataset.from_tensor_slices
    return ImageSet(CLASS_NAMES, slices((split.x_train, split.y_train)),
                    slices((split.x_val, split.y_val)), slices((split.x_test, split.y_test)),
                    len(split.x_train), len(split.x_val), len(split.x_test), "test",
                    prepared.stats, len(split.x_train))


def _folder(config: TrainConfig) -> ImageSet:
    import tensorflow as tf

    folder = read_image_folder(os.path.expanduser(config.dataset))
    train, validation, test = _held_out(len(folder.paths), config)
    # The names' own bytes: a tensor of `str` paths would fail on a name that is not UTF-8.
    paths, labels = np.asarray([os.fsencode(path) for path in folder.paths], object), folder.labels

    def images(indices: np.ndarray, shuffle: bool = False):
        files = tf.data.Dataset.from_tensor_slices((paths[indices], labels[indices]))
        if shuffle:  # the file names, every pass: no buffer of decoded images needed
            files = files.shuffle(len(indices), seed=config.seed, reshuffle_each_iteration=True)
        return (files.map(lambda path, label: (decode_image_file(path), label),
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .ignore_errors(log_warning=True))  # a file whole but corrupt inside

    return _image_set(config, folder.class_names, images(train, shuffle=True),
                      images(validation), images(test), (len(train), len(validation), len(test)),
                      "held-out test", shuffle_buffer=0)


def _held_out(count: int, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the training, validation and test images of a folder: a seeded permutation
    whose last `validation_size` test and the `validation_size` before them validate."""
    size = config.validation_size
    if 2 * size >= count:
        raise DataError(f"validation_size {size} leaves no training images (the data set "
                        f"{config.dataset} has {count}, of which {size} validate and {size} test)")
    order = np.random.RandomState(config.seed).permutation(count)
    train, validation, test = order[:-2 * size], order[-2 * size:-size], order[-size:]
    return train[:config.train_subset], validation, test


def _tfds(config: TrainConfig) -> ImageSet:
    name, data_dir = config.dataset, config.data_dir
    _, info = load_tfds(name, "train", data_dir)
    splits = info.splits
    total = splits["train"].num_examples
    if "validation" in splits and "test" in splits:
        train_split, validation_split, test_split = "train", "validation", "test"
        train_size, validation_size = total, splits["validation"].num_examples
    elif "validation" in splits or "test" in splits:
        test_split = "validation" if "validation" in splits else "test"
        if config.validation_size >= total:
            raise DataError(f"validation_size {config.validation_size} leaves no training "
                            f"images (the data set {name} has {total})")
        train_size, validation_size = total - config.validation_size, config.validation_size
        train_split, validation_split = f"train[:{train_size}]", f"train[{train_size}:]"
    else:
        raise DataError(f"{name} has no validation or test split to test on")
    test_size = splits[test_split].num_examples
    if config.train_subset is not None and config.train_subset < train_size:
        train_size = config.train_subset
        train_split = f"train[:{train_size}]"
    train, _ = load_tfds(name, train_split, data_dir, shuffle_files=True, seed=config.seed)
    validation, _ = load_tfds(name, validation_split, data_dir)
    test, _ = load_tfds(name, test_split, data_dir)
    return _image_set(config, tuple(info.features["label"].names), train, validation, test,
                      (train_size, validation_size, test_size), test_split,
                      TFDS_SHUFFLE_BUFFER)


def _image_set(config: TrainConfig, class_names, train, validation, test,
               sizes: tuple[int, int, int], test_split: str, shuffle_buffer: int) -> ImageSet:
    """The `ImageSet` of these splits (labels as int64), `sizes` their image counts."""
    import tensorflow as tf

    def cast(image, label):
        return image, tf.cast(label, tf.int64)

    train, validation, test = (split.map(cast) for split in (train, validation, test))
    return ImageSet(tuple(class_names), train, validation, test, *sizes,
                    test_split, sample_stats(train), shuffle_buffer)


def sample_stats(images, count: int = STATS_IMAGES) -> PixelStats:
    """The `PixelStats` of the first `count` images of an `(image, label)` dataset, each resized to
    `STATS_SIDE` on its shorter side and centre-cropped square."""
    import tensorflow as tf

    def small(image, _):
        return tf.cast(center_crop(resize_shorter_side(image, STATS_SIDE), STATS_SIDE), tf.uint8)

    sample = images.take(count).map(small, num_parallel_calls=tf.data.AUTOTUNE).batch(count)
    return PixelStats.from_images(next(iter(sample)).numpy())
