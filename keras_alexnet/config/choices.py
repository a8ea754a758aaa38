"""The values `TrainConfig`'s fields choose from, which the command line offers as they are."""

from __future__ import annotations

import os

CIFAR10 = "cifar10"  # the default data set, held in memory as the seed's recipe needs
INITS = ("torch", "paper")
NETWORKS = ("cifar", "paper")
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
DEFAULT_COMPILATION_CACHE = os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
    "keras_alexnet", "jax")
