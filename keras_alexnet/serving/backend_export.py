"""The export a training ends with, on any Keras backend: the SavedModel needs plain TensorFlow
ops, so a run on another backend saves its model and exports it in a fresh process on the
TensorFlow backend (a process imports one Keras backend)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from typing import Optional, Sequence

import keras

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import TrainingError
from keras_alexnet.models.model_files import load_keras_model
from keras_alexnet.run_dir import FINAL_MODEL
from keras_alexnet.serving.export import export_saved_model
from keras_alexnet.utils.atomic import atomic_path

logger = logging.getLogger(__name__)


def export_or_save(model: keras.Model, config: TrainConfig,
                   class_names: Sequence[str] = CLASS_NAMES) -> Optional[str]:
    """Exports a trained model as `train()` does; returns the version directory or `None`.

    On the TensorFlow backend the export runs here. On another backend the model is saved as
    `final.keras` in the run directory and exported by `export_keras_file` in a fresh process
    on the TensorFlow backend (TF Serving needs plain TensorFlow ops); without TensorFlow,
    `final.keras` is left to export on a machine that has it (`keras-alexnet export`).
    """
    if keras.backend.backend() == "tensorflow":
        return export_saved_model(model, config.saved_models_dir, config.model_name,
                                  class_names=class_names)
    final = os.path.join(config.output_dir, FINAL_MODEL)
    with atomic_path(final) as staging:
        model.save(staging)
    if importlib.util.find_spec("tensorflow") is None:
        logger.warning("TensorFlow is not installed, so no SavedModel was exported; the trained "
                       "model is %s: on a machine with TensorFlow run: keras-alexnet export %s",
                       final, final)
        return None
    return export_in_tensorflow_process(final, config.saved_models_dir, config.model_name,
                                        class_names)


def export_keras_file(path: str, saved_models_dir: str, model_name: str,
                      class_names: Sequence[str]) -> str:
    """`export_saved_model` of the `.keras` model at `path`; returns the version directory."""
    return export_saved_model(load_keras_model(path), saved_models_dir, model_name,
                              class_names=class_names)


# `export_keras_file` called in a child process, its arguments and result as JSON.
_EXPORT_IN_CHILD = ("import json, sys\n"
                    "from keras_alexnet.serving.backend_export import export_keras_file\n"
                    "print(json.dumps(export_keras_file(*json.loads(sys.argv[1]))))")


def export_in_tensorflow_process(path: str, saved_models_dir: str, model_name: str,
                                 class_names: Sequence[str]) -> str:
    """`export_keras_file` in a fresh Python process on the TensorFlow backend (a process
    imports one Keras backend); returns the version directory.

    Raises:
        TrainingError: The export failed (its error's last lines).
    """
    arguments = json.dumps([path, saved_models_dir, model_name, list(class_names)])
    exported = subprocess.run([sys.executable, "-c", _EXPORT_IN_CHILD, arguments],
                              env={**os.environ, "KERAS_BACKEND": "tensorflow"},
                              capture_output=True, text=True, check=False)
    if exported.returncode != 0:
        raise TrainingError(f"exporting {path} failed: {exported.stderr.strip()[-2000:]}")
    return json.loads(exported.stdout.strip().splitlines()[-1])
