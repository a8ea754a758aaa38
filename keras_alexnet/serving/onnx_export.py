"""ONNX files of a trained model, and ONNX Runtime to run them.

A file takes uint8 pixels `images` `[N, S, S, 3]` and gives float32 `probabilities` `[N, C]`
(`pixel_model`), as the SavedModel's `serving_default` does, with a free batch size. Keras
converts the model (`model.export(format="onnx")`, through `tf2onnx` on the TensorFlow backend);
the class names are in the file's metadata (`class_names`, a JSON list). Both converter and
runtime come with `pip install 'keras_alexnet[onnx]'`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import warnings
from typing import Sequence

import keras
import numpy as np

from keras_alexnet.config import FILE_EXTENSIONS, FORMAT_EXTRAS, check_export_format
from keras_alexnet.errors import ExportError
from keras_alexnet.run_dir import check_output_file
from keras_alexnet.serving.export import check_class_names
from keras_alexnet.serving.pixel_model import PROBABILITIES_OUTPUT, pixel_model, pixel_signature
from keras_alexnet.utils.arrays import in_batches
from keras_alexnet.utils.atomic import atomic_path

CLASS_NAMES_KEY = "class_names"


def export_onnx(model: keras.Model, path: str, class_names: Sequence[str]) -> str:
    """Writes `model` as an ONNX file at `path` (replacing one there at once, never half).

    Args:
        model: A Keras model from float32 raw pixels to logits (`AlexNet`, `PaperAlexNet`).
        path: The file to write; it must end in `.onnx`.
        class_names: The class of each output, stored in the file's metadata.

    Returns:
        `path`.

    Example:

    >>> names = [f"class {index}" for index in range(10)]
    >>> model = keras_alexnet.AlexNetImageClassifier.from_arguments(seed=0)
    >>> export_onnx(model, "alexnet.onnx", names)
    'alexnet.onnx'
    """
    if not path.endswith(FILE_EXTENSIONS["onnx"]):
        raise ExportError(f"an ONNX file's name ends in {FILE_EXTENSIONS['onnx']}, got {path}")
    check_export_format("onnx")
    check_class_names(model, class_names)
    check_output_file(path, "ONNX file")
    import onnx

    portable = pixel_model(model, grouped_convolutions=False)
    with atomic_path(path) as staging:
        # tf2onnx's use of NumPy names NumPy 2 deprecates, and what older Keras prints whatever
        # `verbose` says.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)
            portable.export(staging, format="onnx", verbose=False,
                            input_signature=pixel_signature(portable))
        converted = onnx.load(staging)
        _name_the_output(converted.graph, PROBABILITIES_OUTPUT)
        converted.metadata_props.add(key=CLASS_NAMES_KEY, value=json.dumps(list(class_names)))
        onnx.save(converted, staging)
    return path


def _name_the_output(graph, name: str) -> None:
    """Renames the graph's one output (tf2onnx calls it `Identity:0`) to `name`."""
    output, = graph.output
    for node in graph.node:
        node.output[:] = [name if tensor == output.name else tensor for tensor in node.output]
    output.name = name


def onnx_session(path: str, num_threads: int = 0):
    """An ONNX Runtime session of the file at `path` on the CPU (`num_threads` 0: all cores)."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise ExportError(f"running an ONNX file needs ONNX Runtime: {FORMAT_EXTRAS['onnx']}")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = num_threads
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_probabilities(session, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The probabilities a session (`onnx_session`) gives for uint8 `images`, `batch_size`
    images per call."""
    source, = session.get_inputs()
    return in_batches(lambda batch: session.run([PROBABILITIES_OUTPUT], {source.name: batch})[0],
                      images, batch_size, session.get_outputs()[0].shape[-1])


def onnx_class_names(session) -> list[str]:
    """The class names stored in an ONNX file this package wrote."""
    return json.loads(session.get_modelmeta().custom_metadata_map[CLASS_NAMES_KEY])
