"""Each export format in its own runtime: the SavedModel in TensorFlow, LiteRT float32 and int8
in LiteRT's interpreter, ONNX in ONNX Runtime; file size, test accuracy, agreement with the float
model and images per second at batch 1 and batch 256, one JSON line per format, in one run.

    python benchmarks/export_formats.py [--preset NAME] [--data-dir DIR] [--quick]

The model is a shipped preset (default: the most accurate); the test images are CIFAR-10's
10,000 (`--quick`: the first 512, and 32 single-image calls instead of 256). Every runtime uses
all of the process's cores. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from common import DEFAULT_DATA_DIR, emit  # noqa: E402


def size_bytes(path: str) -> int:
    """The bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names)


def runners(preset: str, directory: str, data_dir: str):
    """(format, path, a function from uint8 images and a batch size to probabilities)."""
    import tensorflow as tf

    from keras_alexnet.serving.export import load_saved_model
    from keras_alexnet.serving.formats import export
    from keras_alexnet.serving.litert_export import litert_interpreter, litert_probabilities
    from keras_alexnet.serving.onnx_export import onnx_probabilities, onnx_session
    from keras_alexnet.utils.arrays import in_batches

    saved_model = export(preset, "savedmodel", saved_models_dir=directory, model_name="m")
    serve = load_saved_model(saved_model)

    def saved_model_probabilities(images, batch_size):
        return in_batches(lambda batch: serve(images=tf.constant(batch))["probabilities"].numpy(),
                          images, batch_size, serve.structured_outputs["probabilities"].shape[-1])

    yield "savedmodel", saved_model, saved_model_probabilities
    for name, quantize in (("litert", None), ("litert_int8", "int8")):
        path = export(preset, "litert", os.path.join(directory, f"{name}.tflite"),
                      quantize=quantize, data_dir=data_dir)
        interpreter = litert_interpreter(path, num_threads=os.cpu_count())
        yield name, path, lambda images, batch, it=interpreter: litert_probabilities(it, images,
                                                                                     batch)
    path = export(preset, "onnx", os.path.join(directory, "m.onnx"))
    session = onnx_session(path)
    yield "onnx", path, lambda images, batch: onnx_probabilities(session, images, batch)


def images_per_second(run, images: np.ndarray, batch_size: int) -> float:
    """Images per second of `run` over `images` in batches of `batch_size`, after one warm-up
    batch."""
    run(images[:batch_size], batch_size)
    start = time.perf_counter()
    run(images, batch_size)
    return len(images) / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=None, help="default: the most accurate shipped one")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--quick", action="store_true", help="512 test images (CI)")
    args = parser.parse_args(argv)

    from keras_alexnet.data.cifar10 import load_cifar10
    from keras_alexnet.models.catalogue import DEFAULT_PRESET

    preset = args.preset or DEFAULT_PRESET
    data = load_cifar10(args.data_dir)
    images, labels = data.x_test, data.y_test
    if args.quick:
        images, labels = images[:512], labels[:512]
    single_images = images[:32 if args.quick else 256]
    float_classes = None
    with tempfile.TemporaryDirectory() as directory:
        for name, path, run in runners(preset, directory, args.data_dir):
            classes = run(images, 256).argmax(1)  # and the warm-up of batch 256
            if float_classes is None:
                float_classes = classes
            emit("export_formats", format=name, preset=preset, bytes=size_bytes(path),
                 test_images=len(images), test_accuracy=float((classes == labels).mean()),
                 agreement_with_savedmodel=float((classes == float_classes).mean()),
                 images_per_second_batch_256=images_per_second(run, images, 256),
                 images_per_second_batch_1=images_per_second(run, single_images, 1))


if __name__ == "__main__":
    main()
