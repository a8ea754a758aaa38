"""`evaluate()`: the test-set metrics of a Keras model, a `.keras` file or an exported
SavedModel."""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.config import TrainConfig, warn_renamed
from keras_alexnet.data.cifar10 import IMAGE_SHAPE, load_cifar10
from keras_alexnet.data.image_sets import load_image_set
from keras_alexnet.errors import ModelError
from keras_alexnet.evaluation.metrics import predict_probabilities, test_metrics, test_probabilities
from keras_alexnet.evaluation.test_time import (
    check_ten_crop_pad,
    streamed_probabilities,
    test_time_augmented,
)
from keras_alexnet.models.model_files import load_keras_model
from keras_alexnet.utils.arrays import in_batches


def evaluate(model: Union[str, keras.Model], data_dir: Optional[str] = None,
             batch_size: int = 500, ten_crop: Optional[bool] = None, ten_crop_pad: int = 4,
             test_time_augmentation: str = "none", config: Optional[TrainConfig] = None) -> dict:
    """Evaluates a model on CIFAR-10's 10,000 test images, or on the test images of the data set
    a paper-network run's `config` names.

    Args:
        model: A Keras model, a `.keras` checkpoint path, or a SavedModel directory (a version
            directory, or a model directory whose newest version is used).
        data_dir: Local CIFAR-10 copy (see `data.load_cifar10`); `None`: tensorflow-datasets.
        batch_size: Images per inference batch.
        ten_crop: Deprecated spelling of `test_time_augmentation="ten_crop"` (warns).
        ten_crop_pad: Zero padding per side before the ten 32×32 crops, 0 to 16.
        test_time_augmentation: `"none"`, `"flip"` (average each image's and its mirror
            image's probabilities) or `"ten_crop"` (average the paper's ten crops, which hold
            their mirror images already; the CIFAR model's own crop is 32×32 out of an image
            zero-padded by `ten_crop_pad`, its training augmentation, so the corners are the
            extreme crop offsets and the centre crop is the image itself).
        config: The `TrainConfig` of the run the model comes from; for a network that streams
            its images (`streams_images`: the paper's) its data set's test images are used
            (`data.image_sets`; `data_dir` overrides its `data_dir`), with the paper's test view
            (ten crops: of the 256×256 centre square).

    Returns:
        The `test_metrics` dict (top-5 accuracy and error too for more than five classes).

    Example:

    >>> metrics = evaluate("saved_models/alexnet_cifar10", data_dir="cifar-10-batches-py")
    >>> metrics["test_accuracy"], metrics["per_class_accuracy"]["cat"]
    """
    check_ten_crop_pad(ten_crop_pad)
    # The model is checked before the data is read.
    probabilities_of, image_shape = _probability_function(model, batch_size)
    mode = test_time_augmentation
    if ten_crop is not None:
        warn_renamed("evaluate(ten_crop=...)", 'evaluate(test_time_augmentation="ten_crop")')
        mode = "ten_crop" if ten_crop else mode
    if config is not None and config.streams_images:
        config = config.replace(data_dir=data_dir or config.data_dir, eval_batch_size=batch_size,
                                test_time_augmentation=mode)
        data = load_image_set(config)
        _, augmented, labels = test_probabilities(probabilities_of, data, config)
        return test_metrics(augmented, labels, data.class_names)
    if image_shape != IMAGE_SHAPE:
        raise ModelError(f"the model takes {'×'.join(map(str, image_shape))} images, not "
                         f"CIFAR-10's 32×32×3: evaluate the best.keras of its run, whose "
                         f"config.json names its data set")
    data = load_cifar10(data_dir)
    augmented = test_time_augmented(probabilities_of, mode, pad=ten_crop_pad)
    return test_metrics(augmented(data.x_test), data.y_test)


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
    def probabilities_of(images: np.ndarray) -> np.ndarray:
        return predict_probabilities(model, images, batch_size=len(images))

    batches = dataset.as_numpy_iterator() if hasattr(dataset, "as_numpy_iterator") else dataset
    _, probabilities, labels = streamed_probabilities(
        probabilities_of, batches, "ten_crop" if ten_crop else "none", crop_size)
    return test_metrics(probabilities, labels, class_names)


def _probability_function(model: Union[str, keras.Model], batch_size: int
                          ) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, ...]]:
    """Maps images to class probabilities with a Keras model, `.keras` file or SavedModel; also
    returns the image shape the model takes."""
    if isinstance(model, keras.Model):
        return (lambda images: predict_probabilities(model, images, batch_size),
                tuple(model.input_shape[1:]))
    if not os.path.exists(model):
        raise ModelError(f"no model at {model}")
    if os.path.isfile(model):
        if not model.endswith(".keras"):
            raise ModelError(f"{model} is neither a .keras checkpoint nor a SavedModel directory")
        loaded = load_keras_model(model)
        return (lambda images: predict_probabilities(loaded, images, batch_size),
                tuple(loaded.input_shape[1:]))
    from keras_alexnet.serving.export import load_saved_model

    serve = load_saved_model(model)
    (spec,) = serve.structured_input_signature[1].values()

    def served(images: np.ndarray) -> np.ndarray:  # the signature takes uint8 pixels
        images = np.clip(np.round(images), 0, 255).astype(np.uint8)
        return in_batches(lambda batch: serve(images=batch)["probabilities"].numpy(), images,
                          batch_size, serve.structured_outputs["probabilities"].shape[-1])

    return served, tuple(spec.shape[1:])
