"""On-device augmentation: images in accelerator memory, augmented inside the compiled train step.

`fit` is fed only image indices (and labels). `DeviceAugmentedModel` looks the images up in an
`ImageStore` — one uint8 variable on the accelerator (CIFAR-10's 50,000 images: 150 MB) — and,
when training, runs the augmentation layers on them before the model, all in the one XLA-compiled
step: no host-side image work and no per-step image transfer. The wrapper is only for training:
it is never saved as a model or exported; checkpoints and exports hold the wrapped model alone.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


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
