"""Loading `.keras` model files safely: the archive checked before anything is built."""

from __future__ import annotations

import importlib
import zipfile

import keras

from keras_alexnet.errors import ModelError
from keras_alexnet.models.footprint import checked_layer_sizes
from keras_alexnet.utils.bounded_files import MAX_JSON_BYTES, parse_json

# The modules whose classes a `.keras` file of this package names (networks, layers, augmentation,
# initializers, optimizer, schedule, loss); importing them registers the classes with Keras.
REGISTERING_MODULES = ("keras_alexnet.data.augment", "keras_alexnet.models.alexnet",
                       "keras_alexnet.models.paper_alexnet",
                       "keras_alexnet.models.image_classifier", "keras_alexnet.training.losses",
                       "keras_alexnet.training.optimizer")


def register_classes() -> None:
    """Registers every class a `.keras` file of this package may name with Keras."""
    for module in REGISTERING_MODULES:
        importlib.import_module(module)


def registered_class(name: str) -> type:
    """The package's class registered with Keras as `keras_alexnet>{name}` (one of a module
    above this layer, as the training's optimizer), after `register_classes`."""
    register_classes()
    return keras.saving.get_registered_object(f"keras_alexnet>{name}")


def load_keras_model(path: str) -> keras.Model:
    """Loads a `.keras` model of this package in safe mode (no `Lambda` code runs), after
    `check_keras_archive`.

    Raises:
        ModelError: `path` is not a readable `.keras` model of this package.
    """
    check_keras_archive(path)
    register_classes()
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        # TypeError: an unknown class or function, or a known class given bad arguments
        raise ModelError(f"{path} is not a readable .keras model: "
                         f"{' '.join(str(error).split())[:300]}") from error


KERAS_MODEL_CLASSES = ("keras_alexnet>AlexNet", "keras_alexnet>PaperAlexNet",
                       "keras_alexnet>AlexNetNetwork", "keras_alexnet>AlexNetBackbone",
                       "keras_alexnet>AlexNetImageClassifier")
WEIGHTS_MEMBER = "model.weights.h5"  # in a .keras archive: the weights, float32


def check_keras_archive(path: str) -> None:
    """Checks, without building anything, that `path` is a `.keras` archive with a bounded
    `config.json` and, when it holds one of this package's networks, that its stored weights
    (float32) are as large as its config declares and the network within
    `footprint.MAX_NETWORK_BYTES` (a small file declaring a huge network is refused before any
    memory is taken for it).

    Raises:
        ModelError: It is not a zip archive, lacks `config.json` or the weights, holds a config
            over `MAX_JSON_BYTES` or nested too deep, or declares a network it cannot hold.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config_bytes = archive.getinfo("config.json").file_size
            text = (archive.read("config.json").decode("utf-8")
                    if config_bytes <= MAX_JSON_BYTES else None)
            stored_bytes = archive.getinfo(WEIGHTS_MEMBER).file_size
    except zipfile.BadZipFile as error:
        raise ModelError(f"{path} is not a .keras model (not a zip archive)") from error
    except KeyError as error:
        raise ModelError(f"{path} is not a .keras model (it lacks config.json or "
                         f"{WEIGHTS_MEMBER})") from error
    except (OSError, ValueError) as error:  # UnicodeDecodeError too
        raise ModelError(f"{path} is not a readable .keras model: {error}") from error
    if text is None:
        raise ModelError(f"{path}: its config.json is {config_bytes:,} bytes, over the "
                         f"{MAX_JSON_BYTES:,} allowed")
    config = parse_json(text, f"{path}: its config.json")
    if not isinstance(config, dict) or config.get("registered_name") not in KERAS_MODEL_CLASSES:
        return  # another Keras model: loaded as Keras loads it, in safe mode
    register_classes()
    checked_layer_sizes(keras.saving.get_registered_object(config["registered_name"]),
                        config.get("config"), stored_bytes, 4, path)
