"""`keras-alexnet predict`: what it checks before anything is imported or read, and then does:
classify image files with a local SavedModel, a preset, or a TF Serving server."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional

from keras_alexnet.cli.commands import UserError, check_flag, stopped_by_signals
from keras_alexnet.cli.flags import PROG
from keras_alexnet.config import check_timeout
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import ImageError
from keras_alexnet.models.catalogue import DEFAULT_PRESET, shipped_presets
from keras_alexnet.run_dir import read_class_names
from keras_alexnet.serving.image_bytes import MAX_IMAGE_FILE_BYTES
from keras_alexnet.utils.image_files import FORMATS, NotARegularFile, open_regular_file
from keras_alexnet.utils.native_stderr import native_stderr_silenced


def check_predict(args: argparse.Namespace) -> None:
    """Checks the flags and reads `--class-names` (into `args.names`, `None` without it)."""
    if not 1 <= args.top_k <= 10:
        raise UserError(f"--top-k must be in 1..10, got {args.top_k}")
    check_flag(check_timeout, args.timeout, "--timeout")
    args.names = (None if args.class_names is None
                  else read_class_names(args.class_names, f"--class-names {args.class_names}"))


def run_predict(args: argparse.Namespace) -> int:
    """Classifies the images one file at a time, printing each answer as it comes: memory stays
    that of one image, however many files are given."""
    with stopped_by_signals("while classifying"):
        return _predict(args)


def _predict(args: argparse.Namespace) -> int:
    if args.server:
        names = args.names or CLASS_NAMES
        classify = classify_on_server(args.server, args.model_name, args.timeout, len(names))
    else:
        from keras_alexnet.serving.export import saved_model_class_names

        model = local_saved_model(args.model)
        names = saved_model_class_names(model)
        if args.names is not None:
            if len(args.names) != len(names):
                raise UserError(f"--class-names {args.class_names} names {len(args.names)} "
                                f"classes; the model {model} has {len(names)}")
            names = args.names
        classify = classify_locally(model, len(names))
    results = []
    for path in args.images:
        top = classify(path, read_image_file(path)).top_k(args.top_k, names)
        if args.json:
            results.append({"image": path, "top": [{"class_name": name, "probability": p}
                                                   for name, p in top]})
        else:
            print(f"{path}: {', '.join(f'{name} {p:.3f}' for name, p in top)}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def classify_on_server(server: str, model_name: str, timeout: float, num_classes: int):
    """`classify(path, data)`: TF Serving's `Prediction` of one encoded image."""
    from keras_alexnet.serving import client

    def classify(path: str, data: bytes):
        return client.predict(server, model_name, client.image_bytes_request([data]),
                              timeout=timeout, num_classes=num_classes)[0]

    return classify


def local_saved_model(model: Optional[str]) -> str:
    """The SavedModel `predict` runs: `--model`'s, a preset's (exported once, then cached), or
    without `--model` the default shipped preset's, said on stderr."""
    if model is None:
        accuracy = shipped_presets()[DEFAULT_PRESET]["test_accuracy"]
        print(f"{PROG}: no --model: using the shipped preset {DEFAULT_PRESET} ({accuracy:.2%} "
              f"on CIFAR-10's test images)", file=sys.stderr)
        model = DEFAULT_PRESET
    from keras_alexnet.serving.presets import saved_model_of

    return saved_model_of(model)


def read_image_file(path: str, name: Optional[str] = None) -> bytes:
    """The bytes of an image file, after checking that it is a regular file of at most
    `MAX_IMAGE_FILE_BYTES` (a FIFO, a device or a huge sparse file are never read whole);
    errors name it `name` (default: `path`)."""
    from keras_alexnet.serving.client import check_encoded_image

    name = path if name is None else name
    too_large = UserError(f"{name} is larger than {MAX_IMAGE_FILE_BYTES // 2 ** 20} MiB, the "
                          f"most an image file may be")
    try:
        with open_regular_file(path) as file:
            if os.fstat(file.fileno()).st_size > MAX_IMAGE_FILE_BYTES:
                raise too_large
            data = file.read(MAX_IMAGE_FILE_BYTES + 1)
    except NotARegularFile as error:
        raise UserError(f"{name} is not a regular file") from error
    except OSError as error:
        raise UserError(f"cannot read {name}: {error.strerror or error}") from error
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
