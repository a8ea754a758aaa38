"""Classifying encoded image files as `predict` and the demo do: an image file read within
bounds, and a classifier of its bytes, by a local SavedModel or a TF Serving server."""

from __future__ import annotations

import os
from typing import Optional

from keras_alexnet.errors import ImageError
from keras_alexnet.serving.image_bytes import MAX_IMAGE_FILE_BYTES
from keras_alexnet.utils.image_files import FORMATS, NotARegularFile, open_regular_file
from keras_alexnet.utils.native_stderr import native_stderr_silenced


def classify_on_server(server: str, model_name: str, timeout: float, num_classes: int):
    """`classify(path, data)`: TF Serving's `Prediction` of one encoded image."""
    from keras_alexnet.serving import client

    def classify(path: str, data: bytes):
        return client.predict(server, model_name, client.image_bytes_request([data]),
                              timeout=timeout, num_classes=num_classes)[0]

    return classify


def read_image_file(path: str, name: Optional[str] = None) -> bytes:
    """The bytes of an image file, after checking that it is a regular file of at most
    `MAX_IMAGE_FILE_BYTES` (a FIFO, a device or a huge sparse file are never read whole);
    errors name it `name` (default: `path`)."""
    from keras_alexnet.serving.client import check_encoded_image

    name = path if name is None else name
    too_large = ImageError(f"{name} is larger than {MAX_IMAGE_FILE_BYTES // 2 ** 20} MiB, the "
                          f"most an image file may be")
    try:
        with open_regular_file(path) as file:
            if os.fstat(file.fileno()).st_size > MAX_IMAGE_FILE_BYTES:
                raise too_large
            data = file.read(MAX_IMAGE_FILE_BYTES + 1)
    except NotARegularFile as error:
        raise ImageError(f"{name} is not a regular file") from error
    except OSError as error:
        raise ImageError(f"cannot read {name}: {error.strerror or error}") from error
    if len(data) > MAX_IMAGE_FILE_BYTES:  # it grew after fstat
        raise too_large
    check_encoded_image(data, name)
    return data


def classify_locally(model: str, num_classes: int):
    """`classify(path, data)`: the local SavedModel's `Prediction` of one encoded image; an image
    it cannot decode is an `ImageError` naming `path`."""
    import tensorflow as tf

    from keras_alexnet.serving.client import predictions_from_outputs
    from keras_alexnet.serving.export import IMAGE_BYTES_SIGNATURE, load_saved_model
    from keras_alexnet.serving.image_bytes import refusal

    signature = load_saved_model(model, IMAGE_BYTES_SIGNATURE)

    def classify(path: str, data: bytes):
        try:
            # TF's C++ side logs a failed decode as well ("Local rendezvous is aborting…") on
            # some runs; the Python error below is the one line the user gets.
            with native_stderr_silenced():
                outputs = signature(image_bytes=tf.constant([data]))
            return predictions_from_outputs(outputs, num_classes=num_classes)[0]
        except tf.errors.InvalidArgumentError as error:
            reason = refusal(error.message)
            detail = (reason.split("] ", 1)[-1] if reason
                      else f"could not be decoded as {FORMATS}")
            raise ImageError(f"{path} {detail}") from error

    return classify
