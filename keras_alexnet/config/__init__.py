"""The run's configuration: `TrainConfig` (every hyperparameter, its defaults the seed's recipe),
the named recipes, the values its fields choose from, and the checks they share."""

from keras_alexnet.config.choices import (
    CIFAR10,
    DEFAULT_COMPILATION_CACHE,
    DISTRIBUTIONS,
    EXPORT_FORMATS,
    FILE_EXTENSIONS,
    INITS,
    QUANTIZATIONS,
    TEST_TIME_AUGMENTATIONS,
)
from keras_alexnet.config.migration import warn_renamed, with_keras_names
from keras_alexnet.config.recipes import RECIPES, Recipe, presets, recipes
from keras_alexnet.config.train_config import REFERENCE_BATCH_SIZE, RUN_ONLY_FIELDS, TrainConfig
from keras_alexnet.config.validation import (
    CIFAR_ONLY_FIELDS,
    FORMAT_EXTRAS,
    check_choice,
    check_export_format,
    check_momentum,
    check_packages,
    check_timeout,
    check_weight_decay,
)

__all__ = [
    "CIFAR10", "CIFAR_ONLY_FIELDS", "DEFAULT_COMPILATION_CACHE", "DISTRIBUTIONS", "EXPORT_FORMATS",
    "FILE_EXTENSIONS",
    "FORMAT_EXTRAS", "INITS", "QUANTIZATIONS", "RECIPES", "REFERENCE_BATCH_SIZE",
    "RUN_ONLY_FIELDS", "Recipe", "TEST_TIME_AUGMENTATIONS", "TrainConfig", "check_choice",
    "check_export_format", "check_momentum", "check_packages", "check_timeout",
    "check_weight_decay", "presets", "recipes", "warn_renamed", "with_keras_names",
]
