"""Test-set evaluation of a Keras model, a `.keras` checkpoint or an exported SavedModel, on one
centre view or on the paper's ten crops (4 corners + centre, and their mirrors)."""

from __future__ import annotations

import os
from typing import Callable, Iterator, Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.data import CLASS_NAMES, load_cifar10
from keras_alexnet.model import AlexNet  # noqa: F401  (registered: load_model rebuilds it)
from keras_alexnet.optimizer import TorchSGD  # noqa: F401  (registered: the checkpoint's optimizer)


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 500,
                          verbose: int = 0) -> np.ndarray:
    """Class probabilities (float32) of a logits model on raw-pixel `images`, dropout off."""
    logits = model.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits.astype("float32"), axis=-1))


def test_metrics(probabilities: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str] = CLASS_NAMES) -> dict:
    """Accuracy, cross-entropy, per-class accuracy and confusion matrix (rows: true class).

    Example:

    >>> test_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), ["a", "b"])["test_accuracy"]
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
             batch_size: int = 500, ten_crop: bool = False, ten_crop_pad: int = 4) -> dict:
    """Evaluates a model on CIFAR-10's 10,000 test images.

    Args:
        model: A Keras model, a `.keras` checkpoint path, or a SavedModel directory (a version
            directory, or a model directory whose newest version is used).
        data_dir: Local CIFAR-10 copy (see `data.load_cifar10`); `None`: tensorflow-datasets.
        batch_size: Images per inference batch.
        ten_crop: Average the paper's ten crops. The CIFAR model's own crop is 32×32 out of an
            image zero-padded by `ten_crop_pad` (its training augmentation), so the corners are the
            extreme crop offsets and the centre crop is the image itself.
        ten_crop_pad: Zero padding per side before the 32×32 crops.

    Returns:
        The `test_metrics` dict.

    Example:

    >>> metrics = evaluate("saved_models/alexnet_cifar10", data_dir="../shared/data")
    >>> metrics["test_accuracy"], metrics["per_class_accuracy"]["cat"]
    """
    if ten_crop_pad < 0:
        raise ValueError(f"ten_crop_pad must be >= 0, got {ten_crop_pad}")
    probabilities_of = _probability_function(model, batch_size)  # checks the model before the data
    data = load_cifar10(data_dir)
    if not ten_crop:
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


def _probability_function(model: Union[str, keras.Model],
                          batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """Maps uint8 images to class probabilities with a Keras model, `.keras` file or SavedModel."""
    if isinstance(model, keras.Model):
        return lambda images: predict_probabilities(model, images, batch_size)
    if not os.path.exists(model):
        raise FileNotFoundError(f"no model at {model}")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise ValueError(f"{model} is neither a .keras checkpoint nor a SavedModel directory")
        loaded = keras.saving.load_model(model, safe_mode=True)  # refuses Lambda code
        return lambda images: predict_probabilities(loaded, images, batch_size)
    from keras_alexnet.export import load_saved_model

    serve = load_saved_model(model)
    return lambda images: np.concatenate([
        serve(images=images[start:start + batch_size])["probabilities"].numpy()
        for start in range(0, len(images), batch_size)])
