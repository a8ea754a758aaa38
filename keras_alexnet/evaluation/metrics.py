"""Test metrics from class probabilities: accuracy, loss, per-class accuracy, confusion matrix, and
a run's `metrics.json`."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import keras
import numpy as np

from keras_alexnet.data.cifar10 import CLASS_NAMES, Split
from keras_alexnet.evaluation.test_time import test_time_augmented


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 500,
                          verbose: int = 0) -> np.ndarray:
    """Class probabilities (float32) of a logits model on raw-pixel `images`, dropout off."""
    logits = model.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose)
    logits = logits.astype("float64")  # softmax in NumPy: nothing more to compile on JAX
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype("float32")


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
