"""The tf.data pipelines of a run: training (shuffled, augmented per image, keyed to the epoch)
and evaluation."""

from __future__ import annotations

import math

import numpy as np

from keras_alexnet.data.passes import numbered_passes
from keras_alexnet.utils.random_draws import epoch_counter, seed_states, set_counter


def train_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, augmentation,
                  seed: int, deterministic: bool = False, jit_compile: bool = True,
                  next_epoch=None):
    """The training `tf.data.Dataset`: shuffled index batches → gather → augment → prefetch.

    Only indices are shuffled (no 40,000-image shuffle buffer); each batch gathers its images in
    one op and is augmented as a whole, with every image drawing its own random parameters. Each
    pass over the dataset is one epoch, numbered by the `next_epoch` counter, which the pass reads
    and advances when it starts; epoch `e`'s order and augmentation draws depend only on `seed`
    and `e` (see `random_draws`).

    Args:
        images: uint8 NHWC training images.
        labels: Integer labels.
        batch_size: Images per batch.
        augmentation: A Keras layer (for example `augment.build_augmentation(...)`) applied to each
            float32 batch with `training=True`. Build it outside a distribution strategy's scope:
            it belongs to the input pipeline, and its random state must live on the host.
        seed: Seed of the shuffle order (a new order every epoch).
        deterministic: Augment the batches one after another, so a run draws the same values
            whatever the thread timing (slower than the parallel default).
        jit_compile: Compile the augmentation with XLA (fused into a few loops: several times
            faster on a CPU).
        next_epoch: An int64 `tf.Variable` holding the number of the next pass; `None` starts a
            fresh one at 0. `callbacks.EpochKeyedDraws` sets it to the epoch `fit` starts at.
    """
    import tensorflow as tf

    count, steps = len(images), math.ceil(len(images) / batch_size)
    images, labels = tf.constant(images), tf.constant(labels)
    states = seed_states(augmentation)

    @tf.function(jit_compile=jit_compile)
    def augment(batch):
        return augmentation(tf.cast(batch, "float32"), training=True)

    def epoch_batches(epoch):
        with tf.control_dependencies(set_counter(states, epoch_counter(epoch))):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64),
                seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.range(steps).map(
            lambda step: order[step * batch_size:(step + 1) * batch_size])

    def gather(indices):
        return augment(tf.gather(images, indices)), tf.gather(labels, indices)

    return (
        numbered_passes(epoch_batches, next_epoch)
        .apply(tf.data.experimental.assert_cardinality(steps))
        .map(gather, num_parallel_calls=None if deterministic else tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int):
    """A validation or test `tf.data.Dataset` of float32 raw pixels: batch → prefetch."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(batch_size)
        .map(lambda x, y: (tf.cast(x, "float32"), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
