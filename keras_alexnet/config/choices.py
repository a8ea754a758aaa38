"""The values `TrainConfig`'s fields choose from, which the command line offers as they are."""

from __future__ import annotations

import dataclasses
import os

CIFAR10 = "cifar10"  # the default data set, held in memory as the seed's recipe needs
INITS = ("torch", "paper")


@dataclasses.dataclass(frozen=True)
class Network:
    """A network `TrainConfig.network` names: its class, and where its runs' images come from.

    Attributes:
        model_class: `"module.Class"` of the Keras model `models.build_model` builds (a subclass
            of `models.backbone.AlexNetBackbone`: the architecture is its arguments).
        streams_images: `False`: CIFAR-10 at its own 32×32, held in memory and augmented by the
            package's layers; `True`: any data set, streamed, resized and cropped in `tf.data`.
    """

    model_class: str
    streams_images: bool


# The networks by name (`TrainConfig.network`'s choices); a new network is a line here and its
# class.
NETWORK_CATALOGUE = {
    "cifar": Network("keras_alexnet.models.alexnet.AlexNet", streams_images=False),
    "paper": Network("keras_alexnet.models.paper_alexnet.PaperAlexNet", streams_images=True),
}
DISTRIBUTIONS = ("auto", "mirrored", "tpu", "multi_host", "none")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
JIT_COMPILE = ("auto", True, False)  # Keras' `jit_compile` values
AUGMENTATION_PLACES = ("auto", "pipeline", "device")
LR_SCHEDULES = ("step", "cosine", "linear", "plateau")
TEST_TIME_AUGMENTATIONS = ("none", "flip", "ten_crop")
VERBOSITIES = ("auto", 0, 1, 2)  # Keras' `fit(verbose=…)`, and a bar only on a terminal
CONV1_STRIDES = (1, 2)
EXPORT_FORMATS = ("savedmodel", "litert", "onnx")  # `keras-alexnet export --format`
QUANTIZATIONS = ("int8",)  # `--quantize`, LiteRT only
FILE_EXTENSIONS = {"litert": ".tflite", "onnx": ".onnx"}  # the formats written as one file


def cache_home() -> str:
    """The user's cache folder: `$XDG_CACHE_HOME` when it is an absolute path (the XDG spec
    ignores an empty or relative one), else `~/.cache`."""
    home = os.environ.get("XDG_CACHE_HOME", "")
    return home if os.path.isabs(home) else os.path.join(os.path.expanduser("~"), ".cache")


DEFAULT_COMPILATION_CACHE = os.path.join(cache_home(), "keras_alexnet", "jax")
