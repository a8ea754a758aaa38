"""The private (underscored) names of Keras and TensorFlow the package relies on where no public
API does the job, in one place.

`tests/private_api_test.py` checks each one's behaviour, so a release that changes one fails
there, by name, before a run does.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence


def variable_slot(optimizer, slots: Sequence, variable):
    """The optimizer slot (`slots[i]`, one per trained variable, as `add_optimizer_variables`
    made them) of `variable` in `update_step`, where each backend passes its own variable
    object: Keras' own optimizers find it with `Optimizer._get_variable_index`."""
    return slots[optimizer._get_variable_index(variable)]


def tensorflow_op_determinism() -> Optional[bool]:
    """Whether TensorFlow's op determinism is on; `None` before TensorFlow is imported (off).
    TensorFlow has a public switch on (`tf.config.experimental.enable_op_determinism`) and
    none to read it or to switch it off."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


def disable_tensorflow_op_determinism() -> None:
    """Turns TensorFlow's op determinism off again."""
    from tensorflow.python.framework import config

    config.disable_op_determinism()


def reload_jax_state(model, change) -> None:
    """Runs `change()`, which assigns variables of `model` (or its optimizer) in the middle of
    `fit`, so that the next train step reads them: on JAX, `fit` carries the variables' values
    from step to step outside them, so they are first written back (`jax_state_sync`) and the
    trainer told to read them again (its `_jax_state_synced` flag, which Keras' own callbacks
    set for the same purpose); elsewhere the step reads the variables themselves."""
    import keras

    if keras.backend.backend() == "jax" and getattr(model, "_jax_state", None) is not None:
        model.jax_state_sync()
        change()
        model._jax_state_synced = True
        return
    change()
