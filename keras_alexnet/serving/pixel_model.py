"""The network as the LiteRT and ONNX files run it: uint8 pixels in, float32 probabilities out.

Both formats take what `serving_default` takes (uint8 `[N, S, S, 3]`, the model's own side S)
and give its `probabilities` (float32 `[N, C]`, softmax over the classes). Two changes to the
network make it portable, neither of which changes what it computes beyond float rounding:

- every layer runs in float32 (a mixed-precision model keeps its weights in float32 already, so
  they are copied as they are; LiteRT's and ONNX Runtime's CPU kernels have no bfloat16);
- the per-channel standardisation `(x - mean) / std` becomes `x * (1 / std) - mean / std`
  (`keras.layers.Rescaling`), whose constants are part of the graph: `keras.layers.Normalization`
  holds its statistics as tensors outside the graph, which the ONNX converter leaves as inputs
  nobody feeds.

ONNX also gets each grouped convolution (the paper network's conv2, conv4 and conv5) as one
ungrouped convolution whose kernel is block-diagonal, zero between groups: the same sums, and an
operator the ONNX converter knows (TensorFlow runs a grouped convolution on a CPU as a compiled
function call, which it does not).
"""

from __future__ import annotations

import keras
import numpy as np

from keras_alexnet.errors import ExportError
from keras_alexnet.models.preset_mapping import as_one_model

IMAGES_INPUT = "images"
PROBABILITIES_OUTPUT = "probabilities"


def pixel_model(model: keras.Model, grouped_convolutions: bool = True) -> keras.Model:
    """`model` (raw pixels to logits) as a float32 model from uint8 pixels to probabilities.

    Args:
        model: An `AlexNetImageClassifier` (as `preset_mapping.as_one_model` flattens it) or
            any functional model of the package's layers.
        grouped_convolutions: `False` turns each grouped convolution into an ungrouped one with
            a block-diagonal kernel.

    Returns:
        A functional model: input `images` uint8 `[None, S, S, 3]`, output `probabilities`
        float32 `[None, C]`, the weights `model`'s.

    Example:

    >>> portable = pixel_model(keras_alexnet.AlexNetImageClassifier.from_arguments(seed=0))
    >>> portable.predict(np.zeros((2, 32, 32, 3), "uint8"), verbose=0).shape
    (2, 10)
    """
    model = as_one_model(model)  # every layer in one graph, to copy and convert one by one
    try:
        network = keras.models.clone_model(
            model, clone_function=lambda layer: _float32_layer(layer, grouped_convolutions))
    except ValueError as error:  # a subclassed model without a functional graph
        raise ExportError(f"cannot export {model.name}: {error}") from error
    for layer in model.layers:
        copy = network.get_layer(layer.name)
        weights = layer.get_weights()
        if getattr(layer, "groups", 1) != getattr(copy, "groups", 1):
            weights[0] = block_diagonal(weights[0], layer.groups)
        copy.set_weights(weights)
    images = keras.Input(shape=model.input_shape[1:], dtype="uint8", name=IMAGES_INPUT)
    logits = network(keras.ops.cast(images, "float32"), training=False)
    probabilities = keras.layers.Softmax(dtype="float32", name=PROBABILITIES_OUTPUT)(logits)
    return keras.Model(images, probabilities, name=f"{model.name}_pixels")


def pixel_signature(model: keras.Model) -> list[keras.InputSpec]:
    """The input signature of `pixel_model(model)`: uint8 `images` `[None, S, S, 3]`."""
    return [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="uint8",
                            name=IMAGES_INPUT)]


def block_diagonal(kernel: np.ndarray, groups: int) -> np.ndarray:
    """The ungrouped `[h, w, in, out]` kernel of a grouped convolution's `[h, w, in/groups,
    out]` one: group g's inputs feed only its outputs, as `Conv2D(groups=groups)` computes."""
    height, width, group_inputs, outputs = kernel.shape
    group_outputs = outputs // groups
    full = np.zeros((height, width, group_inputs * groups, outputs), kernel.dtype)
    for group in range(groups):
        outs = slice(group * group_outputs, (group + 1) * group_outputs)
        full[:, :, group * group_inputs:(group + 1) * group_inputs, outs] = kernel[..., outs]
    return full


def _float32_layer(layer: keras.layers.Layer, grouped_convolutions: bool) -> keras.layers.Layer:
    """A float32 copy of `layer`; a `Normalization` as the `Rescaling` that computes it, and
    unless `grouped_convolutions` a grouped convolution as an ungrouped one."""
    config = layer.get_config()
    if not grouped_convolutions and config.get("groups", 1) > 1:
        config["groups"] = 1
    if isinstance(layer, keras.layers.Normalization):
        mean = np.asarray(config["mean"], "float64").reshape(-1)
        std = np.maximum(np.sqrt(np.asarray(config["variance"], "float64").reshape(-1)),
                         keras.backend.epsilon())  # as `Normalization` bounds it
        return keras.layers.Rescaling(scale=(1 / std).tolist(), offset=(-mean / std).tolist(),
                                      dtype="float32", name=layer.name)
    return layer.__class__.from_config({**config, "dtype": "float32"})
