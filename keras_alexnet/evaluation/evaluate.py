"""`evaluate()`: the test-set metrics of a Keras model, a `.keras` file or an exported
SavedModel."""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.config import check_ten_crop_pad
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.errors import ModelError
from keras_alexnet.evaluation.metrics import predict_probabilities, test_metrics
from keras_alexnet.evaluation.model_files import load_keras_model
from keras_alexnet.evaluation.test_time import ten_crop_probabilities, test_time_augmented


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
    """Evaluates a model on a batched `(images, labels)` dataset, e.g. `data.imagenet.eval_dataset`.

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
        raise ModelError(f"no model at {model}")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise ModelError(f"{model} is neither a .keras checkpoint nor a SavedModel directory")
        loaded = load_keras_model(model)
        return lambda images: predict_probabilities(loaded, images, batch_size)
    from keras_alexnet.serving.export import load_saved_model

    serve = load_saved_model(model)
    return lambda images: np.concatenate([
        serve(images=images[start:start + batch_size])["probabilities"].numpy()
        for start in range(0, len(images), batch_size)])
