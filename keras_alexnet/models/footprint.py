"""The memory a network's config asks for, counted from its layer sizes before anything is built:
every weight (convolution kernels and biases, batch norm, dense layers) and every layer's output
for one image, so that a small file declaring a huge network is refused in one line.

Example:

>>> sizes = keras_alexnet.models.AlexNet.layer_sizes({"width_multiplier": 0.25,
...                                                    "dense_units": 64})
>>> network_footprint(sizes).weights
162522
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keras_alexnet.errors import ModelError

DENSE_NAMES = ("fc6", "fc7", "fc8")
# The arguments of a whole network (`AlexNetNetwork`) that size its layers, and so its memory;
# `num_classes` None: the features alone, no head.
SIZE_ARGUMENTS = ("image_shape", "conv_filters", "conv_kernel_sizes", "conv_strides",
                  "conv_groups", "conv_lrn", "conv_pooling", "conv1_padding", "pool_size",
                  "pool_strides", "batch_norm", "dense_units", "dropout_before", "num_classes")

# The most a network may take, float32 weights and one image's activations together: four
# times the paper's network (61 M weights, 0.25 GB).
MAX_NETWORK_BYTES = 1 << 30
BYTES_PER_VALUE = 4  # float32


@dataclasses.dataclass(frozen=True)
class Footprint:
    """A network's size: its weights and the values its layers output for one image."""

    weights: int
    activations: int

    @property
    def bytes(self) -> int:
        """Both, as float32."""
        return BYTES_PER_VALUE * (self.weights + self.activations)


def checked_layer_sizes(network: type, config: Any, stored_bytes: int, bytes_per_weight: int,
                        what: str) -> dict[str, Any]:
    """The layer sizes a config of `network` (a class with `layer_sizes`) declares, once
    checked to fit the weights stored for it (`stored_bytes`, at least `bytes_per_weight` each)
    and `MAX_NETWORK_BYTES`, without building anything.

    Raises:
        ModelError: `config` is not an object, a size is not a positive integer, or the network
            is larger than its weights or than `MAX_NETWORK_BYTES` (`what` names its file).
    """
    if not isinstance(config, dict):
        raise ModelError(f"{what}: its network's config is not a JSON object")
    try:
        sizes = network.layer_sizes(config)
        footprint = network_footprint(sizes)
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelError(f"{what} declares a network that cannot be built: "
                         f"{' '.join(str(error).split())[:200]}") from error
    if bytes_per_weight * footprint.weights > stored_bytes:
        raise ModelError(f"{what} declares a network larger than the weights it stores "
                         f"({stored_bytes:,} bytes); it is damaged or not a trained model")
    if footprint.bytes > MAX_NETWORK_BYTES:
        raise ModelError(f"{what} declares a network of more than {MAX_NETWORK_BYTES >> 20:,} MiB "
                         f"(its weights and the activations of one image), the most allowed")
    return sizes


def network_footprint(sizes: dict[str, Any]) -> Footprint:
    """The weights and one image's activations of the network `sizes` describe (an
    `layer_sizes` of the package's models), counted as Keras builds it.

    Raises:
        ValueError: A size that is not a positive integer, or an image too small for the layers.
    """
    height, width, channels = _shape(sizes["image_shape"])
    padding = _natural(sizes["conv1_padding"], "conv1_padding", 0)
    activations = 2 * height * width * channels  # the input and its standardisation
    height, width = height + 2 * padding, width + 2 * padding
    activations += height * width * channels
    weights = 0
    batch_norm = sizes["batch_norm"]
    pool, pool_strides = (_natural(sizes[name], name) for name in ("pool_size", "pool_strides"))
    for index, (filters, kernel, stride, groups, lrn, pooling) in enumerate(zip(
            *(sizes[name] for name in ("conv_filters", "conv_kernel_sizes", "conv_strides",
                                       "conv_groups", "conv_lrn", "conv_pooling")))):
        filters, kernel, stride, groups = (
            _natural(value, f"conv{index + 1}'s {name}") for value, name in
            ((filters, "filters"), (kernel, "kernel size"), (stride, "stride"), (groups, "groups")))
        if index == 0:  # "valid", after its own padding; the others "same"
            height, width = ((side - kernel) // stride + 1 for side in (height, width))
        else:
            height, width = (-(-side // stride) for side in (height, width))
        weights += kernel * kernel * (channels // groups) * filters
        weights += 4 * filters if batch_norm else filters  # γ, β and the two statistics; or bias
        channels = filters
        activations += height * width * channels * ((3 if batch_norm else 1) + bool(lrn))
        if pooling:
            height, width = ((side - pool) // pool_strides + 1 for side in (height, width))
            activations += height * width * channels
        if min(height, width) < 1:
            raise ValueError(f"the images are too small for the layers: conv{index + 1} would "
                             f"have no output")
    if sizes["num_classes"] is None:  # the backbone alone
        return Footprint(weights, activations)
    units = _natural(sizes["dense_units"], "dense_units")
    classes = _natural(sizes["num_classes"], "num_classes")
    flat = height * width * channels
    activations += flat
    for name, inputs, outputs in zip(DENSE_NAMES, (flat, units, units), (units, units, classes)):
        weights += (inputs + 1) * outputs
        activations += outputs + (inputs if name in sizes["dropout_before"] else 0)
    return Footprint(weights, activations)


def _natural(value: Any, name: str, least: int = 1) -> int:
    """`value` when it is an integer of at least `least` (not a bool, a float or a string)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return value


def _shape(shape: Any) -> tuple[int, int, int]:
    """`(height, width, channels)`, each a positive integer."""
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ValueError(f"the image shape must be (height, width, channels), got {shape!r}")
    return tuple(_natural(side, "each side of the image shape") for side in shape)
