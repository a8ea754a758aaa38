"""SGD with PyTorch's semantics (the update the seed trained with) and the run's learning rate.

Keras' `SGD` differs from `torch.optim.SGD` in two ways that matter for this recipe: its
`weight_decay` is decoupled (applied to the weights, not added to the gradient), and its velocity
carries the learning rate (`v = m·v − lr·g`), so a learning-rate drop acts on the next step only
through the new gradient. `TorchSGD` keeps PyTorch's rule instead.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import keras
from keras import ops

from keras_alexnet.config import TrainConfig, check_momentum, check_weight_decay
from keras_alexnet.models.initializers import HostZeros
from keras_alexnet.utils.private_api import variable_slot


@keras.saving.register_keras_serializable(package="keras_alexnet")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD with momentum and coupled L2 weight decay, as `torch.optim.SGD` computes it.

    Per step, for each variable `w` with loss gradient `g` (after clipping by the global norm of
    all loss gradients, when `global_clipnorm` is set):

    ```
    g   ← g + coupled_weight_decay · w
    buf ← momentum · buf + g
    w   ← w − learning_rate · buf
    ```

    With `nesterov=True` the last line is `w ← w − learning_rate · (g + momentum · buf)`.

    Args:
        learning_rate: A float, a schedule, or a callable returning the learning rate.
        momentum: Momentum factor in [0, 1).
        coupled_weight_decay: PyTorch's `weight_decay`: the L2 coefficient added to the
            gradient (every variable, biases too, as PyTorch). Keras' own `weight_decay`
            (decoupled: `w ← w − learning_rate · weight_decay · w` after the step) is a separate
            argument, as in every Keras optimizer, and stays `None` unless given.
        global_clipnorm: Clip the loss gradients so that their global L2 norm is at most this;
            PyTorch's `clip_grad_norm_`. The decay term is added after clipping.
        nesterov: Nesterov momentum in PyTorch's form (`torch.optim.SGD(nesterov=True)`).
        name: Optimizer name.
        **kwargs: Other `keras.optimizers.Optimizer` arguments (`weight_decay`,
            `loss_scale_factor`, …).

    Example:

    >>> optimizer = TorchSGD(learning_rate=0.01, momentum=0.9, coupled_weight_decay=5e-4,
    ...                      global_clipnorm=2.0)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.9,
                 coupled_weight_decay: float = 0.0, global_clipnorm: Optional[float] = None,
                 nesterov: bool = False, name: str = "torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, global_clipnorm=global_clipnorm, name=name,
                         **kwargs)
        check_momentum(momentum)
        check_weight_decay(coupled_weight_decay, "coupled_weight_decay")
        self.momentum = float(momentum)
        self.coupled_weight_decay = float(coupled_weight_decay)
        self.nesterov = bool(nesterov)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum",
                                                      initializer=HostZeros())
        schedule = self.learning_rate_schedule
        if isinstance(schedule, LinearWarmupDecay) and schedule.replannable:
            schedule.build_plan(self)

    @property
    def learning_rate_schedule(self) -> Optional[keras.optimizers.schedules.LearningRateSchedule]:
        """The schedule the learning rate follows, or `None` for a fixed rate."""
        schedule = self._learning_rate
        return (schedule if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
                else None)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.coupled_weight_decay:
            gradient = gradient + ops.cast(self.coupled_weight_decay, variable.dtype) * variable
        buffer = variable_slot(self, self.momentums, variable)
        momentum = ops.cast(self.momentum, variable.dtype)
        self.assign(buffer, momentum * buffer + gradient)
        step = gradient + momentum * buffer if self.nesterov else buffer
        self.assign_sub(variable, learning_rate * step)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum,
                "coupled_weight_decay": self.coupled_weight_decay, "nesterov": self.nesterov}


def build_optimizer(config: TrainConfig, steps_per_epoch: int) -> TorchSGD:
    """The run's optimizer: `TorchSGD` (coupled L2, global-norm clipping, Nesterov if asked)
    with the config's learning rate (`learning_rate_per_step`)."""
    return TorchSGD(learning_rate=learning_rate_per_step(config, steps_per_epoch),
                    momentum=config.momentum, coupled_weight_decay=config.weight_decay,
                    global_clipnorm=config.global_clipnorm, nesterov=config.nesterov)


@keras.saving.register_keras_serializable(package="keras_alexnet")
class LinearWarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """A triangular (one-cycle) learning rate: linear from 0 to `peak` over `warmup_steps`, then
    linear down to 0 at `total_steps` (and 0 after).

    With `replannable=True` the descent can be re-planned as the run goes (a time budget's
    deadline moved): `replan(step, total_steps)` keeps the rate of `step` and goes straight from
    it to 0 at the new `total_steps`. The plan is held in the optimizer's variables (made by
    `TorchSGD.build`), so the compiled train step reads the new plan and a backup keeps it.

    Args:
        peak: The learning rate at the end of the warm-up.
        total_steps: The step at which the rate reaches 0.
        warmup_steps: Steps of the linear rise; 0 starts at `peak`.
        replannable: Whether `replan` may move the end.

    Example:

    >>> schedule = LinearWarmupDecay(peak=0.2, total_steps=100, warmup_steps=20)
    >>> [round(float(schedule(step)), 3) for step in (0, 10, 20, 60, 100)]
    [0.0, 0.1, 0.2, 0.1, 0.0]
    """

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0,
                 replannable: bool = False):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps), got {warmup_steps} of "
                             f"{total_steps}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.replannable = bool(replannable)
        self.plan: Optional[tuple] = None  # (start step, rate there, end step) as variables

    def build_plan(self, optimizer: keras.optimizers.Optimizer) -> None:
        """Makes the plan (the warm-up's end; the descent's start step, its rate there and its
        end step) variables of `optimizer`, starting as the constructor's: up to `peak` at
        `warmup_steps`, then down to 0 at `total_steps`."""
        values = (self.warmup_steps, self.warmup_steps, self.peak, self.total_steps)
        names = ("warmup_end", "decay_start", "decay_start_rate", "decay_end")
        self.plan = tuple(optimizer.add_variable((), initializer=keras.initializers.Constant(value),
                                                 dtype="float32", name=name)
                          for name, value in zip(names, values))

    def replan(self, step: int, total_steps: int) -> None:
        """Moves the end of the descent to `total_steps`. After the warm-up, the rate goes
        straight from its value at `step` to 0 there; during it, the warm-up keeps its share of
        the run (ending after `step`) and the descent starts from `peak` at its end. Raises
        `ValueError` for a schedule made without `replannable=True`, or before its optimizer
        built the plan."""
        if not self.replannable or self.plan is None:
            raise ValueError("LinearWarmupDecay.replan needs replannable=True and the plan its "
                             "TorchSGD makes when it is built (the first step, or build())")
        warmup_end, start, _, end = (float(variable) for variable in self.plan)
        if step < warmup_end:
            share = warmup_end / end
            warmup_end = min(warmup_end, max(step + 1, round(share * total_steps)))
            values = (warmup_end, warmup_end, self.peak, max(total_steps, warmup_end + 1))
        else:
            values = (warmup_end, step, float(self(step)), max(total_steps, step + 1))
        for variable, value in zip(self.plan, values):
            variable.assign(value)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.plan is None:
            rise = step / self.warmup_steps if self.warmup_steps else 1.0
            fall = (self.total_steps - step) / (self.total_steps - self.warmup_steps)
            return self.peak * ops.clip(ops.minimum(rise, fall), 0.0, 1.0)
        warmup_end, start, rate, end = (ops.convert_to_tensor(variable) for variable in self.plan)
        rise = step / warmup_end if self.warmup_steps else 1.0
        fall = rate / self.peak * (end - step) / (end - start)
        return self.peak * ops.clip(ops.minimum(rise, fall), 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_steps": self.warmup_steps, "replannable": self.replannable}


def learning_rate_per_step(config: TrainConfig, steps_per_epoch: int
                           ) -> Union[float, keras.optimizers.schedules.LearningRateSchedule]:
    """The optimizer's learning rate: for `"step"` the initial value, which
    `learning_rate_schedule`'s callback replaces each epoch; for `"plateau"` the initial value,
    which `keras.callbacks.ReduceLROnPlateau` lowers; for `"cosine"`,
    `keras.optimizers.schedules.CosineDecay` with a linear warm-up from 0 over `warmup_epochs`,
    reaching 0 at the run's last step; for `"linear"`, `LinearWarmupDecay` over the same steps.

    Example:

    >>> schedule = learning_rate_per_step(TrainConfig.from_recipe("tweaked"), steps_per_epoch=313)
    >>> round(float(schedule(313 * 2)), 6)                # the peak, after two warm-up epochs
    0.05
    """
    peak = config.scaled_learning_rate
    if config.lr_schedule in ("step", "plateau"):
        return peak
    total = steps_per_epoch * config.epochs
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.lr_schedule == "linear":
        return LinearWarmupDecay(peak, total, warmup, replannable=config.time_budget is not None)
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(peak, total)
    return keras.optimizers.schedules.CosineDecay(0.0, total - warmup, warmup_target=peak,
                                                  warmup_steps=warmup)


def learning_rate_schedule(config: TrainConfig) -> Callable[[int], float]:
    """The seed's step decay by 0-based epoch index (for `keras.callbacks.LearningRateScheduler`):
    `learning_rate` for the first `lr_decay_epoch` epochs, then `learning_rate * lr_decay_factor`
    (the seed: 0.01 for epochs 1–30, 0.001 from 31)."""

    def schedule(epoch: int) -> float:
        if epoch < config.lr_decay_epoch:
            return config.scaled_learning_rate
        return config.scaled_learning_rate * config.lr_decay_factor

    return schedule
