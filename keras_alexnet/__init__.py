"""keras_alexnet: the seed blog's CIFAR-10 AlexNet in Keras 3 — train, evaluate, export, serve.

Example:

>>> import keras_alexnet
>>> result = keras_alexnet.train(epochs=1, train_subset=512, data_dir="cifar-10-batches-py")
>>> result.metrics["test_accuracy"]

A trained model without training: `keras_alexnet.AlexNet.from_preset("alexnet_long_cifar10")`
(`AlexNet.presets` lists the shipped ones).

`TrainConfig` is imported eagerly; everything that needs Keras is imported on first use of any
other name (so the command line answers a bad flag at once). `import keras_alexnet` is enough
for `keras.saving.load_model` to find the package's classes in a saved `.keras` file: they are
registered with Keras as soon as Keras is imported, before or after the package.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from keras_alexnet.config import TrainConfig, presets, recipes
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
from keras_alexnet.version import __version__ as __version__

_LAZY = {
    "AlexNet": "keras_alexnet.models.alexnet",
    "AlexNetBackbone": "keras_alexnet.models.backbone",
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
    "export": "keras_alexnet.serving.formats",
    "export_litert": "keras_alexnet.serving.litert_export",
    "export_onnx": "keras_alexnet.serving.onnx_export",
    "load_preset": "keras_alexnet.models.build",
    "save_to_preset": "keras_alexnet.serving.presets",
    "demo": "keras_alexnet.demo",
}

__all__ = ["ConfigError", "DataError", "ExportError", "ImageError", "KerasAlexNetError",
           "ModelError", "ServingError", "TrainConfig", "TrainingDiverged",
           "PeerLost", "TrainingError", "presets", "recipes", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_alexnet' has no attribute {name!r}")
    _register_classes()
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


class _RegisterWhenKerasIsImported(importlib.abc.MetaPathFinder):
    """Registers the package's classes with Keras once the `keras` module has finished
    importing, wherever that import comes from (a probe that only looks Keras up, as
    TensorFlow's, imports nothing and registers nothing)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        spec = next((found for finder in sys.meta_path if finder is not self
                     for found in [finder.find_spec(fullname, path, target)] if found), None)
        if spec is None or spec.loader is None:
            return spec
        import_keras = spec.loader.exec_module

        def exec_module(module):
            import_keras(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _register_classes_if_no_module_is_importing()

        spec.loader.exec_module = exec_module
        return spec


def _register_classes() -> None:
    from keras_alexnet.models.model_files import register_classes

    register_classes()


def _register_classes_if_no_module_is_importing() -> None:
    """`_register_classes`, unless Keras' import came from a module of this package that is
    still importing (whose names are not there yet): then the package's own loading functions
    and names register the classes when used."""
    try:
        _register_classes()
    except ImportError:  # "cannot import name … from partially initialized module"
        pass


if "keras" in sys.modules:
    _register_classes()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasIsImported())
