"""keras_alexnet: the seed blog's CIFAR-10 AlexNet in Keras 3 — train, evaluate, export, serve.

Example:

>>> import keras_alexnet
>>> result = keras_alexnet.train(epochs=1, train_subset=512, data_dir="../shared/data")
>>> result.metrics["test_accuracy"]

`TrainConfig` is imported eagerly; everything that needs Keras is imported on first use of any
other name (so the command line answers a bad flag at once). To load a saved `.keras` file in a
fresh process, touch the package first, e.g. `keras_alexnet.AlexNet`, or import
`keras_alexnet.model`: that registers the custom classes with Keras.
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
    ServingError,
    TrainingError,
)

__version__ = "0.1.0"

_LAZY = {
    "AlexNet": "keras_alexnet.model",
    "PaperAlexNet": "keras_alexnet.model",
    "LocalResponseNormalization": "keras_alexnet.model",
    "build_model": "keras_alexnet.model",
    "PCAColorJitter": "keras_alexnet.augment",
    "RandomPadCrop": "keras_alexnet.augment",
    "RandomHorizontalFlip": "keras_alexnet.augment",
    "Cutout": "keras_alexnet.augment",
    "build_augmentation": "keras_alexnet.augment",
    "SparseLabelSmoothingCrossentropy": "keras_alexnet.losses",
    "load_cifar10": "keras_alexnet.data",
    "TorchSGD": "keras_alexnet.optimizer",
    "LinearWarmupDecay": "keras_alexnet.optimizer",
    "train": "keras_alexnet.training",
    "TrainResult": "keras_alexnet.training",
    "evaluate": "keras_alexnet.evaluation",
    "export_saved_model": "keras_alexnet.export",
}

_REGISTERING = ("keras_alexnet.augment", "keras_alexnet.losses", "keras_alexnet.model",
                "keras_alexnet.optimizer")

__all__ = ["ConfigError", "DataError", "ExportError", "ImageError", "KerasAlexNetError",
           "ModelError", "ServingError", "TrainConfig", "TrainingError", "presets", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_alexnet' has no attribute {name!r}")
    # Importing the Keras modules registers the package's layers, model and optimizer, so
    # `keras.saving.load_model` can rebuild them once any keras_alexnet name has been used.
    for module in _REGISTERING:
        importlib.import_module(module)
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
