"""Initializers that fill weights on the host and copy them to the device.

Keras' own initializers compute their values on the device: on JAX every variable shape then
compiles a program of its own (a draw, or a `broadcast_in_dim` for zeros). For the seed's AlexNet
that was 17 programs and most of a model build's 8 s on a CPU, and 16 more when the optimizer
adds its momentum buffers. These compile nothing.
"""

from __future__ import annotations

import zlib
from typing import Optional

import keras
import numpy as np


def on_device(values: np.ndarray, dtype=None):
    """`values` in `dtype` (default float32) as a backend array, copied without compiling."""
    values = values.astype(keras.backend.standardize_dtype(dtype or "float32"), copy=False)
    if keras.backend.backend() == "jax":  # jnp.asarray would compile an identity per shape
        import jax

        return jax.device_put(values)
    return values


@keras.saving.register_keras_serializable(package="keras_alexnet")
class HostRandom(keras.initializers.Initializer):
    """Uniform or Gaussian initial weights drawn on the host with NumPy.

    Keras' random initializers draw on the device, which on JAX compiles a program per weight
    shape. Drawn here, the values are copied to the device as they are, and are the same on every
    backend.

    Args:
        distribution: `"uniform"` (U(−scale, scale)) or `"normal"` (N(0, scale²)).
        scale: The uniform bound, or the Gaussian's standard deviation.
        seed: Seed of the draw; `None` takes one from NumPy's global generator (which
            `keras.utils.set_random_seed` seeds) at each call.
        key: What the draw is for, e.g. `"conv1/kernel"`: with a `seed`, the draw comes from
            the stream of `(seed, key)` (`np.random.SeedSequence`), so the draws of two keys,
            or of two seeds, are independent.

    Example:

    >>> HostRandom("uniform", 0.1, seed=0, key="conv1/kernel")((3, 4)).shape
    (3, 4)
    """

    def __init__(self, distribution: str, scale: float, seed: Optional[int] = None,
                 key: str = ""):
        if distribution not in ("uniform", "normal"):
            raise ValueError(f"distribution must be uniform or normal, got {distribution!r}")
        self.distribution = distribution
        self.scale = float(scale)
        self.seed = seed
        self.key = key

    def __call__(self, shape, dtype=None):
        seed = self.seed if self.seed is not None else np.random.randint(2**31 - 1)
        rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(zlib.crc32(self.key.encode()),)))
        if self.distribution == "uniform":  # drawn in float32: half the time of float64
            values = rng.random(shape, dtype=np.float32) * np.float32(2 * self.scale)
            values -= np.float32(self.scale)
        else:
            values = rng.standard_normal(shape, dtype=np.float32) * np.float32(self.scale)
        return on_device(values, dtype)

    def get_config(self):
        return {"distribution": self.distribution, "scale": self.scale, "seed": self.seed,
                "key": self.key}


@keras.saving.register_keras_serializable(package="keras_alexnet")
class HostZeros(keras.initializers.Initializer):
    """Zeros, made on the host (`keras.initializers.Zeros` without a compiled program per shape).

    Example:

    >>> HostZeros()((2, 3)).shape
    (2, 3)
    """

    def __call__(self, shape, dtype=None):
        return on_device(np.zeros(shape, np.float32), dtype)
