"""CIFAR-10: loading (tensorflow-datasets or a local copy), the seeded split, pixel statistics,
and `prepare(config)` (all three for a run).

A local copy is the official "CIFAR-10 python version": a `cifar-10-batches-py` directory of
pickled batches, or the `cifar-10-python.tar.gz` archive that holds it. The pickles are read with
an unpickler that allows only the numpy array reconstruction the format needs, so a crafted file
cannot run code.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import pickle
import tarfile
import tempfile
from typing import Optional

import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.tfds_download import prepare_tfds
from keras_alexnet.errors import DataError

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SHAPE = (32, 32, 3)
DATA_ENV_VAR = "KERAS_ALEXNET_DATA"
BATCHES_DIR = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
GZIP_MAGIC = b"\x1f\x8b"
# The official archive is 163 MiB and unpacks to 178 MiB; a file or its content beyond this is
# not CIFAR-10, and is refused before it is decompressed any further.
MAX_ARCHIVE_BYTES = 256 * 2 ** 20


@dataclasses.dataclass(frozen=True)
class Cifar10:
    """CIFAR-10 as uint8 NHWC images and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclasses.dataclass(frozen=True)
class Split:
    """The seeded train/validation split of CIFAR-10's training images, plus its test set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclasses.dataclass(frozen=True)
class PixelStats:
    """Per-channel mean/std and the RGB covariance's eigen-decomposition, on raw 0–255 pixels.

    `eigenvalues` are ascending; column `i` of `eigenvectors` belongs to `eigenvalues[i]`.
    """

    mean: np.ndarray
    std: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @classmethod
    def from_images(cls, images: np.ndarray, chunk: int = 4096) -> "PixelStats":
        """Computes the statistics of uint8 NHWC `images` in one float64 pass."""
        count = 0
        total = np.zeros(3)
        outer = np.zeros((3, 3))
        for start in range(0, len(images), chunk):
            pixels = images[start:start + chunk].reshape(-1, 3).astype(np.float64)
            count += len(pixels)
            total += pixels.sum(axis=0)
            outer += pixels.T @ pixels
        mean = total / count
        covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        return cls(
            mean=mean.astype(np.float32),
            std=np.sqrt(np.diag(covariance)).astype(np.float32),
            eigenvalues=eigenvalues.astype(np.float32),
            eigenvectors=eigenvectors.astype(np.float32),
        )


@dataclasses.dataclass(frozen=True)
class PreparedData:
    """What a run trains on: the seeded split and its training pixels' statistics."""

    split: Split
    stats: PixelStats

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def test_split(self) -> str:
        """Which images the test metrics come from (as `ImageSet.test_split`)."""
        return "test"

    @property
    def test_size(self) -> int:
        """Images the test metrics come from."""
        return len(self.split.x_test)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def train_size(self) -> int:
        return len(self.split.x_train)


def prepare(config: TrainConfig) -> PreparedData:
    """Loads CIFAR-10 (`config.data_dir`), splits it as the config says and computes the
    training split's pixel statistics: the data preparation of `train()`, the report and the
    notebook.

    Example:

    >>> data = prepare(TrainConfig(data_dir="cifar-10-batches-py"))
    >>> len(data.split.x_train), data.stats.mean.round(1)
    (40000, array([125.3, 122.9, 113.7], dtype=float32))
    """
    split = split_train_validation(load_cifar10(config.data_dir), config.validation_size,
                                   config.seed, config.train_subset)
    return PreparedData(split, PixelStats.from_images(split.x_train))


def load_cifar10(data_dir: Optional[str] = None) -> Cifar10:
    """Loads CIFAR-10 from a local copy or, with none given, from tensorflow-datasets.

    Args:
        data_dir: A `cifar-10-batches-py` directory, a directory holding it or
            `cifar-10-python.tar.gz`, or that archive itself. `None` uses `$KERAS_ALEXNET_DATA`
            when set, else tensorflow-datasets (which downloads CIFAR-10 once).

    Raises:
        DataError: The copy is missing, corrupt or not CIFAR-10.

    Example:

    >>> data = load_cifar10("cifar-10-batches-py")
    >>> data.x_train.shape, data.x_test.shape
    ((50000, 32, 32, 3), (10000, 32, 32, 3))
    """
    data_dir = data_dir or os.environ.get(DATA_ENV_VAR) or None
    if data_dir is None:
        return _load_tfds()
    return _load_local(os.path.expanduser(data_dir))


def split_train_validation(data: Cifar10, validation_size: int, seed: int,
                           train_subset: Optional[int] = None) -> Split:
    """Splits the training images by a seeded permutation: the last `validation_size` validate.

    `train_subset` keeps only the first N images of the training part (smoke runs).
    """
    if validation_size >= len(data.x_train):
        raise DataError(f"validation_size {validation_size} leaves no training images "
                        f"(the data set has {len(data.x_train)})")
    order = np.random.RandomState(seed).permutation(len(data.x_train))
    train, val = order[:-validation_size], order[-validation_size:]
    if train_subset is not None:
        train = train[:train_subset]
    return Split(data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val],
                 data.x_test, data.y_test)


def _load_tfds() -> Cifar10:
    import tensorflow_datasets as tfds

    prepare_tfds("cifar10")
    try:
        splits = tfds.load("cifar10", split=["train", "test"], as_supervised=True)
        (x_train, y_train), (x_test, y_test) = [
            tfds.as_numpy(split.batch(60_000).get_single_element()) for split in splits]
    except Exception as error:  # tfds raises many kinds: network, checksum, disk.
        raise DataError(f"could not get CIFAR-10 through tensorflow-datasets ({error}); "
                        f"pass a local copy with --data-dir or ${DATA_ENV_VAR}") from error
    return Cifar10(x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64))


def _load_local(path: str) -> Cifar10:
    if os.path.isfile(path):
        return _load_archive(path)
    if not os.path.isdir(path):
        raise DataError(f"CIFAR-10 data not found: {path} does not exist")
    for candidate in (path, os.path.join(path, BATCHES_DIR)):
        if os.path.isfile(os.path.join(candidate, TRAIN_BATCHES[0])):
            return _load_batches_dir(candidate)
    if os.path.isfile(os.path.join(path, ARCHIVE_NAME)):
        return _load_archive(os.path.join(path, ARCHIVE_NAME))
    raise DataError(f"{path} is not a CIFAR-10 copy: expected {BATCHES_DIR}/ with "
                    f"{TRAIN_BATCHES[0]}…{TRAIN_BATCHES[-1]} and {TEST_BATCH}, or {ARCHIVE_NAME}")


def _load_archive(path: str) -> Cifar10:
    _check_archive_file(path)
    with tempfile.TemporaryDirectory(prefix="keras_alexnet_") as scratch:
        try:
            with tarfile.open(path, "r:gz") as archive:
                archive.extractall(scratch, members=_checked_members(archive, path),
                                   filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"{path} is not a readable CIFAR-10 archive: {error}") from error
        batches = os.path.join(scratch, BATCHES_DIR)
        if not os.path.isdir(batches):
            raise DataError(f"{path} does not contain {BATCHES_DIR}/")
        return _load_batches_dir(batches)


def _check_archive_file(path: str) -> None:
    """`DataError` unless `path` is a gzip file no larger than `MAX_ARCHIVE_BYTES`, checked from
    its size and first bytes before any is decompressed."""
    try:
        with open(path, "rb") as file:
            size, magic = os.fstat(file.fileno()).st_size, file.read(len(GZIP_MAGIC))
    except OSError as error:
        raise DataError(f"cannot read the CIFAR-10 archive {path}: "
                        f"{error.strerror or error}") from error
    if magic != GZIP_MAGIC:
        raise DataError(f"{path} is not a CIFAR-10 archive: not a gzip file")
    if size > MAX_ARCHIVE_BYTES:
        raise DataError(f"{path} is not a CIFAR-10 archive: {size:,} bytes, over the "
                        f"{MAX_ARCHIVE_BYTES:,} of the official one with room to spare")


def _checked_members(archive: tarfile.TarFile, path: str) -> list[tarfile.TarInfo]:
    """The archive's members, read one header at a time and refused as soon as one points
    outside it or they hold more than `MAX_ARCHIVE_BYTES` in all (before any is extracted)."""
    members, total = [], 0
    for member in archive:
        if os.path.isabs(member.name) or ".." in member.name.split("/"):
            raise DataError(f"{path} is not a safe CIFAR-10 archive: member {member.name!r} "
                            f"points outside it")
        total += member.size
        if total > MAX_ARCHIVE_BYTES:
            raise DataError(f"{path} is not a CIFAR-10 archive: it unpacks to more than "
                            f"{MAX_ARCHIVE_BYTES:,} bytes")
        members.append(member)
    return members


def _load_batches_dir(path: str) -> Cifar10:
    train = [_read_batch(os.path.join(path, name)) for name in TRAIN_BATCHES]
    x_test, y_test = _read_batch(os.path.join(path, TEST_BATCH))
    return Cifar10(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   x_test, y_test)


class _BatchUnpickler(pickle.Unpickler):
    """Resolves only the globals a CIFAR-10 batch needs: numpy array reconstruction, and
    `_codecs.encode`, with which Python 3 pickles `bytes` at protocol 2 (a pure function)."""

    # The function NumPy pickles its arrays with, found through the pickle protocol: NumPy 1
    # names it `numpy.core.multiarray._reconstruct`, NumPy 2 `numpy._core.multiarray…`, and a
    # batch may name either.
    _RECONSTRUCT = np.zeros(0).__reduce__()[0]
    _ALLOWED = {
        ("_codecs", "encode"): codecs.encode,
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}") from None


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads and checks one batch file; returns uint8 NHWC images and int64 labels."""
    if not os.path.isfile(path):
        raise DataError(f"CIFAR-10 batch missing: {path}")
    try:
        with open(path, "rb") as file:
            batch = _BatchUnpickler(file, encoding="bytes").load()
    except Exception as error:  # Any unpickling failure means a corrupt or hostile file.
        raise DataError(f"{path} is not a CIFAR-10 batch: {error}") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch: no b'data' and b'labels' entries")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: data must be uint8 of shape (N, 3072), "
                        f"got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: expected {len(data)} integer labels, "
                        f"got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataError(f"{path}: labels must be in 0..{NUM_CLASSES - 1}, "
                        f"got {labels.min()}..{labels.max()}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)
