"""The paper's input pipeline for ImageNet-style tensorflow-datasets (`imagenette`, `imagenet2012`).

Training: resize the shorter side to 256, random 224×224 crop, horizontal flip, pixels on the raw
0–255 scale (what both networks take), then PCA colour jitter in `mode="paper"` (Δ = V·(λ ⊙ α),
α ~ N(0, 0.1), with ImageNet's 0–1-scale eigenvalues ×255) per batch; every draw stateless, keyed
to (seed, epoch, image).
Evaluation: the same resize and the centre 224×224 crop, or, for the paper's 10-crop test, the
centre 256×256 square from which `evaluation.ten_crop_probabilities` takes its ten 224×224 patches.
Everything is tf.data and TensorFlow ops (no Keras layer), so the pipelines feed `fit` on any
Keras backend; they need TensorFlow.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from keras_alexnet.data.passes import numbered_passes
from keras_alexnet.data.tfds_download import prepare_tfds
from keras_alexnet.errors import DataError

SHORTER_SIDE = 256
CROP_SIZE = 224
# The RGB covariance of ImageNet's training pixels on the 0–1 scale, as fb.resnet.torch publishes
# it, in ascending order; column i of the eigenvectors belongs to eigenvalue i (as `PixelStats`).
IMAGENET_EIGENVALUES = (0.0045, 0.0188, 0.2175)
IMAGENET_EIGENVECTORS = ((0.4009, 0.7192, -0.5675),
                         (-0.8140, -0.0045, -0.5808),
                         (0.4203, -0.6948, -0.5836))


def load_tfds(name: str, split: str, data_dir: Optional[str] = None, download: bool = True,
              shuffle_files: bool = False, seed: Optional[int] = None):
    """One split of a tensorflow-datasets image-classification dataset as `(image, label)` pairs.

    Args:
        name: A tfds name, e.g. `"imagenette/320px-v2"` or `"imagenet2012"` (whose archives must
            be downloaded by hand into tfds' `manual_dir` first).
        split: A tfds split, e.g. `"train"`, `"validation"`, `"train[:90%]"`.
        data_dir: tfds' data directory; `None` is tfds' default (`~/tensorflow_datasets`).
        download: Let tfds download and prepare the dataset if it is not there yet.
        shuffle_files: Read the split's files in a new order every pass (training).
        seed: Seed of that order.

    Returns:
        `(dataset, info)`: a `tf.data.Dataset` of uint8 HWC images of any size with int64 labels,
        and the `tfds.core.DatasetInfo` (class names in `info.features["label"].names`).

    Raises:
        DataError: The dataset is unknown, unavailable or is not image classification.

    Example:

    >>> dataset, info = load_tfds("imagenette/320px-v2", "train")
    >>> info.features["label"].num_classes
    10
    """
    import tensorflow_datasets as tfds

    if download:
        prepare_tfds(name, data_dir)
    try:
        dataset, info = tfds.load(name, split=split, data_dir=data_dir, download=download,
                                  as_supervised=True, with_info=True, shuffle_files=shuffle_files,
                                  read_config=tfds.ReadConfig(shuffle_seed=seed))
    except Exception as error:  # tfds raises many kinds: unknown name, network, manual download.
        raise DataError(f"could not load {name!r} split {split!r} through tensorflow-datasets: "
                        f"{' '.join(str(error).split())}") from error
    if set(info.supervised_keys or ()) != {"image", "label"}:
        raise DataError(f"{name!r} is not an image-classification dataset "
                        f"(supervised keys {info.supervised_keys})")
    return dataset, info


def decode_image_file(path):
    """The uint8 RGB pixels of one PNG, JPEG or BMP file (its path a string tensor)."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def pca_jitter(images, alphas, eigenvalues: Sequence[float],
               eigenvectors: Sequence[Sequence[float]]):
    """The paper's PCA colour jitter of a float32 0–255 batch, in TensorFlow ops: per image
    Δ = V·(255·λ ⊙ α), with its row of `alphas` ([N, 3], drawn from N(0, σ)) as α, added to
    every pixel, clipped to 0–255 (as `augment.PCAColorJitter(mode="paper")` on 0–255 pixels,
    with λ on the 0–1 scale)."""
    import tensorflow as tf

    # Δ = V·(s ⊙ α) = α · (V·diag(s))ᵀ for a row vector α.
    projection = tf.constant((np.asarray(eigenvectors, np.float64)
                              * (np.asarray(eigenvalues) * 255.0)).T, tf.float32)
    delta = tf.matmul(alphas, projection)
    return tf.clip_by_value(images + delta[:, None, None, :], 0.0, 255.0)


def resize_shorter_side(image, size: int = SHORTER_SIDE):
    """Resizes one HWC image so that its shorter side is `size`, keeping the aspect ratio.

    Returns float32 pixels on the raw 0–255 scale (bilinear, antialiased when shrinking).
    """
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    new_shape = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    image = tf.cast(image, tf.float32)
    return tf.clip_by_value(tf.image.resize(image, new_shape, antialias=True), 0.0, 255.0)


def center_crop(image, size: int):
    """The centre `size`×`size` patch of one HWC image at least that large."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    return tf.image.crop_to_bounding_box(image, (height - size) // 2, (width - size) // 2, size,
                                         size)


# The longest side, in shorter sides, of an image resized for the test view (see `eval_view`).
MAX_EVAL_ASPECT = 4


def aspect_limited(image, max_aspect: int = MAX_EVAL_ASPECT):
    """The centre of one HWC image whose longer side is at most `max_aspect` times its shorter
    one (the image itself when it is)."""
    import tensorflow as tf

    height, width = tf.shape(image)[0], tf.shape(image)[1]
    longest = tf.minimum(height, width) * max_aspect
    kept_height, kept_width = tf.minimum(height, longest), tf.minimum(width, longest)
    return tf.image.crop_to_bounding_box(image, (height - kept_height) // 2,
                                         (width - kept_width) // 2, kept_height, kept_width)


def eval_view(image, size: int, shorter_side: Optional[int] = None):
    """One HWC image as a network of `size`×`size` input sees it at test: its shorter side
    resized to `shorter_side` and the centre `size`×`size` cut (the paper's view: 256, then
    224), or, without `shorter_side`, the whole image resized to `size`×`size`; float32 pixels
    on the raw 0–255 scale (bilinear, antialiased when shrinking). An image more than
    `MAX_EVAL_ASPECT` times longer than wide (or wider than long) is first cut to its centre of
    that aspect, so that a 1×16,000 image is not resized to 256×4,096,000 pixels; the centre
    crop only ever sees the middle of it."""
    import tensorflow as tf

    if shorter_side is not None:
        return center_crop(resize_shorter_side(aspect_limited(image), shorter_side), size)
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def train_dataset(dataset, batch_size: int, crop_size: int = CROP_SIZE,
                  shorter_side: int = SHORTER_SIDE, pca_stddev: float = 0.1,
                  eigenvalues: Sequence[float] = IMAGENET_EIGENVALUES,
                  eigenvectors: Sequence[Sequence[float]] = IMAGENET_EIGENVECTORS,
                  shuffle_buffer: int = 10_000, seed: Optional[int] = None, next_epoch=None):
    """The paper's training pipeline: shuffle → resize → random crop + flip → batch → PCA jitter.

    Each pass over the returned dataset is one epoch, numbered by the `next_epoch` counter,
    which the pass reads and advances when it starts. An image's crop, flip and jitter are
    stateless draws keyed to the seed, the epoch and the image's place in `dataset`: the same
    seed draws the same values however the parallel maps are scheduled, and a pipeline whose
    `next_epoch` starts at `e` (a resumed run's) gives each image what an uninterrupted one gave
    it in pass `e`. The shuffle buffer's order comes from the seed's sequence of orders, a new
    one each pass from the pipeline's start, as does a folder's and a tfds set's file order: so
    two fresh pipelines agree, and a resumed one batches the images in another order.

    Args:
        dataset: `(uint8 image, label)` pairs, e.g. from `load_tfds`.
        batch_size: Images per batch (128 in the paper).
        crop_size: Side of the random square crop.
        shorter_side: The shorter image side before cropping.
        pca_stddev: σ of the PCA jitter coefficients (0 turns the jitter off).
        eigenvalues: RGB covariance eigenvalues of the training pixels on the 0–1 scale, as
            ImageNet's are published (Δ = V·(λ ⊙ α) is linear in λ: the jitter multiplies them
            by 255 for the pipeline's 0–255 pixels).
        eigenvectors: The matching eigenvectors (columns).
        shuffle_buffer: Images in the shuffle buffer; 0 for none (`dataset` comes shuffled).
        seed: Seed of the shuffle, crops, flips and jitter; `None` draws one.
        next_epoch: An int64 `tf.Variable` holding the number of the next pass; `None` starts a
            fresh one at 0. `training.callbacks.EpochKeyedDraws` sets it to the epoch `fit`
            starts at.

    Returns:
        A `tf.data.Dataset` of `(float32 [batch, crop, crop, 3] on 0–255, int64 labels)`.

    Example:

    >>> dataset, info = load_tfds("imagenette/320px-v2", "train")
    >>> model = build_model("paper", num_classes=info.features["label"].num_classes)
    >>> model.fit(train_dataset(dataset, 128, seed=0), epochs=90)
    """
    import tensorflow as tf

    if crop_size > shorter_side:
        raise ValueError(f"crop_size {crop_size} is larger than shorter_side {shorter_side}")
    seed = int(np.random.default_rng().integers(2**31)) if seed is None else seed
    fold_in = tf.random.experimental.stateless_fold_in

    def augment(index, image, label, epoch_key):
        crop_key, flip_key, jitter_key = tf.unstack(
            tf.random.experimental.stateless_split(fold_in(epoch_key, index), 3))
        image = resize_shorter_side(image, shorter_side)
        image = tf.image.stateless_random_crop(image, (crop_size, crop_size, 3), crop_key)
        image = tf.image.stateless_random_flip_left_right(image, flip_key)
        return image, label, tf.random.stateless_normal((3,), jitter_key, stddev=pca_stddev)

    def jitter(images, labels, alphas):
        if not pca_stddev:
            return images, labels
        return pca_jitter(images, alphas, eigenvalues, eigenvectors), labels

    # Each image keyed by its place in `dataset`, then a new order each pass from the seed's
    # sequence of orders (an order keyed to the epoch needs a seed tensor, which TensorFlow's
    # seed check refuses under a global seed of 0).
    images = dataset.enumerate()
    if shuffle_buffer:
        images = images.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    def one_pass(epoch):
        epoch_key = fold_in(tf.constant([seed, 0], tf.int64), epoch)
        return (images.map(lambda index, pair: augment(index, *pair, epoch_key),
                           num_parallel_calls=tf.data.AUTOTUNE)
                .batch(batch_size).map(jitter, num_parallel_calls=tf.data.AUTOTUNE))

    return numbered_passes(one_pass, next_epoch).prefetch(tf.data.AUTOTUNE)


def eval_dataset(dataset, batch_size: int, crop_size: int = CROP_SIZE,
                 shorter_side: int = SHORTER_SIDE, ten_crop: bool = False):
    """The paper's evaluation pipeline: resize the shorter side → centre crop → batch.

    Args:
        dataset: `(uint8 image, label)` pairs, e.g. from `load_tfds`.
        batch_size: Images per batch.
        crop_size: Side of the centre crop the model sees.
        shorter_side: The shorter image side before cropping.
        ten_crop: Yield the centre `shorter_side`×`shorter_side` squares instead, for
            `evaluation.ten_crop_probabilities(..., crop_size)` to cut the paper's ten patches from.

    Returns:
        A `tf.data.Dataset` of `(float32 [batch, size, size, 3] on 0–255, int64 labels)`.

    Example:

    >>> dataset, info = load_tfds("imagenette/320px-v2", "validation")
    >>> metrics = evaluate_dataset(model, eval_dataset(dataset, 128, ten_crop=True),
    ...                                       class_names=info.features["label"].names,
    ...                                       ten_crop=True, crop_size=224)
    """
    import tensorflow as tf

    if crop_size > shorter_side:
        raise ValueError(f"crop_size {crop_size} is larger than shorter_side {shorter_side}")
    size = shorter_side if ten_crop else crop_size

    def preprocess(image, label):
        return eval_view(image, size, shorter_side), label

    return (dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))

