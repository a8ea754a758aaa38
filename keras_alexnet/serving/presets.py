"""Presets at both ends of serving: any finished run saved as a preset (`save_to_preset`), and a
preset exported once as a SavedModel, so `predict` and TF Serving need no training."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Sequence, Union

import keras

from keras_alexnet.config import warn_renamed
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import ModelError
from keras_alexnet.models import preset_files, preset_reading
from keras_alexnet.models.build import load_preset_files
from keras_alexnet.models.catalogue import is_preset
from keras_alexnet.models.model_files import load_keras_model
from keras_alexnet.run_dir import CHECKPOINT, CLASS_NAMES_FILE, class_names_in
from keras_alexnet.serving.export import export_saved_model
from keras_alexnet.serving.export_cache import MODEL_NAME, cached_saved_model


def save_to_preset(model_or_run_dir: Union[keras.Model, str], directory: str,
                   class_names: Optional[Sequence[str]] = None,
                   metadata: Optional[dict[str, Any]] = None, weights_dtype: str = "float32",
                   overwrite: bool = False) -> str:
    """Writes a model, a `.keras` file or a run directory's best model as a preset directory
    (`config.json`, `model.weights.h5`, `metadata.json`), which `from_preset` loads; deprecated
    (it warns) for the model's own `AlexNetImageClassifier.save_to_preset`.

    Args:
        model_or_run_dir: An `AlexNet` or `PaperAlexNet`, a `.keras` file, or a `train()` output
            directory (its `best.keras` and `class_names.txt`).
        directory: Where the preset goes; it must not exist unless `overwrite`.
        class_names: The class of each output; default: the run's, else CIFAR-10's for a
            10-class model.
        metadata: More `metadata.json` entries.
        weights_dtype: `"float32"` (bit for bit) or `"float16"` (kernels in half the bytes).
        overwrite: Replace a preset already at `directory`.

    Returns:
        `directory`.

    Raises:
        ModelError: No readable model at the path, or `directory` exists.

    Example:

    >>> save_to_preset("runs/alexnet_cifar10", "my_alexnet")
    'my_alexnet'
    >>> keras_alexnet.AlexNetImageClassifier.from_preset("my_alexnet")
    """
    warn_renamed("keras_alexnet.save_to_preset(...)",
                 "AlexNetImageClassifier.save_to_preset(...), a method of the model")
    model = model_or_run_dir
    if isinstance(model_or_run_dir, str):
        model, run_class_names = _keras_model_and_class_names(model_or_run_dir)
        class_names = run_class_names if class_names is None else class_names
    if class_names is None and model.output_shape[-1] == len(CLASS_NAMES):
        class_names = CLASS_NAMES
    return preset_files.save_to_preset(model, directory, class_names, metadata, weights_dtype,
                                       overwrite)


def preset_saved_model(preset: str) -> str:
    """The SavedModel of a preset: exported on first use into Keras' cache
    (`~/.keras/keras_alexnet/saved_models/<digest>/model/1`, `serving.export_cache`), then
    reused while it is intact. The digest is that of what was verified (the weights as read,
    the config and the class names: `PresetFiles.digest`), so a preset can only ever fill its
    own entry, and the export is made from a private copy of the files it was computed from.

    Raises:
        ModelError: As `read_preset`, or the preset changed while it was being exported.
    """
    files = preset_reading.read_preset(preset_files.preset_directory(preset), preset)
    return cached_saved_model(files.digest, lambda base: _export_preset(files, base),
                              f"preset {preset!r}")


def _export_preset(files: preset_reading.PresetFiles, base: str) -> None:
    """Exports a preset as `base/model/1`, from a private copy of its files that hashes to the
    digest it was checked with."""
    with tempfile.TemporaryDirectory(prefix="keras_alexnet_preset_") as private:
        copied = preset_reading.read_preset(
            preset_reading.copy_preset(files.directory, private, files.preset), files.preset)
        if copied.digest != files.digest:
            raise ModelError(f"preset {files.preset!r} changed while it was being exported: "
                             f"run again")
        model, class_names = _preset_network(copied)
        export_saved_model(model, base, MODEL_NAME, version=1, class_names=class_names)


def saved_model_of(model: str) -> str:
    """A SavedModel path as it is, or a preset's SavedModel (`preset_saved_model`)."""
    return preset_saved_model(model) if is_preset(model) else model


def preset_class_names(class_names: Optional[Sequence[str]],
                       model: keras.Model) -> Sequence[str]:
    """A preset's class names: its metadata's (`PresetFiles.class_names`, one per output), else
    CIFAR-10's for a 10-class model."""
    if class_names is not None:
        return class_names
    if model.output_shape[-1] == len(CLASS_NAMES):
        return CLASS_NAMES
    raise ModelError(f"the preset's metadata names no class for each of its "
                     f"{model.output_shape[-1]} outputs")


def model_and_class_names(model: str) -> tuple[keras.Model, Sequence[str]]:
    """The Keras model of a preset (with its metadata's class names), at a `.keras` path or a
    run directory's `best.keras` (with the run's)."""
    if is_preset(model):
        return _preset_network(preset_reading.read_preset(preset_files.preset_directory(model),
                                                        model))
    return _keras_model_and_class_names(model)


def _keras_model_and_class_names(path: str) -> tuple[keras.Model, Sequence[str]]:
    """The model at a `.keras` path or a run directory's `best.keras`, with the class names of
    the run it belongs to (CIFAR-10's where the run has none)."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT)
    if not os.path.isfile(path):
        raise ModelError(f"no model at {path}: give a model, a .keras file or a run directory")
    return (load_keras_model(path),
            class_names_in(os.path.join(os.path.dirname(path), CLASS_NAMES_FILE)))


def _preset_network(files: preset_reading.PresetFiles) -> tuple[keras.Model, Sequence[str]]:
    """A preset's network with its class names."""
    network = load_preset_files(files)
    return network, preset_class_names(files.class_names, network)
