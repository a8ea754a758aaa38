"""On-device augmentation: images in accelerator memory, augmented inside the compiled train step.

`fit` is fed only image indices (and labels): as arrays it shuffles itself, or, on several
processes, as `IndexBatches`, each process's share of the same global batches.
`DeviceAugmentedModel` looks the images up in an `ImageStore` — one uint8 variable on the
accelerator (CIFAR-10's 50,000 images: 150 MB) — and, when training, runs the augmentation layers
on them before the model, all in the one XLA-compiled step: no host-side image work and no
per-step image transfer. The wrapper is only for training: it is never saved as a model or
exported; checkpoints and exports hold the wrapped model alone.
"""

from __future__ import annotations

import math
from typing import Optional

import keras
import numpy as np
from keras import ops

from keras_alexnet.data.process_shard import ProcessShard


class ImageStore(keras.layers.Layer):
    """A fixed set of images held in device memory as one non-trainable uint8 variable.

    Calling it with integer indices returns those images as float32. The images are data, not
    weights: `save_own_variables` writes nothing and `load_own_variables` reads nothing, so
    checkpoints and backups of a model that holds a store stay the size of the model.

    Args:
        images: uint8 `[N, height, width, channels]` images.

    Example:

    >>> store = ImageStore(np.zeros((10, 32, 32, 3), "uint8"))
    >>> tuple(store(np.array([0, 5, 9])).shape)
    (3, 32, 32, 3)
    """

    def __init__(self, images: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, height, width, channels], got "
                             f"{images.dtype} {images.shape}")
        self.images = self.add_weight(shape=images.shape, dtype="uint8", trainable=False,
                                      initializer=lambda shape, dtype: images, name="images")

    def call(self, indices):
        return ops.cast(ops.take(self.images, ops.cast(indices, "int32"), axis=0), "float32")

    def compute_output_shape(self, indices_shape):
        return tuple(indices_shape) + tuple(self.images.shape[1:])

    def save_own_variables(self, store):
        pass

    def load_own_variables(self, store):
        pass


class DeviceAugmentedModel(keras.Model):
    """Trains `model` on images looked up by index in device memory, augmented on the device.

    `call(indices, training)` = `model(augmentation(store[indices]), training)` with the
    augmentation only when `training` is true, so `fit` trains on augmented images and its
    validation (`training=False`) sees the stored images as they are.

    Args:
        model: The model to train (raw 0–255 pixels in).
        images: uint8 images to store on the device; indices address them.
        augmentation: A Keras layer (e.g. `augment.build_augmentation(...)`), written with
            `keras.ops` so it compiles into the train step.

    Example:

    >>> images = np.concatenate([split.x_train, split.x_val])         # train and validation
    >>> trainer = DeviceAugmentedModel(model, images, augmentation)
    >>> trainer.compile(optimizer=TorchSGD(0.01), loss=..., metrics=["accuracy"])
    >>> train_ids = np.arange(len(split.x_train))
    >>> val_ids = len(split.x_train) + np.arange(len(split.x_val))
    >>> trainer.fit(train_ids, split.y_train, batch_size=128,
    ...             validation_data=(val_ids, split.y_val), epochs=49)
    """

    def __init__(self, model: keras.Model, images: np.ndarray, augmentation: keras.layers.Layer,
                 **kwargs):
        super().__init__(**kwargs)
        self.network = model
        self.store = ImageStore(images, name="image_store")
        self.augmentation = augmentation
        self.build((None,))  # every part is built already: the store, the network, the layers

    def build(self, indices_shape):
        self.built = True

    def call(self, indices, training: bool = False):
        images = self.store(indices)
        if training:
            images = self.augmentation(images, training=True)
        return self.network(images, training=training)


class IndexBatches(keras.utils.PyDataset):
    """Batches of `ImageStore` indices and their labels, this process's share
    (`ProcessShard.share`) of every global batch: what `fit` takes on several processes, where
    each feeds its own part.

    With a `seed`, pass `e` goes through a permutation drawn from `(seed, e)` alone, so every
    process cuts the same global batches, and a resumed run draws what an uninterrupted one did;
    without one the images come in order (validation). `assign(epoch)` numbers the next pass
    (`callbacks.EpochKeyedDraws` calls it as `fit` starts); each pass's end counts one more.

    Args:
        first: The store index of the first image.
        labels: The images' labels; image `i` is store index `first + i`.
        batch_size: The global batch.
        shard: This process's place.
        seed: The shuffle's seed; `None` for the images in order.

    Example:

    >>> batches = IndexBatches(0, np.arange(10), 4, ProcessShard(1, 2))
    >>> [batch[0].tolist() for batch in batches]     # process 1's halves of 0–3, 4–7, 8–9
    [[2, 3], [6, 7], [9]]
    """

    def __init__(self, first: int, labels: np.ndarray, batch_size: int, shard: ProcessShard,
                 seed: Optional[int] = None):
        super().__init__()
        self.first = first
        self.labels = np.asarray(labels)
        self.batch_size = batch_size
        self.shard = shard
        self.seed = seed
        self.epoch = 0
        self._order: Optional[tuple[int, np.ndarray]] = None

    def assign(self, epoch: int) -> None:
        """Makes the next pass epoch `epoch`'s."""
        self.epoch = int(epoch)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __len__(self) -> int:
        count = len(self.labels)
        if count % self.batch_size and count % self.batch_size < self.shard.count:
            return count // self.batch_size  # a last batch too small to share is left out
        return math.ceil(count / self.batch_size)

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        batch = self.order()[step * self.batch_size:(step + 1) * self.batch_size]
        local = self.shard.share(batch)
        return (local + self.first).astype(np.int32), self.labels[local]

    def order(self) -> np.ndarray:
        """The images' order in this pass."""
        if self._order is None or self._order[0] != self.epoch:
            count = len(self.labels)
            order = (np.arange(count) if self.seed is None else
                     np.random.default_rng([self.seed, self.epoch]).permutation(count))
            self._order = (self.epoch, order)
        return self._order[1]
