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
