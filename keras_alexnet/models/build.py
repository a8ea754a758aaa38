"""`build_model()`: either network by name, with its own defaults; `load_preset()`: either
network trained, from a preset."""

from __future__ import annotations

import inspect
from typing import Optional

import keras

from keras_alexnet.errors import ModelError
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.paper_alexnet import PaperAlexNet
from keras_alexnet.models.preset_files import (
    CONFIG_FILE,
    load_network,
    preset_directory,
    read_preset_json,
    registered_name,
)

NETWORKS = {"cifar": AlexNet, "paper": PaperAlexNet}


def build_model(variant: str = "cifar", **kwargs) -> keras.Model:
    """Builds the seed's CIFAR-10 AlexNet or the paper's ImageNet AlexNet.

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
    if variant not in NETWORKS:
        raise ValueError(f"variant must be one of {', '.join(NETWORKS)}, got {variant!r}")
    network = NETWORKS[variant]
    accepted = [name for name in inspect.signature(network).parameters if name != "kwargs"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"the {variant} network ({network.__name__}) does not take "
                         f"{', '.join(unknown)}; it takes {', '.join(accepted)}")
    return network(**kwargs)


def load_preset(preset: str, sha256: Optional[str] = None,
                dtype: Optional[str] = None) -> keras.Model:
    """The trained network of a preset, whichever of the two it is (`AlexNet.from_preset` and
    `PaperAlexNet.from_preset` take only their own).

    Args:
        preset: A shipped preset's name, a preset directory, an `https://` URL (with
            `sha256`), `hf://…` or `kaggle://…`; see `AlexNet.from_preset`.
        sha256: The archive's SHA-256, for an `https://` URL.
        dtype: The dtype policy to compute in; `None`: the preset's (float32).

    Raises:
        ModelError: As `AlexNet.from_preset`, or a config of neither network.

    Example:

    >>> load_preset("alexnet_fast_cifar10").name
    'alexnet_cifar10'
    """
    directory = preset_directory(preset, sha256)
    config = read_preset_json(directory, CONFIG_FILE, preset)
    networks = {registered_name(network): network for network in NETWORKS.values()}
    network = networks.get(config.get("registered_name"))
    if network is None:
        raise ModelError(f"preset {preset!r} holds no network of this package "
                         f"({config.get('registered_name')!r})")
    return load_network(network, directory, config, preset, dtype)
