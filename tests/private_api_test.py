"""The private Keras and TensorFlow names the package relies on still behave as it expects: a
release that changes one fails here, by name."""

import keras
import numpy as np
import tensorflow as tf

from keras_alexnet.utils.private_api import (
    disable_tensorflow_op_determinism,
    tensorflow_op_determinism,
    variable_slot,
)


def test_variable_slot_finds_each_variables_own_slot_for_either_variable_object():
    variables = [keras.Variable(np.zeros(shape, "float32"), name=name)
                 for shape, name in (((2, 3), "kernel"), ((4,), "bias"), ((5, 1), "other"))]
    optimizer = keras.optimizers.SGD(momentum=0.9)
    optimizer.build(variables)
    for variable in variables:  # the Keras variable, and the backend's own that update_step gets
        for passed in (variable, variable.value):
            slot = variable_slot(optimizer, optimizer.momentums, passed)
            assert tuple(slot.shape) == tuple(variable.shape)
            assert slot.path.endswith(f"{variable.name}_momentum")


def test_tensorflow_op_determinism_is_read_and_switched_off_again():
    before = tensorflow_op_determinism()
    tf.config.experimental.enable_op_determinism()
    try:
        assert tensorflow_op_determinism() is True
        disable_tensorflow_op_determinism()
        assert tensorflow_op_determinism() is False
    finally:
        if before:
            tf.config.experimental.enable_op_determinism()
