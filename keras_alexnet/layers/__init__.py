"""The package's Keras layers: the augmentation (`PCAColorJitter`, `RandomPadCrop`, `Cutout`,
and `build_augmentation`, the seed's stack of them) and the paper's
`LocalResponseNormalization`. Names load on first use."""

from keras_alexnet.utils.lazy_names import lazy_names

_NAMES = {
    "Cutout": "keras_alexnet.data.augment",
    "PCAColorJitter": "keras_alexnet.data.augment",
    "RandomPadCrop": "keras_alexnet.data.augment",
    "build_augmentation": "keras_alexnet.data.augment",
    "LocalResponseNormalization": "keras_alexnet.models.layers",
    # deprecated: keras.layers.RandomFlip("horizontal")
    "RandomHorizontalFlip": "keras_alexnet.data.augment",
}
__all__ = ["Cutout", "LocalResponseNormalization", "PCAColorJitter", "RandomPadCrop",
           "build_augmentation"]
__getattr__, __dir__ = lazy_names(__name__, _NAMES, __all__)
