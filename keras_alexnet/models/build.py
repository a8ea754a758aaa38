"""`build_model()`: a network of `NETWORK_CATALOGUE` by name, with its own defaults;
`load_preset()`: any network trained, from a preset."""

from __future__ import annotations

import importlib
import inspect
from typing import Optional

import keras

from keras_alexnet.config.choices import NETWORK_CATALOGUE
from keras_alexnet.models.deprecation import rebuilding
from keras_alexnet.models.network import AlexNetNetwork


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


def build_model(variant: str = "cifar", **kwargs) -> keras.Model:
    """Builds a network of `NETWORK_CATALOGUE` by name: the seed's CIFAR-10 AlexNet or the paper's.

    Args:
        variant: `"cifar"` (`AlexNet`: the seed's 32×32 port, 10 classes, PyTorch's
            initialisation) or `"paper"` (`PaperAlexNet`: the 2012 network, 224×224 images,
            1000 classes, the paper's initialisation).
        **kwargs: Arguments of the chosen network's constructor (`conv1_stride`,
            `batch_norm`, … for `AlexNet`; `groups`, `lrn`, `input_shape`, … for
            `PaperAlexNet`); one that it does not take is refused.

    Raises:
        ValueError: An unknown `variant`, an argument the network does not take, or a value
            out of its range.

    Example:

    >>> build_model(seed=0).count_params()                        # the seed's CIFAR-10 model
    23272266
    >>> build_model("paper", num_classes=1000, groups=2, lrn=True, seed=0).count_params()
    60965224
    """
    network = network_class(variant)
    accepted = [name for name in inspect.signature(network).parameters if name != "kwargs"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"the {variant} network ({network.__name__}) does not take "
                         f"{', '.join(unknown)}; it takes {', '.join(accepted)}")
    with rebuilding():  # the package's own use of the one-model classes does not warn
        return network(**kwargs)


def load_preset(preset: str, sha256: Optional[str] = None,
                dtype: Optional[str] = None) -> keras.Model:
    """The trained network of a preset, whichever it is (`AlexNetNetwork.from_preset` with
    every network of `NETWORK_CATALOGUE` defined; `AlexNet.from_preset` takes only its own).

    Args:
        preset: A shipped preset's name, a preset directory, an `https://` URL (with
            `sha256`), `hf://…` or `kaggle://…`; see `AlexNet.from_preset`.
        sha256: The archive's SHA-256, for an `https://` URL.
        dtype: The dtype policy to compute in; `None`: the preset's (float32).

    Raises:
        ModelError: As `AlexNet.from_preset`, or a config of no network of this package.

    Example:

    >>> load_preset("alexnet_fast_cifar10").name
    'alexnet_cifar10'
    """
    for name in NETWORK_CATALOGUE:
        network_class(name)  # each network's class defined, so that the backbone finds it
    return AlexNetNetwork.from_preset(preset, sha256, dtype)
