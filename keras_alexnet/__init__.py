"""keras_alexnet: AlexNet in Keras 3 as keras-hub arranges a model — a backbone, an
image-classifier task and its preprocessor, with trained presets — and the seed blog's CIFAR-10
recipes to train it, evaluate, export and serve.

Example:

>>> import keras_alexnet
>>> classifier = keras_alexnet.AlexNetImageClassifier.from_preset("alexnet_long_cifar10")
>>> classifier.predict(images)                      # raw uint8 pixels → logits
>>> result = keras_alexnet.train(recipe="fast", data_dir="cifar-10-batches-py")

The top level holds what a user needs first; `keras_alexnet.models` and `keras_alexnet.layers`
hold the rest, and the names of earlier releases still import from here. `TrainConfig` and the
errors are imported eagerly; everything that needs Keras is imported on first use (so the
command line answers a bad flag at once, and a serving client imports no Keras). For
`keras.saving.load_model` to find the package's classes after a plain `import keras_alexnet`,
they are registered with Keras as soon as Keras is imported, before or after the package
(docs/development.md says why the import stays light).
"""

import importlib.abc
import sys

from keras_alexnet.config import TrainConfig, recipes
from keras_alexnet.config import presets as presets  # deprecated: recipes (it warns)
from keras_alexnet.errors import ConfigError as ConfigError
from keras_alexnet.errors import DataError as DataError
from keras_alexnet.errors import ExportError as ExportError
from keras_alexnet.errors import ImageError as ImageError
from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.errors import ModelError as ModelError
from keras_alexnet.errors import PeerLost as PeerLost
from keras_alexnet.errors import ServingError as ServingError
from keras_alexnet.errors import TrainingDiverged as TrainingDiverged
from keras_alexnet.errors import TrainingError as TrainingError
from keras_alexnet.utils.lazy_names import lazy_names
from keras_alexnet.version import __version__ as __version__

_LAZY = {
    "AlexNetBackbone": "keras_alexnet.models.backbone",
    "AlexNetImageClassifier": "keras_alexnet.models.image_classifier",
    "AlexNetImageClassifierPreprocessor": "keras_alexnet.models.preprocessor",
    "models": "keras_alexnet.models",
    "layers": "keras_alexnet.layers",
    "train": "keras_alexnet.training.recipe",
    "TrainResult": "keras_alexnet.training.recipe",
    "evaluate": "keras_alexnet.evaluation.evaluate",
    "export": "keras_alexnet.serving.formats",
    # The names of earlier releases, importable but not listed (`AlexNet`, `PaperAlexNet` and
    # `save_to_preset` warn, naming their replacements).
    "AlexNet": "keras_alexnet.models.alexnet",
    "PaperAlexNet": "keras_alexnet.models.paper_alexnet",
    "LocalResponseNormalization": "keras_alexnet.models.layers",
    "build_model": "keras_alexnet.models.build",
    "load_preset": "keras_alexnet.models.build",
    "PCAColorJitter": "keras_alexnet.data.augment",
    "RandomPadCrop": "keras_alexnet.data.augment",
    "RandomHorizontalFlip": "keras_alexnet.data.augment",
    "Cutout": "keras_alexnet.data.augment",
    "build_augmentation": "keras_alexnet.data.augment",
    "SparseLabelSmoothingCrossentropy": "keras_alexnet.training.losses",
    "load_cifar10": "keras_alexnet.data.cifar10",
    "TorchSGD": "keras_alexnet.training.optimizer",
    "LinearWarmupDecay": "keras_alexnet.training.optimizer",
    "export_saved_model": "keras_alexnet.serving.export",
    "export_litert": "keras_alexnet.serving.litert_export",
    "export_onnx": "keras_alexnet.serving.onnx_export",
    "save_to_preset": "keras_alexnet.serving.presets",
    "demo": "keras_alexnet.web",
}
__all__ = ["AlexNetBackbone", "AlexNetImageClassifier", "AlexNetImageClassifierPreprocessor",
           "KerasAlexNetError", "TrainConfig", "TrainResult", "evaluate", "export", "layers",
           "models", "recipes", "train"]


def _register_classes() -> None:
    from keras_alexnet.models.model_files import register_classes

    register_classes()


__getattr__, __dir__ = lazy_names(__name__, _LAZY, __all__, before=_register_classes)


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
