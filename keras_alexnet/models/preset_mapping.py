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
from keras_alexnet.models.catalogue import CONFIG_FILE, shipped_presets
from keras_alexnet.models.deprecation import rebuilding

TASK = "keras_alexnet>AlexNetImageClassifier"
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


class TaskPresets:
    """`from_preset`, `presets` and `save_to_preset` of `AlexNetImageClassifier`."""

    presets = _Presets()

    @classmethod
    def from_preset(cls, preset: str, sha256: Optional[str] = None, dtype: Optional[str] = None):
        """A trained classifier from a preset: a shipped name (`presets`), a directory, an
        `https://` URL with its `sha256`, `hf://…` or `kaggle://…`; `dtype` the policy to
        compute in (default the preset's, float32).

        Raises:
            ModelError: As `preset_files.load_network`, or a preset of no AlexNet classifier.

        Example:

        >>> classifier = keras_alexnet.AlexNetImageClassifier.from_preset("alexnet_fast_cifar10")
        >>> classifier.predict(np.zeros((1, 32, 32, 3), "uint8"), verbose=0).shape
        (1, 10)
        """
        directory = preset_files.preset_directory(preset, sha256)
        config = preset_files.read_preset_json(directory, CONFIG_FILE, preset)
        if config.get("registered_name") == TASK:
            return preset_files.load_network(cls, directory, config, preset, dtype)
        network_class, arguments = _whole_network(config, preset)
        with rebuilding():
            network = preset_files.load_network(network_class, directory, config, preset, dtype)
        return classifier_from_network(cls, network, arguments, dtype)

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


class BackbonePresets:
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
        directory = preset_files.preset_directory(preset, sha256)
        config = preset_files.read_preset_json(directory, CONFIG_FILE, preset)
        if config.get("registered_name") == TASK:
            return keras.saving.deserialize_keras_object(config["config"]["preprocessor"])
        return cls(**_whole_network(config, preset)[1].preprocessor)


def _whole_network(config: dict[str, Any], preset: str) -> tuple[type, ArgumentSet]:
    """The deprecated network class a preset's config names, and its task's arguments."""
    found = _WHOLE_NETWORKS.get(config.get("registered_name"))
    if found is None or not isinstance(config.get("config"), dict):
        raise ModelError(f"preset {preset!r} holds a model of class "
                         f"{config.get('class_name')!r}, not an AlexNet classifier")
    class_path, to_arguments = found
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


_KERAS_KEYS = ("name", "trainable", "dtype")


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
