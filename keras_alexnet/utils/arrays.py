"""Host arrays: onto the device without compiling anything, and through a function in batches."""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np


def host_to_device(values: np.ndarray, dtype=None):
    """`values` in `dtype` (default float32) as a backend array, copied without compiling."""
    values = values.astype(keras.backend.standardize_dtype(dtype or "float32"), copy=False)
    if keras.backend.backend() == "jax":  # jnp.asarray would compile an identity per shape
        import jax

        return jax.device_put(values)
    return values


def in_batches(function: Callable[[np.ndarray], np.ndarray], values: np.ndarray,
               batch_size: int, width: int) -> np.ndarray:
    """`function` of `values[i:i + batch_size]` for each batch, concatenated: `[N, width]`
    rows (`[0, width]` float32 for no values)."""
    batches = [function(values[start:start + batch_size])
               for start in range(0, len(values), batch_size)]
    return np.concatenate(batches) if batches else np.zeros((0, width), "float32")
