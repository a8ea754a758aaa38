"""Export the trained model as a SavedModel in TensorFlow Serving's versioned layout.

Layout: `saved_models_dir/model_name/<version>/` with integer versions, as TF Serving expects under
its model base path. A version is written under a temporary name beside it and renamed into place,
so TF Serving (which loads any version directory that appears) never sees a half-written export.

Signatures (tag `serve`), both with the same outputs; S is the model's input side (32 for the
CIFAR network, 224 for the paper's):

| signature              | input                                                                 |
|------------------------|-----------------------------------------------------------------------|
| `serving_default`      | `images`: uint8 [None, S, S, 3], raw RGB pixels 0–255                 |
| `classify_image_bytes` | `image_bytes`: string [None], encoded PNG, JPEG or BMP images of any   |
|                        | size within the export's pixel limits (per image, default 4096²; per  |
|                        | request, default 4 × 4096²; read from the headers before decoding),   |
|                        | decoded one at a time to RGB and brought to S×S (bilinear,            |
|                        | antialiased): resized (CIFAR network), or the paper's test view,      |
|                        | the shorter side resized to 256 and the centre 224×224 (paper's)      |

| output          | dtype   | shape      | meaning                                  |
|-----------------|---------|------------|------------------------------------------|
| `probabilities` | float32 | [None, C]  | softmax over the C classes               |
| `class_id`      | int64   | [None]     | index of the most probable class         |
| `class_name`    | string  | [None]     | its name (`airplane` … `truck` for CIFAR-10) |

The class names, one a line, are also in the version's `assets.extra/class_names.txt` (a file
TF Serving leaves alone), for clients that rank more than the first class, with TF Serving's
warm-up requests (`tf_serving_warmup_requests`, `serving.warmup`).

Both run the model with `training=False` (no augmentation, no dropout), give float32 outputs
also for a mixed-precision model, and empty outputs for an empty batch. A request runs through
the model `SERVING_CHUNK` (256) images at a time, so its memory does not grow with the number of
images beyond the images and outputs themselves. A bad image fails the request with
`InvalidArgument` naming the element (`image_bytes[3] …`): a GIF, not an image of these formats,
cut short, or over the pixel limit; a request over its limit fails naming its total
(`keras_alexnet.serving.image_bytes`). TF Serving's REST API carries `image_bytes` as
`{"b64": "…"}`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid
from typing import Optional, Sequence

import keras

from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.data.imagenet import eval_view
from keras_alexnet.errors import ExportError
from keras_alexnet.models.backbone import eval_resize_side
from keras_alexnet.run_dir import (
    CLASS_NAMES_FILE,
    check_directory,
    class_names_in,
    new_directory,
    write_class_names,
)
from keras_alexnet.serving.image_bytes import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
    bound_request,
    check_pixel_limit,
)
from keras_alexnet.serving.signatures import (
    IMAGE_BYTES_INPUT,
    IMAGE_BYTES_SIGNATURE,
    IMAGES_INPUT,
    SERVING_SIGNATURE,
)
from keras_alexnet.serving.versions import (
    STAGING_PREFIX,
    publish,
    remove_abandoned_staging,
    resolve_saved_model,
)
from keras_alexnet.serving.warmup import WARMUP_FILE, write_warmup_requests
from keras_alexnet.utils.native_stderr import native_stderr_silenced

logger = logging.getLogger(__name__)

# The signature contract, which serving clients (`keras_alexnet.serving.client`) import from here.
SERVING_CHUNK = 256  # images per model call in a signature: memory stays that of 256 images
EXTRA_ASSETS = "assets.extra"  # files beside a SavedModel that TF Serving does not load


def export_saved_model(model: keras.Model, saved_models_dir: str = "saved_models",
                       model_name: str = "alexnet_cifar10", version: Optional[int] = None,
                       class_names: Sequence[str] = CLASS_NAMES,
                       max_image_pixels: int = DEFAULT_MAX_PIXELS,
                       max_request_pixels: int = DEFAULT_MAX_REQUEST_PIXELS) -> str:
    """Writes `model` as SavedModel version `version` (default: the next free one).

    Exporters running at once into one `saved_models_dir` each get their own version: a version
    directory appears by one rename, and an exporter that finds its number taken takes the next.

    Args:
        model: A Keras model mapping float32 raw pixels to logits; its input shape is the
            signatures' (a `PaperAlexNet` gets the paper's test view of encoded images).
        saved_models_dir: Base directory of all exported models.
        model_name: Model directory name (TF Serving's `--model_name`).
        version: Integer version; `None` takes one more than the highest existing version.
        class_names: Names returned in the `class_name` output, one per logit.
        max_image_pixels: `classify_image_bytes` refuses images whose header declares more
            pixels (width × height) than this, before decoding them.
        max_request_pixels: `classify_image_bytes` refuses a request whose images declare more
            pixels in all than this, before decoding any (it decodes them one at a time).

    Returns:
        The version directory written.

    Example:

    >>> model = keras_alexnet.AlexNetImageClassifier.from_arguments(seed=0)
    >>> export_saved_model(model, "saved_models", "alexnet_cifar10")
    'saved_models/alexnet_cifar10/1'
    """
    tf = _import_tensorflow()
    if version is not None and (not isinstance(version, int) or version < 0):
        raise ExportError(f"version must be a non-negative integer, got {version!r}")
    check_pixel_limit(max_image_pixels, "max_image_pixels")
    check_pixel_limit(max_request_pixels, "max_request_pixels")
    check_class_names(model, class_names)
    base = os.path.join(saved_models_dir, model_name)
    if version is not None and os.path.exists(os.path.join(base, str(version))):
        raise ExportError(f"{os.path.join(base, str(version))} already exists; "
                          "pick another version")
    check_directory(base, "model directory")
    with new_directory(base, "model directory"):  # removed again if it stays empty
        remove_abandoned_staging(base)
        staging = os.path.join(base, f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-"
                                     f"{uuid.uuid4().hex}")
        try:
            archive = _export_archive(model, tf, class_names, max_image_pixels,
                                      max_request_pixels)
            with native_stderr_silenced():  # a failed write is logged there too; it raises here
                archive.write_out(staging, verbose=False)
            os.makedirs(os.path.join(staging, EXTRA_ASSETS))
            write_class_names(os.path.join(staging, EXTRA_ASSETS, CLASS_NAMES_FILE), class_names)
            write_warmup_requests(os.path.join(staging, EXTRA_ASSETS, WARMUP_FILE), model_name,
                                  model.input_shape[1:],
                                  {SERVING_SIGNATURE: (IMAGES_INPUT, "pixels"),
                                   IMAGE_BYTES_SIGNATURE: (IMAGE_BYTES_INPUT, "encoded")})
            return publish(staging, base, version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def check_class_names(model: keras.Model, class_names: Sequence[str]) -> None:
    """`ExportError` unless there is one class name for each of `model`'s outputs."""
    if len(class_names) != model.output_shape[-1]:
        raise ExportError(f"the model has {model.output_shape[-1]} classes but "
                          f"{len(class_names)} class names were given")


def _export_archive(model: keras.Model, tf, class_names: Sequence[str], max_image_pixels: int,
                    max_request_pixels: int) -> keras.export.ExportArchive:
    """The two serving signatures around `model` (see the module docstring)."""
    names = tf.constant(list(class_names))
    image_shape = tuple(model.input_shape[1:])
    side = image_shape[0]

    def probabilities_of(images):  # `SERVING_CHUNK` images per model call, one call at a time
        chunks = (tf.shape(images)[0] + SERVING_CHUNK - 1) // SERVING_CHUNK

        def step(index, results):
            chunk = images[index * SERVING_CHUNK:(index + 1) * SERVING_CHUNK]
            logits = model(tf.cast(chunk, "float32"), training=False)
            return index + 1, results.write(index, tf.nn.softmax(tf.cast(logits, "float32")))

        results = tf.TensorArray(tf.float32, size=chunks, infer_shape=False,
                                 element_shape=tf.TensorShape([None, len(class_names)]))
        _, results = tf.while_loop(lambda index, _: index < chunks, step, (0, results),
                                   parallel_iterations=1)
        return results.concat()

    def classify(images):
        def run():
            probabilities = probabilities_of(images)
            class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
            return {"probabilities": probabilities, "class_id": class_id,
                    "class_name": tf.gather(names, class_id)}

        def nothing():  # an empty request gets empty answers, not an error from the model
            return {"probabilities": tf.zeros((0, len(class_names)), tf.float32),
                    "class_id": tf.zeros((0,), tf.int64), "class_name": tf.zeros((0,), tf.string)}

        return tf.cond(tf.shape(images)[0] > 0, run, nothing)

    def decode(data):  # an image `bound_request` has checked
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = eval_view(image, side, eval_resize_side(model))
        return tf.cast(tf.round(image), tf.uint8)

    def classify_image_bytes(image_bytes):
        with tf.control_dependencies([bound_request(image_bytes, max_image_pixels,
                                                    max_request_pixels)]):
            images = tf.map_fn(decode, image_bytes, parallel_iterations=1,
                               fn_output_signature=tf.TensorSpec(image_shape, tf.uint8))
        return classify(images)

    archive = keras.export.ExportArchive()
    # Not `archive.track(model)`: the endpoints track the variables they use, and tracking the
    # model too would store every weight a second time (as its Keras variable).
    archive.add_endpoint(SERVING_SIGNATURE, classify,
                         input_signature=[tf.TensorSpec((None, *image_shape), tf.uint8,
                                                        name=IMAGES_INPUT)])
    archive.add_endpoint(IMAGE_BYTES_SIGNATURE, classify_image_bytes,
                         input_signature=[tf.TensorSpec((None,), tf.string,
                                                        name=IMAGE_BYTES_INPUT)])
    return archive


def saved_model_class_names(path: str) -> tuple[str, ...]:
    """The class names of a SavedModel (or a model directory's newest version) this package
    exported, in label order (CIFAR-10's for an export that predates `assets.extra`)."""
    return class_names_in(os.path.join(resolve_saved_model(path), EXTRA_ASSETS, CLASS_NAMES_FILE))


def load_saved_model(path: str, signature: str = SERVING_SIGNATURE):
    """Loads a SavedModel (or a model directory's newest version) and returns one signature.

    The `serving_default` function takes `images=` uint8 `[N, S, S, 3]`, the
    `classify_image_bytes` function `image_bytes=` string `[N]`; both return the output dict.
    """
    tf = _import_tensorflow()
    loaded = tf.saved_model.load(resolve_saved_model(path))
    return loaded.signatures[signature]


def _import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ExportError("exporting or loading a SavedModel needs TensorFlow "
                          "(pip install tensorflow)") from error
    return tf
