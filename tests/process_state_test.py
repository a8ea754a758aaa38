"""`process_state_kept` puts back what a run changes in its process."""

import random

import keras
import numpy as np

from keras_alexnet.training.process_state import process_state_kept


def op_determinism():
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


def test_the_policy_distribution_random_generators_and_determinism_are_put_back():
    import tensorflow as tf

    distribution = object()  # any distribution a caller had set
    keras.distribution.set_distribution(distribution)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    assert not op_determinism()
    try:
        with process_state_kept():
            keras.config.set_dtype_policy("mixed_bfloat16")
            keras.distribution.set_distribution(None)
            keras.utils.set_random_seed(7)
            random.random(), np.random.random()
            tf.config.experimental.enable_op_determinism()
        assert keras.config.dtype_policy().name == "float32"
        assert keras.distribution.distribution() is distribution
        assert random.getstate() == python_state
        assert np.array_equal(np.random.get_state()[1], numpy_state[1])
        assert not op_determinism()
    finally:
        keras.distribution.set_distribution(None)
