"""Test-set evaluation of a Keras model, a `.keras` checkpoint or an exported SavedModel."""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

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


def evaluate(model: Union[str, keras.Model], data_dir: Optional[str] = None,
             batch_size: int = 500) -> dict:
    """Evaluates a model on CIFAR-10's 10,000 test images.

    Args:
        model: A Keras model, a `.keras` checkpoint path, or a SavedModel directory (a version
            directory, or a model directory whose newest version is used).
        data_dir: Local CIFAR-10 copy (see `data.load_cifar10`); `None`: tensorflow-datasets.
        batch_size: Images per inference batch.

    Returns:
        The `test_metrics` dict.

    Example:

    >>> metrics = evaluate("saved_models/alexnet_cifar10", data_dir="../shared/data")
    >>> metrics["test_accuracy"], metrics["per_class_accuracy"]["cat"]
    """
    probabilities_of = _probability_function(model, batch_size)  # checks the model before the data
    data = load_cifar10(data_dir)
    return test_metrics(probabilities_of(data.x_test), data.y_test)


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
