"""The demo's model side: what classifies an uploaded image and explains it, either a local
Keras model (a preset, a run directory or a `.keras` file) or a TF Serving REST endpoint.

Both classify the encoded bytes exactly as `keras-alexnet predict` does (its
`classify_locally` and `classify_on_server`): a local model through the `classify_image_bytes`
signature of its SavedModel, with the export's decoding limits. A preset's is `predict`'s own
(exported once into Keras' cache); a run's or a `.keras` file's is exported into a temporary
directory, removed with the classifier.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Sequence

import numpy as np

from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.models.catalogue import DEFAULT_PRESET, METADATA_FILE, is_preset
from keras_alexnet.run_dir import CHECKPOINT, METRICS, read_json
from keras_alexnet.serving.classify import classify_locally, classify_on_server
from keras_alexnet.serving.client import Prediction

GRAD_CAM_UNAVAILABLE = ("Grad-CAM is not available for a model on a TF Serving server: it needs "
                        "the model's gradients, which the server does not give.")


class ServerClassifier:
    """Classifies through a TF Serving REST endpoint (the package's client); no Keras model."""

    def __init__(self, server: str, model_name: str, timeout: float = 10.0,
                 class_names: Sequence[str] = CLASS_NAMES):
        self.server, self.model_name = server, model_name
        self.class_names = tuple(class_names)
        self._classify = classify_on_server(server, model_name, timeout, len(self.class_names))

    def classify(self, name: str, data: bytes) -> Prediction:
        """The served model's answer for one encoded image (`ServingError`, `ImageError`)."""
        return self._classify(name, data)

    @property
    def title(self) -> str:
        return f"{self.model_name} on TF Serving at {self.server}"

    def card(self) -> dict[str, Any]:
        """What is known of the served model: where it is served."""
        return {"served by": f"TF Serving REST API at {self.server}",
                "model name": self.model_name, "classes": ", ".join(self.class_names)}

    def close(self) -> None:
        """Nothing to release."""


class LocalClassifier:
    """A Keras model and the SavedModel exported from it, which classifies as `predict` does.

    Args:
        model: A preset (default: the shipped `DEFAULT_PRESET`), a run directory (its
            `best.keras`) or a `.keras` file.

    Raises:
        ModelError: No readable model at `model`.
    """

    def __init__(self, model: Optional[str] = None):
        from keras_alexnet.serving.export import export_saved_model
        from keras_alexnet.serving.presets import model_and_class_names, saved_model_of

        self.source = DEFAULT_PRESET if model is None else model
        self.model, class_names = model_and_class_names(self.source)
        self.class_names = tuple(class_names)
        self._directory = None
        if is_preset(self.source):  # exported once into Keras' cache, as `predict` does
            saved_model = saved_model_of(self.source)
        else:
            self._directory = tempfile.TemporaryDirectory(prefix="keras_alexnet_demo_model_")
            saved_model = export_saved_model(self.model, self._directory.name, "demo",
                                             version=1, class_names=self.class_names)
        self._classify = classify_locally(saved_model, len(self.class_names))

    def classify(self, name: str, data: bytes) -> Prediction:
        """The model's `classify_image_bytes` answer for one encoded image (`ImageError`)."""
        return self._classify(name, data)

    @property
    def title(self) -> str:
        return self.source

    def grad_cam(self, data: bytes, class_id: int) -> tuple[np.ndarray, np.ndarray]:
        """`(pixels, heatmap)`: the image as the model sees it (decoded and brought to its input
        size as the signature does) and Grad-CAM's map of where `class_id` was found. Call it
        only for bytes `classify` accepted (their size is then within the limits)."""
        import tensorflow as tf

        from keras_alexnet.data.imagenet import eval_view
        from keras_alexnet.evaluation.learned import grad_cam
        from keras_alexnet.models.backbone import eval_resize_side

        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        side = self.model.input_shape[1]
        pixels = tf.cast(tf.round(eval_view(image, side, eval_resize_side(self.model))),
                         tf.uint8).numpy()
        return pixels, grad_cam(self.model, pixels, class_id).heatmap

    def card(self) -> dict[str, Any]:
        """The preset's metadata, or the run's metrics."""
        if is_preset(self.source):
            from keras_alexnet.models.preset_files import preset_directory
            from keras_alexnet.models.preset_reading import read_preset_json

            metadata = read_preset_json(preset_directory(self.source), METADATA_FILE,
                                        self.source)
            return preset_card(self.source, metadata)
        run_dir = self.source if os.path.isdir(self.source) else os.path.dirname(self.source)
        metrics_path = os.path.join(run_dir, METRICS)
        metrics = read_json(metrics_path) if os.path.isfile(metrics_path) else None
        return run_card(self.source, metrics, self.model.count_params())

    def close(self) -> None:
        """Removes the SavedModel exported for a run or a `.keras` file."""
        if self._directory is not None:
            self._directory.cleanup()


def preset_card(name: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A preset's card: what it is, its recipe, accuracy, when and on what it was trained."""
    trained = metadata.get("trained") or {}
    return _present({
        "preset": name,
        "description": metadata.get("description"),
        "recipe": metadata.get("recipe"),
        "command": metadata.get("command"),
        "parameters": metadata.get("parameter_count"),
        "test accuracy": _percent(metadata.get("test_accuracy")),
        "test accuracy (one view)": _percent(metadata.get("test_accuracy_single_view")),
        "test-time augmentation": metadata.get("test_time_augmentation"),
        "trained on": trained.get("date") or metadata.get("date_saved"),
        "machine": trained.get("machine") or (metadata.get("measured_on") or {}).get("machine"),
        "training time": _minutes(trained.get("train_seconds")),
        "weights": metadata.get("weights_dtype"),
    })


def run_card(source: str, metrics: Optional[dict[str, Any]], parameters: int) -> dict[str, Any]:
    """A run's card: its metrics (none for a `.keras` file outside a finished run)."""
    metrics = metrics or {}
    performance = metrics.get("performance") or {}
    return _present({
        "model": source if not os.path.isdir(source) else os.path.join(source, CHECKPOINT),
        "parameters": parameters,
        "test accuracy": _percent(metrics.get("test_accuracy")),
        "test loss": metrics.get("test_loss"),
        "best validation accuracy": _percent(metrics.get("best_val_accuracy")),
        "epochs": metrics.get("epochs_completed"),
        "training time": _minutes(metrics.get("train_seconds")),
        "device": performance.get("device"),
        "metrics": None if metrics else "none: not a finished run (no metrics.json)",
    })


def _present(card: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in card.items() if value is not None}


def _percent(value: Optional[float]) -> Optional[str]:
    return None if not isinstance(value, (int, float)) else f"{value:.2%}"


def _minutes(seconds: Optional[float]) -> Optional[str]:
    return None if not isinstance(seconds, (int, float)) else f"{seconds / 60:.1f} min"
