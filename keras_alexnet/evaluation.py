"""Test-set evaluation of a Keras model, a `.keras` checkpoint or an exported SavedModel, on one
centre view or on the paper's ten crops (4 corners + centre, and their mirrors)."""

from __future__ import annotations

import json
import os
import zipfile
from functools import partial
from typing import Callable, Iterator, Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.config import TEST_TIME_AUGMENTATIONS, check_ten_crop_pad
from keras_alexnet.data import CLASS_NAMES, Split, load_cifar10
from keras_alexnet.errors import ConfigError, ModelError
from keras_alexnet.losses import SparseLabelSmoothingCrossentropy  # noqa: F401  (registered)
from keras_alexnet.model import (
    DENSE_UNITS,
    AlexNet,  # noqa: F401  (registered: load_model rebuilds it)
)
from keras_alexnet.optimizer import TorchSGD  # noqa: F401  (registered: the checkpoint's optimizer)


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 500,
                          verbose: int = 0) -> np.ndarray:
    """Class probabilities (float32) of a logits model on raw-pixel `images`, dropout off."""
    logits = model.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose)
    logits = logits.astype("float64")  # softmax in NumPy: nothing more to compile on JAX
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype("float32")


def test_time_augmented(probabilities_of: Callable[[np.ndarray], np.ndarray],
                        mode: str = "none") -> Callable[[np.ndarray], np.ndarray]:
    """`probabilities_of` with test-time augmentation: `"none"` returns it as it is; `"flip"`
    averages the probabilities of each image and of its left–right mirror image.

    Example:

    >>> flipped = test_time_augmented(lambda x: predict_probabilities(model, x), "flip")
    >>> probabilities = flipped(x_test)
    """
    if mode not in TEST_TIME_AUGMENTATIONS:
        raise ConfigError(f"test-time augmentation must be one of "
                         f"{', '.join(TEST_TIME_AUGMENTATIONS)}, got {mode!r}")
    if mode == "none":
        return probabilities_of

    def flip_averaged(images: np.ndarray) -> np.ndarray:
        mirrored = np.ascontiguousarray(images[:, :, ::-1])
        total = (np.asarray(probabilities_of(images), np.float64)
                 + np.asarray(probabilities_of(mirrored), np.float64))
        return (total / 2).astype(np.float32)

    return flip_averaged


def test_metrics(probabilities: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str] = CLASS_NAMES) -> dict:
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix (rows: true class).

    Example:

    >>> metrics = test_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), ["a", "b"])
    >>> metrics["test_accuracy"]
    0.5
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.argmax(probabilities, axis=-1)
    num_classes = len(class_names)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_probability = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float(np.mean(predicted == labels)),
        "test_loss": float(-np.mean(np.log(true_probability))),
        "per_class_accuracy": {name: float(acc) for name, acc in zip(class_names, per_class)},
        "confusion_matrix": confusion.tolist(),
    }


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

    >>> padded = np.pad(x_test, [(0, 0), (4, 4), (4, 4), (0, 0)])   # CIFAR: 32 crops of 40×40
    >>> ten_crop_probabilities(lambda x: predict_probabilities(model, x), padded, 32)
    """
    total = None
    for patch in ten_crops(images, crop_size):
        probabilities = np.asarray(probabilities_of(np.ascontiguousarray(patch)), dtype=np.float64)
        total = probabilities if total is None else total + probabilities
    return (total / 10).astype(np.float32)


def evaluate(model: Union[str, keras.Model], data_dir: Optional[str] = None,
             batch_size: int = 500, ten_crop: bool = False, ten_crop_pad: int = 4,
             test_time_augmentation: str = "none") -> dict:
    """Evaluates a model on CIFAR-10's 10,000 test images.

    Args:
        model: A Keras model, a `.keras` checkpoint path, or a SavedModel directory (a version
            directory, or a model directory whose newest version is used).
        data_dir: Local CIFAR-10 copy (see `data.load_cifar10`); `None`: tensorflow-datasets.
        batch_size: Images per inference batch.
        ten_crop: Average the paper's ten crops. The CIFAR model's own crop is 32×32 out of an
            image zero-padded by `ten_crop_pad` (its training augmentation), so the corners are the
            extreme crop offsets and the centre crop is the image itself.
        ten_crop_pad: Zero padding per side before the 32×32 crops, 0 to 16.
        test_time_augmentation: `"none"` or `"flip"` (average each image's and its mirror
            image's probabilities); ten crops hold their mirror images already.

    Returns:
        The `test_metrics` dict.

    Example:

    >>> metrics = evaluate("saved_models/alexnet_cifar10", data_dir="../shared/data")
    >>> metrics["test_accuracy"], metrics["per_class_accuracy"]["cat"]
    """
    check_ten_crop_pad(ten_crop_pad)
    probabilities_of = _probability_function(model, batch_size)  # checks the model before the data
    data = load_cifar10(data_dir)
    if not ten_crop:
        probabilities_of = test_time_augmented(probabilities_of, test_time_augmentation)
        return test_metrics(probabilities_of(data.x_test), data.y_test)
    pad = [(0, 0), (ten_crop_pad, ten_crop_pad), (ten_crop_pad, ten_crop_pad), (0, 0)]
    padded = np.pad(data.x_test, pad)
    return test_metrics(ten_crop_probabilities(probabilities_of, padded, data.x_test.shape[1]),
                        data.y_test)


def evaluate_dataset(model: keras.Model, dataset, class_names: Sequence[str],
                     ten_crop: bool = False, crop_size: Optional[int] = None) -> dict:
    """Evaluates a model on a batched `(images, labels)` dataset, e.g. `paper_data.eval_dataset`.

    Args:
        model: A logits model.
        dataset: A `tf.data.Dataset` (or any iterable) of `(images, labels)` batches.
        class_names: The dataset's class names, in label order.
        ten_crop: Average the ten `crop_size` patches of each image (the paper's test).
        crop_size: Side of the ten patches; required with `ten_crop`.

    Returns:
        The `test_metrics` dict.
    """
    if ten_crop and crop_size is None:
        raise ValueError("ten_crop needs crop_size")

    def probabilities_of(images: np.ndarray) -> np.ndarray:
        return predict_probabilities(model, images, batch_size=len(images))

    batches = dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset
    probabilities, labels = [], []
    for images, batch_labels in batches:
        probabilities.append(ten_crop_probabilities(probabilities_of, images, crop_size)
                             if ten_crop else probabilities_of(images))
        labels.append(batch_labels)
    return test_metrics(np.concatenate(probabilities), np.concatenate(labels), class_names)


def load_keras_model(path: str) -> keras.Model:
    """Loads a `.keras` model of this package in safe mode (no `Lambda` code runs), after
    `check_keras_archive`.

    Raises:
        ModelError: `path` is not a readable `.keras` model of this package.
    """
    check_keras_archive(path)
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        # TypeError: an unknown class or function, or a known class given bad arguments
        raise ModelError(f"{path} is not a readable .keras model: "
                         f"{' '.join(str(error).split())[:300]}") from error


KERAS_MODEL_CLASSES = ("keras_alexnet>AlexNet", "keras_alexnet>PaperAlexNet")
WEIGHTS_MEMBER = "model.weights.h5"  # in a .keras archive: the weights, float32


def check_keras_archive(path: str) -> None:
    """Checks, without building anything, that `path` is a `.keras` archive and, when it holds
    one of this package's networks, that its stored weights are as large as its config declares
    (a small file declaring a huge network is refused before any memory is taken for it).

    Raises:
        ModelError: It is not a zip archive, lacks `config.json` or the weights, or declares
            more weights than it stores.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            stored_bytes = archive.getinfo(WEIGHTS_MEMBER).file_size
    except zipfile.BadZipFile as error:
        raise ModelError(f"{path} is not a .keras model (not a zip archive)") from error
    except KeyError as error:
        raise ModelError(f"{path} is not a .keras model (it lacks config.json or "
                         f"{WEIGHTS_MEMBER})") from error
    except (OSError, ValueError) as error:
        raise ModelError(f"{path} is not a readable .keras model: {error}") from error
    if not isinstance(config, dict) or config.get("registered_name") not in KERAS_MODEL_CLASSES:
        return  # another Keras model: loaded as Keras loads it, in safe mode
    declared = _declared_weights_floor(config.get("config"))
    if declared is None or 4 * declared > stored_bytes:
        raise ModelError(f"{path} declares a network larger than the weights it stores "
                         f"({stored_bytes} bytes); it is damaged or not a trained model")


def _declared_weights_floor(config) -> Optional[int]:
    """A floor on the weights a model config declares (fc7's and fc8's kernels, and the
    paper network's fc6); `None` for sizes that are not positive integers."""
    try:
        classes, dense = int(config["num_classes"]), int(config.get("dense_units", DENSE_UNITS))
        height, width = (int(side) for side in config.get("input_shape", (32, 32, 3))[:2])
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if min(classes, dense, height, width) < 1:
        return None
    fc6 = DENSE_UNITS * 256 * (height // 64) * (width // 64) if "input_shape" in config else 0
    return dense * (dense + classes) + fc6


def _probability_function(model: Union[str, keras.Model],
                          batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Maps uint8 images to class probabilities with a Keras model, `.keras` file or SavedModel."""
    if isinstance(model, keras.Model):
        return lambda images: predict_probabilities(model, images, batch_size)
    if not os.path.exists(model):
        raise ModelError(f"no model at {model}")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise ModelError(f"{model} is neither a .keras checkpoint nor a SavedModel directory")
        loaded = load_keras_model(model)
        return lambda images: predict_probabilities(loaded, images, batch_size)
    from keras_alexnet.export import load_saved_model

    serve = load_saved_model(model)
    return lambda images: np.concatenate([
        serve(images=images[start:start + batch_size])["probabilities"].numpy()
        for start in range(0, len(images), batch_size)])


def steady_seconds(seconds: Sequence[float]) -> float:
    """The median of per-epoch `seconds` after the first (compiling) one, when there are more."""
    return float(np.median(seconds[1:] or seconds))


def run_metrics(model: keras.Model, split: Split, history: dict[str, list[float]],
                test_time_augmentation: str, performance: dict, batch_size: int = 500) -> dict:
    """A run's `metrics.json`: the test metrics (with `test_time_augmentation`, predicted
    `batch_size` images at a time), the single-view test accuracy, and the run's best validation
    accuracy, epochs, training time and speed (from its `history`) and fast-path settings
    (`performance`)."""
    probabilities_of = partial(predict_probabilities, model, batch_size=batch_size)
    single_view = probabilities_of(split.x_test)
    augmented = test_time_augmented(probabilities_of, test_time_augmentation)
    probabilities = single_view if augmented is probabilities_of else augmented(split.x_test)
    epoch_seconds = history["epoch_seconds"]
    return {
        **test_metrics(probabilities, split.y_test),
        "test_accuracy_single_view": test_metrics(single_view, split.y_test)["test_accuracy"],
        "test_time_augmentation": test_time_augmentation,
        "best_val_accuracy": max(history["val_accuracy"]),
        "epochs_completed": len(history["epoch"]),
        "train_seconds": float(np.sum(epoch_seconds)),
        "train_images_per_second": len(split.x_train) / steady_seconds(epoch_seconds),
        "performance": performance,
    }
