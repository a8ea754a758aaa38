"""One export call for every format: a TF Serving SavedModel, a LiteRT file (float32 or int8) or
an ONNX file, of a model, a `.keras` file, a run directory or a preset."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import keras
import numpy as np

from keras_alexnet.config import FILE_EXTENSIONS, check_export_format
from keras_alexnet.data.cifar10 import CLASS_NAMES, load_cifar10
from keras_alexnet.data.imagenet import eval_view
from keras_alexnet.errors import ExportError
from keras_alexnet.models.backbone import eval_resize_side
from keras_alexnet.run_dir import check_directory, check_output_file, new_directory
from keras_alexnet.serving.export import export_saved_model
from keras_alexnet.serving.image_bytes import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
    check_pixel_limit,
)
from keras_alexnet.serving.litert_export import export_litert
from keras_alexnet.serving.onnx_export import export_onnx
from keras_alexnet.serving.presets import model_and_class_names

REPRESENTATIVE_IMAGES = 200  # CIFAR-10 training images that calibrate an int8 file


def export(model: Union[keras.Model, str], format: str = "savedmodel",
           output: Optional[str] = None, quantize: Optional[str] = None,
           representative_images: Optional[np.ndarray] = None, data_dir: Optional[str] = None,
           saved_models_dir: str = "saved_models", model_name: str = "alexnet_cifar10",
           class_names: Optional[Sequence[str]] = None,
           max_image_pixels: int = DEFAULT_MAX_PIXELS,
           max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS) -> str:
    """Exports `model` in `format`; returns the SavedModel version directory or the file.

    Args:
        model: A Keras model, a `.keras` file, a `train()` run directory (its `best.keras`) or a
            preset.
        format: `"savedmodel"` (TF Serving's versioned layout, `export_saved_model`),
            `"litert"` or `"onnx"`; the files take the `serving_default` signature's uint8
            pixels and give its probabilities.
        output: The LiteRT or ONNX file; default `saved_models_dir/model_name.tflite`
            (`_int8.tflite` quantized) or `.onnx`.
        quantize: `"int8"` for an integer LiteRT file.
        representative_images: uint8 images at the model's input size that calibrate int8;
            default: 200 CIFAR-10 training images (`data_dir`, else tensorflow-datasets) in the
            model's test view.
        data_dir: A local CIFAR-10 copy for the default representative images.
        saved_models_dir: Base directory of the exports.
        model_name: The SavedModel's directory name (TF Serving's `--model_name`) and the
            files' default name.
        class_names: The class of each output; default: the run's or the preset's, else
            CIFAR-10's.
        max_image_pixels, max_request_pixels: The SavedModel's `classify_image_bytes` limits
            (`export_saved_model`).

    Example:

    >>> export("alexnet_fast_cifar10", format="litert")
    'saved_models/alexnet_cifar10.tflite'
    """
    check_export_format(format, quantize)
    if output is not None and format == "savedmodel":
        raise ExportError("a SavedModel goes to saved_models_dir/model_name/<version>: "
                          "output is for the LiteRT and ONNX files")
    if format == "savedmodel":  # what it writes is checked before the model is loaded
        check_pixel_limit(max_image_pixels, "max_image_pixels")
        check_pixel_limit(max_request_pixels, "max_request_pixels")
        check_directory(os.path.join(saved_models_dir, model_name), "model directory")
    else:
        path = output or default_output(saved_models_dir, model_name, format, quantize)
        check_output_file(path, "output")
    if isinstance(model, str):
        model, found_names = model_and_class_names(model)
        class_names = class_names or found_names
    class_names = class_names or CLASS_NAMES
    if format == "savedmodel":
        return export_saved_model(model, saved_models_dir, model_name, class_names=class_names,
                                  max_image_pixels=max_image_pixels,
                                  max_request_pixels=max_request_pixels)
    if quantize and representative_images is None:
        representative_images = cifar10_representatives(model, data_dir)
    with new_directory(os.path.dirname(os.path.abspath(path)), "folder of the output"):
        if format == "onnx":
            return export_onnx(model, path, class_names)
        return export_litert(model, path, class_names, quantize, representative_images)


def default_output(saved_models_dir: str, model_name: str, format: str,
                   quantize: Optional[str]) -> str:
    """`saved_models_dir/model_name[_int8].tflite` or `saved_models_dir/model_name.onnx`."""
    suffix = f"_{quantize}" if quantize else ""
    return os.path.join(saved_models_dir, f"{model_name}{suffix}{FILE_EXTENSIONS[format]}")


def cifar10_representatives(model: keras.Model, data_dir: Optional[str] = None,
                            count: int = REPRESENTATIVE_IMAGES) -> np.ndarray:
    """`count` CIFAR-10 training images (a seeded choice) as `model` sees them at test time:
    as they are for a 32×32 input, else in its test view (`data.imagenet.eval_view`, with
    `models.backbone.eval_resize_side(model)`)."""
    train = load_cifar10(data_dir).x_train
    images = train[np.sort(np.random.default_rng(0).permutation(len(train))[:count])]
    side = model.input_shape[1]
    if side == images.shape[1]:
        return images
    return np.stack([np.round(eval_view(image, side, eval_resize_side(model)).numpy())
                     .astype("uint8") for image in images])
