"""A training dataset as numbered passes: each pass reads its epoch from a counter as it starts
and advances it, so that its random draws can be keyed to the epoch, and a resumed run (whose
`fit` sets the counter: `training.callbacks.EpochKeyedDraws`) draws its epochs again."""

from __future__ import annotations

from typing import Callable


def pass_counter():
    """A training dataset's pass counter: an int64 `tf.Variable` holding the number of its next
    pass, from 0."""
    import tensorflow as tf

    return tf.Variable(0, dtype=tf.int64, trainable=False)


def numbered_passes(one_pass: Callable, next_epoch=None):
    """The `tf.data.Dataset` of `one_pass(epoch)`'s elements, a new pass each time it is
    iterated; `epoch` (an int64 tensor) is read from `next_epoch` (`None`: a fresh
    `pass_counter()`) as the pass starts, after the previous pass's last element."""
    import tensorflow as tf

    next_epoch = pass_counter() if next_epoch is None else next_epoch
    return tf.data.Dataset.from_tensors(0).flat_map(
        lambda _: one_pass(next_epoch.assign_add(1) - 1))
