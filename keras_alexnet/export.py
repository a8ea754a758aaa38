"""Export the trained model as a SavedModel in TensorFlow Serving's versioned layout.

Layout: `saved_models_dir/model_name/<version>/` with integer versions, as TF Serving expects under
its model base path. A version is written under a temporary name beside it and renamed into place,
so TF Serving (which loads any version directory that appears) never sees a half-written export.

Signatures (tag `serve`), both with the same outputs:

| signature              | input                                                                 |
|------------------------|-----------------------------------------------------------------------|
| `serving_default`      | `images`: uint8 [None, 32, 32, 3], raw RGB pixels 0–255               |
| `classify_image_bytes` | `image_bytes`: string [None], encoded PNG or JPEG images of any size, |
|                        | decoded to RGB and resized to 32×32 (bilinear, antialiased)           |

| output          | dtype   | shape      | meaning                                  |
|-----------------|---------|------------|------------------------------------------|
| `probabilities` | float32 | [None, 10] | softmax over the classes                 |
| `class_id`      | int64   | [None]     | index of the most probable class         |
| `class_name`    | string  | [None]     | its name (`airplane` … `truck`)          |

Both run the model with `training=False`: no augmentation, no dropout; outputs are float32 also
for a mixed-precision model. TF Serving's REST API carries `image_bytes` as `{"b64": "…"}`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Optional, Sequence

import keras

from keras_alexnet.data import CLASS_NAMES, IMAGE_SHAPE
from keras_alexnet.serving import IMAGE_BYTES_SIGNATURE, SERVING_SIGNATURE



class ExportError(ValueError):
    """The SavedModel could not be written or found."""


def export_saved_model(model: keras.Model, saved_models_dir: str = "saved_models",
                       model_name: str = "alexnet_cifar10", version: Optional[int] = None,
                       class_names: Sequence[str] = CLASS_NAMES) -> str:
    """Writes `model` as SavedModel version `version` (default: the next free one).

    Args:
        model: A Keras model mapping float32 raw pixels to logits.
        saved_models_dir: Base directory of all exported models.
        model_name: Model directory name (TF Serving's `--model_name`).
        version: Integer version; `None` takes one more than the highest existing version.
        class_names: Names returned in the `class_name` output.

    Returns:
        The version directory written.

    Example:

    >>> export_saved_model(model, "saved_models", "alexnet_cifar10")
    'saved_models/alexnet_cifar10/1'
    """
    tf = _import_tensorflow()
    base = os.path.join(saved_models_dir, model_name)
    version = next_version(base) if version is None else version
    if not isinstance(version, int) or version < 0:
        raise ExportError(f"version must be a non-negative integer, got {version!r}")
    final = os.path.join(base, str(version))
    if os.path.exists(final):
        raise ExportError(f"{final} already exists; pick another version")
    os.makedirs(base, exist_ok=True)
    staging = os.path.join(base, f".tmp-{version}-{uuid.uuid4().hex}")
    names = tf.constant(list(class_names))

    def classify(images):
        logits = model(tf.cast(images, "float32"), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, "float32"), axis=-1)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(names, class_id)}

    def decode(image_bytes):
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        image = tf.image.resize(image, IMAGE_SHAPE[:2], antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    def classify_image_bytes(image_bytes):
        images = tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(IMAGE_SHAPE, tf.uint8))
        return classify(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, classify,
                         input_signature=[tf.TensorSpec((None, *IMAGE_SHAPE), tf.uint8, name="images")])
    archive.add_endpoint(IMAGE_BYTES_SIGNATURE, classify_image_bytes,
                         input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
    try:
        archive.write_out(staging, verbose=False)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def next_version(model_dir: str) -> int:
    """One more than the highest integer version under `model_dir` (1 when there is none)."""
    return max(existing_versions(model_dir), default=0) + 1


def existing_versions(model_dir: str) -> list[int]:
    """The integer version directories under `model_dir`, ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(model_dir, name)))


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory, or the newest version under a model directory."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = existing_versions(path)
    if not versions:
        raise ExportError(f"no SavedModel at {path} (no saved_model.pb and no version directory)")
    return os.path.join(path, str(versions[-1]))


def load_saved_model(path: str, signature: str = SERVING_SIGNATURE):
    """Loads a SavedModel (or a model directory's newest version) and returns one signature.

    The `serving_default` function takes `images=` uint8 `[N, 32, 32, 3]`, the
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
