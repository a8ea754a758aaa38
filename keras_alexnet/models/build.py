"""`build_classifier()`: a network of `NETWORK_CATALOGUE` by name as the task, with its own
defaults (`build_model()`: as one model); `load_preset()`: a trained classifier, from a
preset."""

from __future__ import annotations

import importlib
import inspect
from typing import Optional

import keras

from keras_alexnet.config.choices import NETWORK_CATALOGUE
from keras_alexnet.models.architectures import ARCHITECTURES, architecture
from keras_alexnet.models.deprecation import rebuilding
from keras_alexnet.models.image_classifier import AlexNetImageClassifier
from keras_alexnet.models.preset_mapping import load_classifier
from keras_alexnet.models.preset_reading import PresetFiles


def network_class(name: str) -> type:
    """The Keras model class of network `name` in `config.choices.NETWORK_CATALOGUE`.

    Example:

    >>> network_class("paper").__name__
    'PaperAlexNet'
    """
    if name not in NETWORK_CATALOGUE:
        raise ValueError(f"variant must be one of {', '.join(NETWORK_CATALOGUE)}, got {name!r}")
    module, _, class_name = NETWORK_CATALOGUE[name].model_class.rpartition(".")
    return getattr(importlib.import_module(module), class_name)


def build_classifier(variant: str = "cifar", **kwargs) -> keras.Model:
    """Builds a network of `NETWORK_CATALOGUE` by name: the package's as an
    `AlexNetImageClassifier` (`"cifar"`: the seed's CIFAR-10 AlexNet, `"paper"`: the 2012
    network), another as the one-model class the catalogue names (`build_model`).

    Args:
        variant: `"cifar"` (`architectures.seed_network`: 32×32, 10 classes, PyTorch's
            initialisation) or `"paper"` (`architectures.paper_network`: 224×224, 1000
            classes, the paper's initialisation), or another name of the catalogue.
        **kwargs: The network's arguments (`conv1_stride`, `batch_norm`, … for `"cifar"`;
            `groups`, `lrn`, `image_shape`, … for `"paper"`), `seed`, `name` and `dtype`; one
            it does not take is refused.

    Raises:
        ValueError: An unknown `variant`, an argument the network does not take, or a value
            out of its range.

    Example:

    >>> build_classifier(seed=0).count_params()                  # the seed's CIFAR-10 model
    23272266
    >>> build_classifier("paper", num_classes=1000, groups=2, lrn=True, seed=0).count_params()
    60965224
    """
    if variant not in ARCHITECTURES:
        return build_model(variant, **kwargs)
    if "input_shape" in kwargs:  # the one-model `PaperAlexNet`'s name of it
        kwargs["image_shape"] = kwargs.pop("input_shape")
    _check_arguments(variant, architecture(variant), kwargs, ("seed", "name", "dtype"))
    return AlexNetImageClassifier.from_arguments(variant, **kwargs)


def build_model(variant: str = "cifar", **kwargs) -> keras.Model:
    """Builds a network of `NETWORK_CATALOGUE` by name as one model, the layout before the task
    (`AlexNet`, `PaperAlexNet`); `build_classifier` builds the task. Arguments as the class's.

    Raises:
        ValueError: An unknown `variant`, an argument the network does not take, or a value
            out of its range.

    Example:

    >>> build_model(seed=0).count_params()                        # the seed's CIFAR-10 model
    23272266
    """
    network = network_class(variant)
    _check_arguments(variant, network, kwargs)
    with rebuilding():  # the package's own use of the one-model classes does not warn
        return network(**kwargs)


def _check_arguments(variant: str, builder, kwargs: dict, more: tuple[str, ...] = ()) -> None:
    """`ValueError` naming the arguments in `kwargs` that `builder` does not take."""
    accepted = [*(name for name in inspect.signature(builder).parameters if name != "kwargs"),
                *more]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"the {variant} network ({builder.__name__}) does not take "
                         f"{', '.join(unknown)}; it takes {', '.join(accepted)}")


def load_preset(preset: str, sha256: Optional[str] = None,
                dtype: Optional[str] = None) -> keras.Model:
    """The trained classifier of a preset (`AlexNetImageClassifier.from_preset`, which loads
    the one-model layout too).

    Example:

    >>> load_preset("alexnet_fast_cifar10").count_params()
    1882218
    """
    return AlexNetImageClassifier.from_preset(preset, sha256, dtype)


def load_preset_files(files: PresetFiles, dtype: Optional[str] = None) -> keras.Model:
    """The trained classifier of a preset's files as `preset_reading.read_preset` read and
    checked them (see `load_preset`)."""
    return load_classifier(AlexNetImageClassifier, files, dtype)
