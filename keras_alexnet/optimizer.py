"""SGD with PyTorch's semantics, the update the seed trained with.

Keras' `SGD` differs from `torch.optim.SGD` in two ways that matter for this recipe: its
`weight_decay` is decoupled (applied to the weights, not added to the gradient), and its velocity
carries the learning rate (`v = m·v − lr·g`), so a learning-rate drop acts on the next step only
through the new gradient. `TorchSGD` keeps PyTorch's rule instead.
"""

from __future__ import annotations

from typing import Optional

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_alexnet")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD with momentum and coupled L2 weight decay, as `torch.optim.SGD` computes it.

    Per step, for each variable `w` with loss gradient `g` (after clipping by the global norm of
    all loss gradients, when `global_clipnorm` is set):

    ```
    g   ← g + weight_decay · w
    buf ← momentum · buf + g
    w   ← w − learning_rate · buf
    ```

    Args:
        learning_rate: A float, a schedule, or a callable returning the learning rate.
        momentum: Momentum factor in [0, 1).
        weight_decay: Coupled L2 coefficient (applied to every variable, biases too, as PyTorch).
        global_clipnorm: Clip the loss gradients so that their global L2 norm is at most this;
            PyTorch's `clip_grad_norm_`. The decay term is added after clipping.
        name: Optimizer name.
        **kwargs: Other `keras.optimizers.Optimizer` arguments (for example `loss_scale_factor`).

    Example:

    >>> optimizer = TorchSGD(learning_rate=0.01, momentum=0.9, weight_decay=5e-4,
    ...                      global_clipnorm=2.0)
    >>> model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, weight_decay: float = 0.0,
                 global_clipnorm: Optional[float] = None, name: str = "torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, global_clipnorm=global_clipnorm, name=name,
                         **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        self.momentum = float(momentum)
        self.l2 = float(weight_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = gradient + ops.cast(self.l2, variable.dtype) * variable
        buffer = self.momentums[self._get_variable_index(variable)]
        self.assign(buffer, ops.cast(self.momentum, variable.dtype) * buffer + gradient)
        self.assign_sub(variable, learning_rate * buffer)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "weight_decay": self.l2}
