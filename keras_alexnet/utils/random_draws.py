"""Random draws keyed to the epoch, so a resumed run draws what an uninterrupted one did.

Every random layer here (the augmentation, dropout) draws from a Keras `SeedGenerator`, whose
state is `[seed, counter]`: each draw uses the state, then advances the counter by one. Setting
the counter from the epoch as the epoch starts (in the model, and in the input pipeline's
augmentation) makes epoch `e`'s draws a function of the seed and `e` alone, however many epochs
ran in this process, as long as the draws within the epoch come in a fixed order.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_alexnet.utils.arrays import host_to_device

EPOCH_SPAN = 2**20  # counter values of one epoch: one per draw, a few draws per batch
COUNTER_LIMIT = 2**32  # JAX keeps seed states as uint32


def seed_states(layer: keras.layers.Layer) -> list[keras.Variable]:
    """The state variables of every `keras.random.SeedGenerator` in `layer` and the layers
    inside it, found among their attributes (and the lists, tuples and dicts they hold)."""
    states, seen, pending = [], set(), [layer]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, keras.random.SeedGenerator):
            states.append(value.state)
        elif isinstance(value, keras.layers.Layer):
            pending.extend(vars(value).values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)
        elif isinstance(value, dict):
            pending.extend(value.values())
    return states


def set_counter(states: list[keras.Variable], counter) -> list:
    """Sets the counter of each seed state to `counter` (its seed stays); returns the assigns,
    for a graph's control dependencies. Outside a graph, the new states are made on the host
    (no compiled program on JAX)."""
    if isinstance(counter, int):
        return [state.assign(host_to_device(np.array([ops.convert_to_numpy(state)[0], counter]),
                                       state.dtype)) for state in states]
    return [state.assign(ops.stack([state[0], ops.cast(counter, state.dtype)]))
            for state in states]


def epoch_counter(epoch):
    """The counter epoch `epoch` (an int or an integer tensor) starts at; the counters repeat
    after 4,096 epochs."""
    return epoch * EPOCH_SPAN % COUNTER_LIMIT
