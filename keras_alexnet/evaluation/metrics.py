"""Test metrics from class probabilities: accuracy (top-1, and top-5 for more than five classes),
error, loss, per-class accuracy, confusion matrix, and a run's `metrics.json`."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import keras
import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.data.image_sets import ImageSet, RunData
from keras_alexnet.evaluation.test_time import streamed_probabilities, test_time_views

TOP_K = 5  # the paper's second measure: the true class among the five most probable


def predict_probabilities(model: keras.Model, images: np.ndarray, batch_size: int = 500,
                          verbose: int = 0) -> np.ndarray:
    """Class probabilities (float32) of a logits model on raw-pixel `images`, dropout off."""
    logits = model.predict(images.astype("float32"), batch_size=batch_size, verbose=verbose)
    logits = logits.astype("float64")  # softmax in NumPy: nothing more to compile on JAX
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype("float32")


def test_metrics(probabilities: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str] = CLASS_NAMES) -> dict:
    """Accuracy and error (top-1; also top-5 with more than five classes), cross-entropy,
    per-class accuracy and confusion matrix (rows: true class).

    Example:

    >>> metrics = test_metrics(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), ["a", "b"])
    >>> metrics["test_accuracy"], metrics["test_error"]
    (0.5, 0.5)
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.argmax(probabilities, axis=-1)
    num_classes = len(class_names)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_probability = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    accuracy = float(np.mean(predicted == labels))
    top_k = {}
    if num_classes > TOP_K:
        # Fewer than TOP_K classes more probable than the true one (a tie does not push it out,
        # as `tf.math.in_top_k`).
        ahead = (probabilities > probabilities[np.arange(len(labels)), labels][:, None]).sum(-1)
        top_k_accuracy = float(np.mean(ahead < TOP_K))
        top_k = {"test_top5_accuracy": top_k_accuracy, "test_top5_error": 1.0 - top_k_accuracy}
    return {
        "test_accuracy": accuracy,
        "test_error": 1.0 - accuracy,
        **top_k,
        "test_loss": float(-np.mean(np.log(true_probability))),
        "per_class_accuracy": {name: float(acc) for name, acc in zip(class_names, per_class)},
        "confusion_matrix": confusion.tolist(),
    }


def steady_seconds(seconds: Sequence[float]) -> float:
    """The median of per-epoch `seconds` after the first (compiling) one, when there are more."""
    return float(np.median(seconds[1:] or seconds))


def run_metrics(model: keras.Model, data: RunData,
                history: dict[str, list[float]], config: TrainConfig, performance: dict) -> dict:
    """A run's `metrics.json`: the test metrics (with `config.test_time_augmentation`, predicted
    `config.eval_batch_size` images at a time), the single-view accuracies, which images were
    tested and how many, and the run's best validation accuracy, epochs, training time and
    speed (from its `history`) and fast-path settings (`performance`)."""
    probabilities_of = partial(predict_probabilities, model, batch_size=config.eval_batch_size)
    single, augmented, labels = test_probabilities(probabilities_of, data, config)
    single_view = test_metrics(single, labels, data.class_names)
    epoch_seconds = history["epoch_seconds"]
    return {
        **test_metrics(augmented, labels, data.class_names),
        **{f"{name}_single_view": single_view[name]
           for name in ("test_accuracy", "test_top5_accuracy") if name in single_view},
        "test_time_augmentation": config.test_time_augmentation,
        "test_split": data.test_split,
        "test_size": data.test_size,
        "best_val_accuracy": max(history["val_accuracy"]),
        "epochs_completed": len(history["epoch"]),
        "train_seconds": float(np.sum(epoch_seconds)),
        "train_images_per_second": data.train_size / steady_seconds(epoch_seconds),
        "performance": performance,
    }


def test_probabilities(probabilities_of, data: RunData,
                       config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single-view and test-time augmented probabilities of the test images, and their
    labels: CIFAR-10 in memory, or streamed through the paper's evaluation pipeline."""
    mode = config.test_time_augmentation
    if isinstance(data, ImageSet):
        from keras_alexnet.data.imagenet import CROP_SIZE, eval_dataset

        batches = eval_dataset(data.test, config.eval_batch_size, ten_crop=mode == "ten_crop")
        return streamed_probabilities(probabilities_of, batches.as_numpy_iterator(), mode,
                                      CROP_SIZE)
    return (*test_time_views(probabilities_of, data.split.x_test, mode, pad=config.pad),
            data.split.y_test)
