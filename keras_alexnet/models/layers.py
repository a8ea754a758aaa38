"""The blocks both networks are built of (input standardisation, convolution + ReLU, dense +
ReLU, float32 logits) and the paper's local response normalisation."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import keras
from keras import ops

# fc6 and fc7's width in both networks (the paper's).
DENSE_UNITS = 4096
DENSE_NAMES = ("fc6", "fc7", "fc8")


def normalization(mean: Sequence[float], std: Sequence[float]) -> keras.layers.Normalization:
    """The layer of per-channel `(images - mean) / std` in float32, every network's first."""
    return keras.layers.Normalization(mean=list(mean), variance=[s * s for s in std],
                                      dtype="float32", name="normalize")


def standardize(images, mean: Sequence[float], std: Sequence[float]):
    """`images` through a new `normalization(mean, std)` layer."""
    return normalization(mean, std)(images)


def conv_relu(x, filters: int, kernel: int, name: str, initializers: Callable[[str, int], dict],
              strides: int = 1, groups: int = 1, padding: str = "same", batch_norm: bool = False,
              dtype=None):
    """`Conv2D` then ReLU, with batch normalisation (PyTorch's momentum 0.1 and ε 1e-5) and no
    convolution bias between them when `batch_norm`; `initializers(name, fan_in)` gives the
    convolution's initializer arguments."""
    fan_in = x.shape[-1] // groups * kernel * kernel
    x = keras.layers.Conv2D(filters, kernel, strides=strides, groups=groups, padding=padding,
                            activation=None if batch_norm else "relu", use_bias=not batch_norm,
                            name=name, dtype=dtype, **initializers(name, fan_in))(x)
    if not batch_norm:
        return x
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn",
                                        dtype=dtype)(x)
    return keras.layers.ReLU(name=f"{name}_relu", dtype=dtype)(x)


def dense(x, units: int, name: str, initializers: Callable[[str, int], dict],
          activation: Optional[str] = "relu", dtype=None):
    """A `Dense` layer (ReLU unless `activation` says otherwise) with the initializers
    `initializers(name, fan_in)` gives."""
    return keras.layers.Dense(units, activation=activation, name=name, dtype=dtype,
                              **initializers(name, x.shape[-1]))(x)


def classifier_head(x, num_classes: int, dense_units: int, dropout: float,
                    dropout_before: Sequence[str], initializers: Callable[[str, int], dict],
                    dtype=None):
    """Flatten → fc6 → fc7 → fc8 logits (float32) on features `x`, ReLU after fc6 and fc7, and
    dropout before the dense layers `dropout_before` names."""
    x = keras.layers.Flatten(name="flatten", dtype=dtype)(x)
    for layer_name in DENSE_NAMES:
        if layer_name in dropout_before:
            x = keras.layers.Dropout(dropout, name=f"{layer_name}_dropout", dtype=dtype)(x)
        last = layer_name == DENSE_NAMES[-1]
        x = dense(x, num_classes if last else dense_units, layer_name, initializers,
                  activation=None if last else "relu", dtype="float32" if last else dtype)
    return x


def check_head(num_classes: int, dropout: float, dense_units: int = DENSE_UNITS,
               dropout_before: Sequence[str] = DENSE_NAMES) -> None:
    """`ValueError` unless `num_classes` and `dense_units` >= 1, `dropout` is in [0, 1) and
    `dropout_before` names dense layers only."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if dense_units < 1:
        raise ValueError(f"dense_units must be >= 1, got {dense_units!r}")
    unknown = sorted(set(dropout_before) - set(DENSE_NAMES))
    if unknown:
        raise ValueError(f"dropout_before names {', '.join(unknown)}; the dense layers are "
                         f"{', '.join(DENSE_NAMES)}")


def check_crop_fraction(fraction: Optional[float]) -> None:
    """`ValueError` unless a test crop fraction is in (0, 1] or `None`."""
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"test_crop_fraction must be in (0, 1] or None, got {fraction!r}")


@keras.saving.register_keras_serializable(package="keras_alexnet")
class LocalResponseNormalization(keras.layers.Layer):
    """The paper's local response normalisation across channels (Section 3.3).

    b[..., i] = a[..., i] / (k + α Σ_j a[..., j]²)^β, the sum over the `size` channels
    j = i − size//2 … i + size//2 that exist. The same as `tf.nn.local_response_normalization`
    with `depth_radius=size // 2, bias=k, alpha=alpha, beta=beta` (α is not divided by `size`,
    unlike PyTorch's and Caffe's `LocalResponseNorm`), which this layer calls on the TensorFlow
    backend; other backends run the same formula in `keras.ops`.

    Args:
        size: Number of adjacent channels summed over (odd; the paper's n = 5).
        k: Additive constant (the paper's k = 2).
        alpha: Scale of the sum of squares (the paper's α = 1e-4).
        beta: Exponent (the paper's β = 0.75).

    Example:

    >>> lrn = LocalResponseNormalization(size=5, k=2.0, alpha=1e-4, beta=0.75)
    >>> tuple(lrn(np.ones((1, 4, 4, 96), "float32")).shape)
    (1, 4, 4, 96)
    """

    def __init__(self, size: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75,
                 **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"size must be a positive odd number, got {size}")
        self.size = int(size)
        self.k = float(k)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        radius = self.size // 2
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.nn.local_response_normalization(inputs, depth_radius=radius, bias=self.k,
                                                      alpha=self.alpha, beta=self.beta)
        return self.normalize(inputs)

    def normalize(self, inputs):
        """The formula in `keras.ops` (what `call` runs on backends other than TensorFlow)."""
        radius = self.size // 2
        channels = inputs.shape[-1]
        padding = [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]]
        squared = ops.pad(ops.square(inputs), padding)
        window_sum = sum(squared[..., offset:offset + channels] for offset in range(self.size))
        return inputs * ops.power(self.k + self.alpha * window_sum, -self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "k": self.k, "alpha": self.alpha,
                "beta": self.beta}
