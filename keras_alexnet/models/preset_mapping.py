"""Presets of the backbone, the task and the preprocessor (`from_preset` and `presets` on each),
and the mapping between the task and the deprecated one-model layout, layer by layer: a
one-model preset loads into the task (the shipped files stay as they are), and a task becomes
one model for the code that walks a flat graph (the LiteRT and ONNX exports, Grad-CAM)."""

from __future__ import annotations

import copy
import importlib
import inspect
from typing import Any, Callable, Optional

import keras

from keras_alexnet.errors import ModelError
from keras_alexnet.models import preset_files
from keras_alexnet.models.architectures import (
    ArgumentSet,
    paper_network,
    seed_network,
    split_network,
)
from keras_alexnet.models.catalogue import shipped_presets
from keras_alexnet.models.deprecation import rebuilding
from keras_alexnet.models.footprint import SIZE_ARGUMENTS
from keras_alexnet.models.preset_reading import PresetFiles, read_preset

TASK = "keras_alexnet>AlexNetImageClassifier"
_KERAS_KEYS = ("name", "trainable", "dtype")
# A saved task's parts, and the registered name each must be saved as.
_TASK_PARTS = {"backbone": "keras_alexnet>AlexNetBackbone",
               "preprocessor": "keras_alexnet>AlexNetImageClassifierPreprocessor"}
TASK_CLASS = "keras_alexnet.models.image_classifier.AlexNetImageClassifier"
ONE_MODEL_CLASS = "keras_alexnet.models.network.AlexNetNetwork"
# The whole networks of the deprecated layout, by registered name: their class, and how their
# config's arguments become the task's.
_WHOLE_NETWORKS: dict[str, tuple[str, Callable[[dict[str, Any]], ArgumentSet]]] = {
    "keras_alexnet>AlexNet": ("keras_alexnet.models.alexnet.AlexNet",
                              lambda config: _call_with(seed_network, config)),
    "keras_alexnet>PaperAlexNet": (
        "keras_alexnet.models.paper_alexnet.PaperAlexNet",
        lambda config: _call_with(paper_network, {**config, "image_shape": config.get(
            "input_shape", (224, 224, 3))})),
    "keras_alexnet>AlexNetNetwork": (ONE_MODEL_CLASS, split_network),
    # what `AlexNetNetwork` was registered as before the split
    "keras_alexnet>AlexNetBackbone": (ONE_MODEL_CLASS, split_network),
}
# The `metadata.json` class names of the presets every class here loads.
_CLASSIFIER_NAMES = ("AlexNetImageClassifier", "AlexNet", "PaperAlexNet", "AlexNetNetwork",
                     "AlexNetBackbone")


class _Presets:
    """`cls.presets`: the shipped presets (each a trained classifier), name → metadata."""

    def __get__(self, instance, owner) -> dict[str, dict[str, Any]]:
        return {name: copy.deepcopy(metadata) for name, metadata in shipped_presets().items()
                if metadata.get("class_name") in _CLASSIFIER_NAMES}


class LayerSizes:
    """`cls.layer_sizes(config)`: the layer sizes a saved config of the class declares, read
    before anything is built (see `footprint`)."""

    @classmethod
    def layer_sizes(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Every argument in `footprint.SIZE_ARGUMENTS` of a config of this class (its
        `get_config`), the defaults filled in.

        Raises:
            ValueError, TypeError: A config this class cannot hold.

        Example:

        >>> keras_alexnet.models.AlexNet.layer_sizes({"width_multiplier": 0.5})["conv_filters"]
        (32, 96, 192, 128, 128)
        """
        return layer_sizes(keras.saving.get_registered_name(cls), config)


class TaskPresets(LayerSizes):
    """`from_preset`, `presets` and `save_to_preset` of `AlexNetImageClassifier`."""

    presets = _Presets()

    @classmethod
    def from_preset(cls, preset: str, sha256: Optional[str] = None, dtype: Optional[str] = None):
        """A trained classifier from a preset.

        Args:
            preset: A shipped preset's name (see `presets`), a preset directory, an `https://`
                URL of a preset archive (`.tar.gz` or `.zip`; downloaded once into the Keras
                cache, `~/.keras/keras_alexnet/presets`), or `hf://OWNER/NAME`,
                `kaggle://OWNER/MODEL/keras/VARIANT` (with `huggingface_hub` or `kagglehub`).
            sha256: The archive's SHA-256; required with an `https://` URL.
            dtype: The dtype policy to compute in; `None`: the preset's (float32).

        Raises:
            ModelError: An unknown name, a missing, damaged or oversized file, a wrong hash,
                values of the wrong type, a network larger than its weights or than
                `footprint.MAX_NETWORK_BYTES`, weights that do not fit the config, or a preset
                of no AlexNet classifier; nothing is built before the sizes are checked, and
                nothing is left half-downloaded.

        Example:

        >>> classifier = keras_alexnet.AlexNetImageClassifier.from_preset("alexnet_fast_cifar10")
        >>> classifier.predict(np.zeros((1, 32, 32, 3), "uint8"), verbose=0).shape
        (1, 10)
        """
        directory = preset_files.preset_directory(preset, sha256)
        return load_classifier(cls, read_preset(directory, preset), dtype)

    def save_to_preset(self, preset_dir: str, class_names: Optional[list[str]] = None,
                       metadata: Optional[dict[str, Any]] = None, weights_dtype: str = "float32",
                       overwrite: bool = False) -> str:
        """Writes this classifier as a preset directory (`config.json`, `model.weights.h5`,
        `metadata.json`; all or nothing), which `from_preset` of the task, the backbone and the
        preprocessor load; `weights_dtype="float16"` stores the kernels in half the bytes.

        Example:

        >>> classifier = keras_alexnet.AlexNetImageClassifier.from_arguments(
        ...     "cifar", width_multiplier=0.25, dense_units=64, seed=0)
        >>> classifier.save_to_preset("my_preset", class_names=list("abcdefghij"))
        'my_preset'
        """
        return preset_files.save_to_preset(self, preset_dir, class_names, metadata,
                                           weights_dtype, overwrite)


class BackbonePresets(LayerSizes):
    """`from_preset` and `presets` of `AlexNetBackbone`: the trained classifier's features."""

    presets = _Presets()

    @classmethod
    def from_preset(cls, preset: str, sha256: Optional[str] = None, dtype: Optional[str] = None):
        """The trained features of a classifier preset (see
        `AlexNetImageClassifier.from_preset`).

        Example:

        >>> keras_alexnet.AlexNetBackbone.from_preset("alexnet_fast_cifar10").output_shape
        (None, 4, 4, 128)
        """
        return _named(TASK_CLASS).from_preset(preset, sha256, dtype).backbone


class PreprocessorPresets:
    """`from_preset` and `presets` of `AlexNetImageClassifierPreprocessor`."""

    presets = _Presets()

    @classmethod
    def from_preset(cls, preset: str, sha256: Optional[str] = None):
        """The preprocessor of a classifier preset (its pixel statistics and test view), read
        from its config alone.

        Example:

        >>> preset = "alexnet_fast_cifar10"
        >>> keras_alexnet.AlexNetImageClassifierPreprocessor.from_preset(preset).image_shape
        (32, 32, 3)
        """
        config = read_preset(preset_files.preset_directory(preset, sha256), preset).config
        try:
            if config["registered_name"] == TASK:
                _task_as_whole_network(config["config"])  # its parts of their classes
                return keras.saving.deserialize_keras_object(config["config"]["preprocessor"])
            return cls(**_whole_network(config, preset)[1].preprocessor)
        except (TypeError, ValueError) as error:
            if isinstance(error, ModelError):
                raise
            raise ModelError(f"preset {preset!r}: its preprocessor cannot be built "
                             f"({' '.join(str(error).split())[:200]})") from error


def load_classifier(cls: type, files: PresetFiles, dtype: Optional[str] = None):
    """The classifier `cls` of a preset's checked files (`preset_reading.read_preset`): a saved
    task as it is, a whole network of the one-model layout by its weights mapped layer by
    layer; each built only once its size is checked (`preset_files.load_checked`)."""
    if files.config["registered_name"] == TASK:
        return preset_files.load_checked(cls, files, dtype)
    network_class, _ = _found_network(files.config, files.preset)
    with rebuilding():  # its size checked before its arguments are mapped
        network = preset_files.load_checked(_named(network_class), files, dtype)
    return classifier_from_network(cls, network, _whole_network(files.config, files.preset)[1],
                                   dtype)


def layer_sizes(registered_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Every argument in `footprint.SIZE_ARGUMENTS` of a config of the class registered as
    `registered_name` (the task, the backbone, a one-model network), the one-model network's
    defaults filled in; `num_classes` None for a backbone alone.

    Raises:
        ValueError, TypeError: A config the class cannot hold.
    """
    if registered_name == TASK:
        whole = _task_as_whole_network(config)
    elif registered_name == "keras_alexnet>AlexNetBackbone" and "num_classes" not in config:
        whole = {**config, "num_classes": None}  # the features alone
    elif registered_name in _WHOLE_NETWORKS:
        whole = _WHOLE_NETWORKS[registered_name][1](config).whole_network()
    else:
        raise ValueError(f"{registered_name} is not one of the package's networks")
    defaults = {name: parameter.default for name, parameter in
                inspect.signature(one_model_class().__init__).parameters.items()}
    return {name: whole.get(name, defaults[name]) for name in SIZE_ARGUMENTS}


def _task_as_whole_network(config: dict[str, Any]) -> dict[str, Any]:
    """A saved task's config as the arguments of the one-model network."""
    backbone, preprocessor = (_task_part(config, part) for part in _TASK_PARTS)
    if "num_classes" in backbone:
        raise ValueError("its backbone is a whole network (it has num_classes)")
    shapes = [part.get("image_shape", (32, 32, 3)) for part in (backbone, preprocessor)]
    if not all(isinstance(shape, (list, tuple)) for shape in shapes) or (
            list(shapes[0]) != list(shapes[1])):
        raise ValueError(f"its backbone's image_shape {shapes[0]!r} is not its "
                         f"preprocessor's {shapes[1]!r}")
    head = {key: value for key, value in config.items()
            if key not in (*_KERAS_KEYS, *_TASK_PARTS)}
    return {**backbone, **preprocessor, **head}


def _task_part(config: dict[str, Any], part: str) -> dict[str, Any]:
    """The config of a saved task's backbone or preprocessor, once it is known to be saved as
    the package's class of that part (no other class is ever built from it)."""
    saved = config.get(part)
    if not (isinstance(saved, dict) and isinstance(saved.get("config"), dict)):
        raise ValueError(f"its {part} is not a saved object")
    if saved.get("registered_name") != _TASK_PARTS[part]:
        raise ValueError(f"its {part} is of class {saved.get('class_name')!r}, not "
                         f"{_TASK_PARTS[part].partition('>')[2]}")
    return saved["config"]


def _found_network(config: dict[str, Any], preset: str
                   ) -> tuple[str, Callable[[dict[str, Any]], ArgumentSet]]:
    """The deprecated network class a preset's config names, and how its arguments map."""
    found = _WHOLE_NETWORKS.get(config.get("registered_name"))
    if found is None or not isinstance(config.get("config"), dict):
        raise ModelError(f"preset {preset!r} holds a model of class "
                         f"{config.get('class_name')!r}, not an AlexNet classifier")
    return found


def _whole_network(config: dict[str, Any], preset: str) -> tuple[type, ArgumentSet]:
    """The deprecated network class a preset's config names, and its task's arguments."""
    class_path, to_arguments = _found_network(config, preset)
    try:
        arguments = to_arguments(config["config"])
    except (TypeError, ValueError) as error:
        raise ModelError(f"preset {preset!r}: its config is not an AlexNet's ({error})") from error
    return _named(class_path), arguments


def one_model_class() -> type:
    """`network.AlexNetNetwork`, the one-model layout's class."""
    return _named(ONE_MODEL_CLASS)


def _named(class_path: str) -> type:
    """The class at `"module.Class"`, imported by name: the task and the one-model network
    import this module, which cannot import theirs."""
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _call_with(function: Callable[..., ArgumentSet], config: dict[str, Any]) -> ArgumentSet:
    """`function` called with the entries of `config` it takes."""
    taken = inspect.signature(function).parameters
    return function(**{key: value for key, value in config.items() if key in taken})


def classifier_from_network(cls: type, network, arguments: ArgumentSet,
                            dtype: Optional[str] = None):
    """A classifier of `arguments` holding a whole network's weights, each layer's copied to the
    task's layer of its name (in the backbone, or the head).

    Raises:
        ModelError: A layer with weights that the classifier lacks, or of another shape.
    """
    classifier = cls.from_arguments(arguments, dtype=dtype)
    for layer in network.layers:
        if not layer.weights:
            continue
        try:
            target = _layer_named(classifier, layer.name)
            target.set_weights(layer.get_weights())
        except ValueError as error:
            raise ModelError(f"the network's layer {layer.name} does not fit the classifier: "
                             f"{' '.join(str(error).split())[:200]}") from error
    return classifier


def _layer_named(classifier, name: str):
    """The layer `name` of a classifier's backbone, else of the classifier itself."""
    try:
        return classifier.backbone.get_layer(name)
    except ValueError:
        return classifier.get_layer(name)


def as_one_model(model):
    """An `AlexNetImageClassifier` as the one-model `AlexNetNetwork` with its weights, every
    layer in one flat graph; any other model as it is."""
    if not isinstance(model, _named(TASK_CLASS)):
        return model

    def arguments(part) -> dict[str, Any]:
        return {key: value for key, value in part.get_config().items()
                if key not in _KERAS_KEYS}

    head = {key: value for key, value in model.get_config().items()
            if key not in (*_KERAS_KEYS, "backbone", "preprocessor")}
    network = _named(ONE_MODEL_CLASS)(**ArgumentSet(arguments(model.backbone),
                                           arguments(model.preprocessor), head).whole_network(),
                             name=model.name, dtype=model.backbone.dtype_policy)
    for layer in network.layers:
        if layer.weights:
            layer.set_weights(_layer_named(model, layer.name).get_weights())
    return network
