"""LiteRT (TensorFlow Lite) files of a trained model, in float32 or int8, and their interpreter.

A file takes uint8 pixels `images` `[N, S, S, 3]` and gives float32 `probabilities` `[N, C]`
(`pixel_model`), as the SavedModel's `serving_default` does; the batch size is the caller's
(`Interpreter.resize_tensor_input`). Only LiteRT's built-in operators are used, so the plain
interpreter (`pip install 'keras_alexnet[litert]'`) runs every file without TensorFlow.

int8 (`quantize="int8"`): post-training integer quantization of every weight and activation,
calibrated on representative images; the input stays uint8 pixels and the output float32
probabilities, so the contract is the float file's.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
from typing import Iterator, Optional, Sequence

import keras
import numpy as np

from keras_alexnet.config import FILE_EXTENSIONS, FORMAT_EXTRAS, QUANTIZATIONS
from keras_alexnet.errors import ExportError
from keras_alexnet.run_dir import check_output_file, write_class_names
from keras_alexnet.serving.export import check_class_names
from keras_alexnet.serving.pixel_model import pixel_model, pixel_signature
from keras_alexnet.utils.arrays import in_batches
from keras_alexnet.utils.atomic import atomic_path
from keras_alexnet.utils.native_stderr import native_stderr_silenced


def export_litert(model: keras.Model, path: str, class_names: Sequence[str],
                  quantize: Optional[str] = None,
                  representative_images: Optional[np.ndarray] = None) -> str:
    """Writes `model` as a LiteRT file at `path` and its class names, one a line, beside it
    (`class_names_file(path)`); each file replaces one there at once, never half-written.

    Args:
        model: A Keras model from float32 raw pixels to logits (`AlexNet`, `PaperAlexNet`).
        path: The file to write; it must end in `.tflite`.
        class_names: The class of each output.
        quantize: `None` (float32) or `"int8"`.
        representative_images: uint8 `[N, S, S, 3]` training images that calibrate the int8
            ranges (a few hundred are enough); required for `"int8"`.

    Returns:
        `path`.

    Example:

    >>> names = [f"class {index}" for index in range(10)]
    >>> model = keras_alexnet.AlexNetImageClassifier.from_arguments(seed=0)
    >>> export_litert(model, "alexnet.tflite", names)
    'alexnet.tflite'
    """
    if not path.endswith(FILE_EXTENSIONS["litert"]):
        raise ExportError(f"a LiteRT file's name ends in {FILE_EXTENSIONS['litert']}, got {path}")
    check_class_names(model, class_names)
    check_output_file(path, "LiteRT file")
    settings = _converter_settings(model, quantize, representative_images)
    portable = pixel_model(model)
    with atomic_path(path) as staging:
        # The converter's log, and what older Keras prints whatever `verbose` says; a failure
        # raises here.
        with native_stderr_silenced(), contextlib.redirect_stdout(io.StringIO()):
            portable.export(staging, format="litert", verbose=False,
                            input_signature=pixel_signature(portable), **settings)
    write_class_names(class_names_file(path), class_names)  # once the file is in its place
    return path


def class_names_file(path: str) -> str:
    """The class names file beside a LiteRT file: `alexnet.tflite` -> `alexnet.class_names.txt`."""
    return os.path.splitext(path)[0] + ".class_names.txt"


def _converter_settings(model: keras.Model, quantize: Optional[str],
                        representative_images: Optional[np.ndarray]) -> dict:
    """The `tf.lite.TFLiteConverter` attributes for float32 or int8."""
    import tensorflow as tf

    if quantize is None:
        return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    shape = tuple(model.input_shape[1:])
    if (representative_images is None or representative_images.dtype != np.uint8
            or representative_images.shape[1:] != shape or len(representative_images) == 0):
        given = None if representative_images is None else representative_images.shape
        raise ExportError(f"int8 needs representative images: uint8 "
                          f"[N, {', '.join(map(str, shape))}] training images, got {given}")

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for image in representative_images:
            yield [image[np.newaxis]]

    return {"optimizations": [tf.lite.Optimize.DEFAULT],
            "representative_dataset": representative_dataset,
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]}}


def litert_interpreter(path: str, num_threads: Optional[int] = None):
    """LiteRT's interpreter of the file at `path` (`ai_edge_litert`), its tensors allocated."""
    if importlib.util.find_spec("ai_edge_litert") is None:
        raise ExportError("running a LiteRT file needs LiteRT's interpreter: "
                          f"{FORMAT_EXTRAS['litert']}")
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def litert_probabilities(interpreter, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The probabilities an interpreter (`litert_interpreter`) gives for uint8 `images`,
    `batch_size` images per call (its input resized to a batch of another size)."""
    source, = interpreter.get_input_details()
    output, = interpreter.get_output_details()

    def run(batch: np.ndarray) -> np.ndarray:
        if tuple(interpreter.get_input_details()[0]["shape"]) != batch.shape:
            interpreter.resize_tensor_input(source["index"], batch.shape)
            interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], np.ascontiguousarray(batch))
        interpreter.invoke()
        return interpreter.get_tensor(output["index"]).copy()

    return in_batches(run, images, batch_size, output["shape"][-1])
