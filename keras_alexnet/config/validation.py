"""`TrainConfig`'s validation (each value's type, choices and range; the network and its data
set together), and the checks of values that a `TrainConfig` and the parts it configures
(`TorchSGD`, `LayerInitializers`, `devices.place`) both take, or that the command line and the
serving clients both take (a timeout): each rule is written once, here."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import types
import typing
from typing import TYPE_CHECKING, Any, Optional

from keras_alexnet.config.choices import CIFAR10, EXPORT_FORMATS, QUANTIZATIONS
from keras_alexnet.errors import ConfigError

if TYPE_CHECKING:
    from keras_alexnet.config.train_config import TrainConfig


def validate(config: TrainConfig) -> None:
    """Raises `ConfigError`, in one line naming the field, for the first value of `config` of
    the wrong type, not among its field's choices or out of its range."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        _check_type(field.name, value, hints[field.name])
        choices = field.metadata.get("choices")  # the same list the CLI offers
        if choices is not None:
            check_choice(value, choices, f"TrainConfig.{field.name}")
    _check_ranges(config)
    config.time_budget_seconds  # noqa: B018 - parsing it is the check
    check_momentum(config.momentum, "TrainConfig.momentum")
    check_weight_decay(config.weight_decay, "TrainConfig.weight_decay")
    _check_network_fields(config)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    allowed = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    if value is None and type(None) in allowed:
        return
    for kind in allowed:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind in (str, bool) and isinstance(value, kind):
            return
    wanted = " or ".join("None" if k is type(None) else k.__name__ for k in allowed)
    raise ConfigError(f"TrainConfig.{name} must be {wanted}, got {value!r}")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


# The fields only the CIFAR network and its in-memory images use, with the values that leave
# them off.
CIFAR_ONLY_FIELDS = {"conv1_stride": 2, "batch_norm": False, "width_multiplier": 1.0,
                     "dense_units": 4096, "cutout": 0}


def _check_network_fields(config: TrainConfig) -> None:
    """The network and the data set go together: a network trained on images in memory trains on
    CIFAR-10 only, and the fields of the CIFAR network's recipe do not apply to one that streams
    its images."""
    if not config.streams_images and config.dataset != CIFAR10:
        raise ConfigError(f"TrainConfig.dataset {config.dataset!r} needs network='paper' (the "
                          f"CIFAR network trains on cifar10 only); use the paper recipe")
    if config.streams_images:
        changed = [name for name, off in CIFAR_ONLY_FIELDS.items() if getattr(config, name) != off]
        if changed:
            raise ConfigError(f"TrainConfig.{changed[0]} applies to the CIFAR network only, not "
                              f"to network={config.network!r}")
        if config.augmentation == "device":
            raise ConfigError("TrainConfig.augmentation='device' holds CIFAR-10 in the device's "
                              f"memory; network={config.network!r} streams its images "
                              "('pipeline')")
    if config.dataset == CIFAR10 and config.validation_size >= 50_000:
        raise ConfigError(f"TrainConfig.validation_size must be below CIFAR-10's 50000 training "
                          f"images, got {config.validation_size}")


def _check_ranges(config: TrainConfig) -> None:
    checks = [
        ("epochs", config.epochs >= 1, "must be >= 1"),
        ("batch_size", config.batch_size >= 1, "must be >= 1"),
        ("eval_batch_size", config.eval_batch_size >= 1, "must be >= 1"),
        ("learning_rate", config.learning_rate > 0, "must be > 0"),
        ("lr_decay_epoch", config.lr_decay_epoch >= 0, "must be >= 0"),
        ("lr_decay_factor", 0 < config.lr_decay_factor <= 1, "must be in (0, 1]"),
        ("warmup_epochs", 0 <= config.warmup_epochs < config.epochs, "must be in [0, epochs)"),
        ("label_smoothing", 0 <= config.label_smoothing < 1, "must be in [0, 1)"),
        ("cutout", 0 <= config.cutout <= 32, "must be in [0, 32]"),
        ("width_multiplier", 0 < config.width_multiplier <= 4, "must be in (0, 4]"),
        ("dense_units", config.dense_units >= 1, "must be >= 1"),
        ("global_clipnorm", config.global_clipnorm is None or config.global_clipnorm > 0,
         "must be > 0 or None"),
        ("validation_size", config.validation_size >= 1, "must be >= 1"),
        ("lr_patience", config.lr_patience >= 0, "must be >= 0"),
        ("dataset", bool(config.dataset), "must not be empty"),
        ("pad", 0 <= config.pad <= 16, "must be in [0, 16]"),
        ("pca_stddev", config.pca_stddev >= 0, "must be >= 0"),
        ("seed", config.seed >= 0, "must be >= 0"),
        ("dropout", 0 <= config.dropout < 1, "must be in [0, 1)"),
        ("output_dir", bool(config.output_dir), "must not be empty"),
        ("saved_models_dir", bool(config.saved_models_dir), "must not be empty"),
        ("model_name", bool(config.model_name) and os.sep not in config.model_name,
         "must be a non-empty name without path separators"),
        ("train_subset", config.train_subset is None or config.train_subset >= 1,
         "must be >= 1 or None"),
        ("steps_per_execution",
         config.steps_per_execution is None or config.steps_per_execution >= 1,
         "must be >= 1 or None"),
        ("cpu_threads", config.cpu_threads is None or config.cpu_threads >= 0,
         "must be >= 0 or None"),
        ("checkpoint_every", config.checkpoint_every is None or config.checkpoint_every >= 0,
         "must be >= 0 or None"),
    ]
    for name, ok, rule in checks:
        if not ok:
            raise ConfigError(f"TrainConfig.{name} {rule}, got {getattr(config, name)!r}")


def check_choice(value: Any, choices: typing.Sequence[Any], name: str) -> None:
    """Raises `ConfigError`, naming the value `name`, unless `value` is one of `choices`."""
    if not any(value == choice and type(value) is type(choice) for choice in choices):
        raise ConfigError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_momentum(momentum: float, name: str = "momentum") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `momentum` is in [0, 1)."""
    if not 0 <= momentum < 1:
        raise ConfigError(f"{name} must be in [0, 1), got {momentum!r}")


def check_weight_decay(weight_decay: float, name: str = "weight_decay") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `weight_decay` is >= 0."""
    if not weight_decay >= 0:
        raise ConfigError(f"{name} must be >= 0, got {weight_decay!r}")


def check_packages(config: TrainConfig) -> None:
    """Raises `ConfigError` when an option of `config` needs a package that is not installed
    (`tensorboard=True`: TensorBoard, which TensorFlow no longer installs)."""
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("TrainConfig.tensorboard needs TensorBoard: pip install tensorboard "
                          "(or install this package with its [tensorboard] extra)")


# What installs each export format's converter and runtime, and the converter's packages
# beyond TensorFlow (which converts LiteRT files itself).
FORMAT_EXTRAS = {"litert": "pip install 'keras_alexnet[litert]'",
                 "onnx": "pip install 'keras_alexnet[onnx]'"}
CONVERTER_PACKAGES = {"onnx": ("tf2onnx", "onnx")}


def check_export_format(format: str, quantize: Optional[str] = None) -> None:
    """Raises `ConfigError` for an unknown format or quantization, a quantization outside
    LiteRT, or a format whose converter is not installed (naming what to install)."""
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got "
                          f"{quantize!r}")
    if quantize and format != "litert":
        raise ConfigError(f"{quantize} quantization is for the litert format, not {format}")
    missing = [name for name in CONVERTER_PACKAGES.get(format, ())
               if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"the {format} export needs {' and '.join(missing)}: "
                          f"{FORMAT_EXTRAS[format]}")


def check_timeout(timeout: float, name: str = "timeout") -> None:
    """Raises `ConfigError`, naming the value `name`, unless `timeout` is a positive finite
    number of seconds."""
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"{name} must be a positive finite number of seconds, got {timeout!r}")
