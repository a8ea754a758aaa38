"""keras_alexnet: the seed blog's CIFAR-10 AlexNet in Keras 3 — train, evaluate, export, serve.

Example:

>>> import keras_alexnet
>>> result = keras_alexnet.train(epochs=1, train_subset=512, data_dir="../shared/data")
>>> result.metrics["test_accuracy"]

`TrainConfig` is imported eagerly; everything that needs Keras is imported on first use of any
other name (so the command line answers a bad flag at once). To load a saved `.keras` file in a
fresh process, touch the package first, e.g. `keras_alexnet.AlexNet`: that registers the
package's classes with Keras.
"""

import importlib

from keras_alexnet.config import TrainConfig, presets
from keras_alexnet.errors import (
    ConfigError,
    DataError,
    ExportError,
    ImageError,
    KerasAlexNetError,
    ModelError,
    PeerLost,
    ServingError,
    TrainingDiverged,
    TrainingError,
)

__version__ = "0.1.0"

_LAZY = {
    "AlexNet": "keras_alexnet.models.alexnet",
    "PaperAlexNet": "keras_alexnet.models.paper_alexnet",
    "LocalResponseNormalization": "keras_alexnet.models.layers",
    "build_model": "keras_alexnet.models.build",
    "PCAColorJitter": "keras_alexnet.data.augment",
    "RandomPadCrop": "keras_alexnet.data.augment",
    "RandomHorizontalFlip": "keras_alexnet.data.augment",
    "Cutout": "keras_alexnet.data.augment",
    "build_augmentation": "keras_alexnet.data.augment",
    "SparseLabelSmoothingCrossentropy": "keras_alexnet.training.losses",
    "load_cifar10": "keras_alexnet.data.cifar10",
    "TorchSGD": "keras_alexnet.training.optimizer",
    "LinearWarmupDecay": "keras_alexnet.training.optimizer",
    "train": "keras_alexnet.training.recipe",
    "TrainResult": "keras_alexnet.training.recipe",
    "evaluate": "keras_alexnet.evaluation.evaluate",
    "export_saved_model": "keras_alexnet.serving.export",
}

__all__ = ["ConfigError", "DataError", "ExportError", "ImageError", "KerasAlexNetError",
           "ModelError", "ServingError", "TrainConfig", "TrainingDiverged",
           "PeerLost", "TrainingError", "presets", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_alexnet' has no attribute {name!r}")
    # `keras.saving.load_model` can rebuild the package's classes once any of these names has
    # been used.
    from keras_alexnet.evaluation.model_files import register_classes

    register_classes()
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
