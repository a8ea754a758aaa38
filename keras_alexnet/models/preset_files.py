"""Trained models in keras-hub's preset layout: a directory of `config.json` (the network's
Keras config), `model.weights.h5` (its weights) and `metadata.json` (what made it, how good it
is). `PresetMixin` gives both networks `from_preset` and `presets`; `save_to_preset` writes one.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import os
import shutil
import uuid
import warnings
from typing import Any, Optional

import h5py
import keras
import numpy as np

from keras_alexnet.errors import ModelError
from keras_alexnet.models.catalogue import (
    CONFIG_FILE,
    METADATA_FILE,
    SHIPPED_DIR,
    WEIGHTS_FILE,
    shipped_presets,
)
from keras_alexnet.models.footprint import checked_layer_sizes
from keras_alexnet.models.preset_reading import PresetFiles, read_preset
from keras_alexnet.utils.download import preset_source
from keras_alexnet.version import __version__

WEIGHTS_DTYPES = ("float32", "float16")
# Smallest bytes a stored weight can take (float16), for the size check before building.
MIN_BYTES_PER_WEIGHT = 2


class _PresetCatalogue:
    """`Network.presets`: the shipped presets of that network's class or its subclasses, as
    keras-hub's `Backbone.presets`."""

    def __get__(self, instance, owner) -> dict[str, dict[str, Any]]:
        names = {network.__name__ for network in with_subclasses(owner)}
        return {name: copy.deepcopy(metadata) for name, metadata in shipped_presets().items()
                if metadata["class_name"] in names}


class PresetMixin:
    """`from_preset` and `presets` for a network class registered with Keras."""

    presets = _PresetCatalogue()

    @classmethod
    def from_preset(cls, preset: str, sha256: Optional[str] = None,
                    dtype: Optional[str] = None) -> keras.Model:
        """A trained one-model network from a preset: `preset`, `sha256`, `dtype` and the
        errors as `AlexNetImageClassifier.from_preset`, which replaces it; also a preset of
        another network is a `ModelError`.

        Example:

        >>> model = keras_alexnet.models.AlexNet.from_preset("alexnet_fast_cifar10")  # warns
        >>> model.predict(np.zeros((1, 32, 32, 3), "uint8"), verbose=0).shape
        (1, 10)
        """
        directory = preset_directory(preset, sha256)
        return load_verified(cls, read_preset(directory, preset), dtype)

    def save_to_preset(self, directory: str, class_names: Optional[list[str]] = None,
                       metadata: Optional[dict[str, Any]] = None,
                       weights_dtype: str = "float32", overwrite: bool = False) -> str:
        """Writes this network as a preset directory; see `preset_files.save_to_preset`."""
        return save_to_preset(self, directory, class_names, metadata, weights_dtype, overwrite)


def with_subclasses(cls: type) -> list[type]:
    """`cls` and every subclass of it defined so far (`AlexNetBackbone`: each network)."""
    return [cls, *(sub for child in cls.__subclasses__() for sub in with_subclasses(child))]


def registered_name(cls: type) -> str:
    """The name a network class is registered with Keras by (`keras_alexnet>AlexNet`)."""
    return keras.saving.get_registered_name(cls)


def preset_directory(preset: str, sha256: Optional[str] = None) -> str:
    """The local directory of a preset given by name, directory, URL or hub handle."""
    if not isinstance(preset, str) or not preset:
        raise ModelError(f"a preset is a name, a directory or a URL, got {preset!r}")
    if preset in shipped_presets():
        return os.path.join(SHIPPED_DIR, preset)
    if "://" in preset:
        return preset_source(preset, sha256)
    if os.path.isdir(preset):
        return preset
    raise ModelError(f"unknown preset {preset!r}: the shipped presets are "
                     f"{', '.join(shipped_presets()) or 'none'}; or give a preset directory, an "
                     f"https:// URL with its sha256, hf:// or kaggle://")


def load_verified(cls: type, files: PresetFiles, dtype: Optional[str] = None) -> keras.Model:
    """The network of a preset's checked files: the subclass of `cls` its config names, loaded
    by `load_checked`."""
    config = files.config
    networks = {registered_name(network): network for network in with_subclasses(cls)}
    network = networks.get(config["registered_name"])
    if network is None:
        raise ModelError(f"preset {files.preset!r} holds a network of class "
                         f"{config.get('class_name')!r}, not {cls.__name__}")
    return load_checked(network, files, dtype)


def load_checked(network: type, files: PresetFiles, dtype: Optional[str] = None) -> keras.Model:
    """A `network` from a preset's checked files, built only once its size (every layer's
    weights and one image's activations) is known to fit `MAX_NETWORK_BYTES` and the weights
    file, then given its weights."""
    values = dict(files.config["config"])
    weights = os.path.join(files.directory, WEIGHTS_FILE)
    sizes = checked_layer_sizes(network, values, os.path.getsize(weights), MIN_BYTES_PER_WEIGHT,
                                f"preset {files.preset!r}")
    if files.class_names is not None and len(files.class_names) != sizes["num_classes"]:
        raise ModelError(f"preset {files.preset!r}: its {METADATA_FILE} names "
                         f"{len(files.class_names)} classes for a network of "
                         f"{sizes['num_classes']}")
    if dtype is not None:
        values["dtype"] = dtype
    try:
        model = network.from_config(values)
        with warnings.catch_warnings():  # Keras warns of each part it finds no weights for
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(weights)
    except (TypeError, ValueError, KeyError, OSError) as error:
        raise ModelError(f"preset {files.preset!r}: its weights do not fit its config "
                         f"({' '.join(str(error).split())[:200]})") from error
    return model


def save_to_preset(model: keras.Model, directory: str, class_names: Optional[list[str]] = None,
                   metadata: Optional[dict[str, Any]] = None, weights_dtype: str = "float32",
                   overwrite: bool = False) -> str:
    """Writes `model` as a preset directory (atomically: all of it, or nothing).

    The preset computes in float32 whatever policy the model trained in (`from_preset(dtype=…)`
    picks another); `weights_dtype="float16"` stores the kernels (every weight of two or more
    dimensions) in half the bytes, the vectors (biases, batch-norm statistics) staying float32.

    Args:
        model: An `AlexNet` or `PaperAlexNet`.
        directory: Where the preset goes; it must not exist unless `overwrite`.
        class_names: The class of each output, in order; default: none recorded.
        metadata: More `metadata.json` entries (what produced it, its accuracy).
        weights_dtype: `"float32"` (bit for bit) or `"float16"`.
        overwrite: Replace a preset already at `directory`.

    Returns:
        `directory`.

    Example:

    >>> model = keras_alexnet.AlexNet(width_multiplier=0.25, dense_units=64, seed=0)
    >>> save_to_preset(model, "my_preset", weights_dtype="float16")
    'my_preset'
    >>> keras_alexnet.AlexNet.from_preset("my_preset").count_params() == model.count_params()
    True
    """
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, got {weights_dtype!r}")
    if os.path.exists(directory) and not overwrite:
        raise ModelError(f"{directory} exists: pass overwrite=True to replace it")
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(directory)}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        _write_preset(model, staging, class_names, metadata or {}, weights_dtype)
        if os.path.exists(directory):
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)
    return directory


def _write_preset(model: keras.Model, directory: str, class_names: Optional[list[str]],
                  metadata: dict[str, Any], weights_dtype: str) -> None:
    os.makedirs(directory)
    config = keras.saving.serialize_keras_object(model)
    config["config"]["dtype"] = "float32"
    # The network alone, without the optimizer state a compiled model would save with it.
    network = type(model).from_config(config["config"])
    network.set_weights(model.get_weights())
    weights = os.path.join(directory, WEIGHTS_FILE)
    network.save_weights(weights)
    if weights_dtype == "float16":
        _halve_kernels(weights)
    metadata = {"class_name": type(model).__name__, "parameter_count": model.count_params(),
                "keras_version": keras.__version__, "keras_alexnet_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                **({"class_names": list(class_names)} if class_names else {}), **metadata,
                "weights_dtype": weights_dtype, "weights_sha256": file_sha256(weights)}
    for name, values in ((CONFIG_FILE, config), (METADATA_FILE, metadata)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as file:
            json.dump(values, file, indent=2)
            file.write("\n")


def _halve_kernels(path: str) -> None:
    """Rewrites the weights file at `path` with every float32 weight of two or more dimensions
    stored as float16 (into a new file: HDF5 does not give back the space of deleted data)."""
    halved = f"{path}.float16"
    with h5py.File(path, "r") as source, h5py.File(halved, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name: str, item) -> None:
            if isinstance(item, h5py.Group):
                target.create_group(name).attrs.update(item.attrs)
                return
            values = item[()]
            if item.ndim >= 2 and item.dtype == np.float32:
                values = values.astype(np.float16)
            target.create_dataset(name, data=values).attrs.update(item.attrs)

        source.visititems(copy)
    os.replace(halved, path)


def file_sha256(path: str) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
