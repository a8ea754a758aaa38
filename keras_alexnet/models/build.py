"""`build_model()`: either network by name, with its own defaults."""

from __future__ import annotations

import inspect

import keras

from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.paper_alexnet import PaperAlexNet

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
