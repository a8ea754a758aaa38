"""What `train()` changes in its process, put back as it ends: Keras' global dtype policy and
distribution (JAX), TensorFlow's op determinism, and Python's and NumPy's global random
generators (which `keras.utils.set_random_seed` seeds).

Two settings stay: TensorFlow's thread pools, which can only be set before its runtime starts
(so `train()` sets them only in a process where it is the first to start it:
`performance.use_cpu_threads`), and the seed `keras.utils.set_random_seed` gives TensorFlow's
and Keras' own global generators, which neither library can read back.
"""

from __future__ import annotations

import contextlib
import random
from typing import Iterator

import keras
import numpy as np

from keras_alexnet.utils.private_api import (
    disable_tensorflow_op_determinism,
    tensorflow_op_determinism,
)


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Runs the block, then puts back the settings named in the module docstring.

    Example:

    >>> with process_state_kept():
    ...     keras.config.set_dtype_policy("mixed_bfloat16")
    >>> keras.config.dtype_policy().name
    'float32'
    """
    policy = keras.config.dtype_policy()
    distribution = keras.distribution.distribution()
    python_random, numpy_random = random.getstate(), np.random.get_state()
    determinism = tensorflow_op_determinism()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        keras.distribution.set_distribution(distribution)
        random.setstate(python_random)
        np.random.set_state(numpy_random)
        if tensorflow_op_determinism() and not determinism:
            disable_tensorflow_op_determinism()

