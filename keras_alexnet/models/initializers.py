"""Initializers that fill weights on the host and copy them to the device.

Keras' own initializers compute their values on the device: on JAX every variable shape then
compiles a program of its own (a draw, or a `broadcast_in_dim` for zeros), which made most of a
model build's time (measured in docs/performance.md). These compile nothing. `LayerInitializers`
gives each layer of the two networks its initializers, per initialisation scheme.
"""

from __future__ import annotations

import math
import zlib
from typing import Optional

import keras
import numpy as np

from keras_alexnet.config import INITS, check_choice
from keras_alexnet.utils.arrays import host_to_device


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
        return host_to_device(values, dtype)

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
        return host_to_device(np.zeros(shape, np.float32), dtype)


# The paper sets these biases to 1 so that ReLUs start in their positive range.
PAPER_BIAS_ONE = ("conv2", "conv4", "conv5", "fc6", "fc7")


class LayerInitializers:
    """Kernel and bias initializers of one layer, per initialisation scheme; every draw keyed by
    the seed and the weight's name (`conv1/kernel`), so no two weights share a random stream."""

    def __init__(self, init: str, seed: Optional[int]):
        check_choice(init, INITS, "init")
        self.init = init
        self.seed = seed

    def __call__(self, layer_name: str, fan_in: int) -> dict:
        def draw(distribution: str, scale: float, weight: str) -> HostRandom:
            return HostRandom(distribution, scale, seed=self.seed, key=f"{layer_name}/{weight}")

        if self.init == "torch":
            # PyTorch: kaiming_uniform_(a=√5) for weights, i.e. U(±1/√fan_in); the same bound for
            # biases.
            bound = 1.0 / math.sqrt(fan_in)
            return {"kernel_initializer": draw("uniform", bound, "kernel"),
                    "bias_initializer": draw("uniform", bound, "bias")}
        return {
            "kernel_initializer": draw("normal", 0.01, "kernel"),
            "bias_initializer": "ones" if layer_name in PAPER_BIAS_ONE else "zeros",
        }
