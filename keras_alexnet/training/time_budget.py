"""Spending a time budget: the recipe and epochs this host's measured speed affords
(`plan_run`), and `BudgetKeeper`, the callback that re-plans the rest of the learning-rate
schedule as the run goes, so that it reaches 0 as the run must stop, and stops it there.

Every estimate is made from this host's own timings: the probe's training rate before the run,
then the run's recent steps and its measured gap between epochs (validation and backups). The
time after training (test, figures, export) is estimated from the same rate and kept back.

Example:

>>> plan = plan_run(budget=480, elapsed=20, seconds_per_image=1 / 600, train_images=48_000,
...                 eval_images=(2_000, 10_000), test_views=2)
>>> plan.variant.name, plan.epochs
('fast', 4)
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import time
from typing import Any, Callable, Optional, Sequence

import keras

from keras_alexnet.config import CIFAR10, RECIPES, RUN_ONLY_FIELDS, TrainConfig
from keras_alexnet.config.time_budget import FrontierVariant, frontier
from keras_alexnet.errors import ConfigError
from keras_alexnet.utils.phase_clock import process_age
from keras_alexnet.utils.private_api import reload_jax_state

logger = logging.getLogger(__name__)

# An inference image's time against a training image's (the forward pass alone, no update).
EVAL_COST = 0.35
# Seconds after training beside the test's images: the last epoch's backup, the figures, the
# SavedModel's two traced signatures and the process's exit (28 s measured for `fast` on a
# 2-core AMD EPYC beside other work, 2026-12-08).
AFTER_TRAINING_SECONDS = 30.0
# Seconds of the first epoch beside its steps: tracing the train and validation functions.
FIRST_EPOCH_SECONDS = 6.0
# A process this old when the plan is made is named in a budget's refusal (a notebook's kernel).
LATE_START_SECONDS = 60.0
SAFETY_SHARE = 0.015  # of the budget, kept back against what no estimate foresees
WINDOW = 12  # recent steps that give the current speed
RECORDED_REPLANS = 20  # the last re-plans metrics.json keeps
# `fit` is given this many times the planned epochs (and 2 more), so a run whose machine turns
# out faster than its probe said trains on to the deadline.
EXTRA_EPOCHS_FACTOR = 2
CIFAR10_TRAIN_IMAGES, CIFAR10_TEST_IMAGES = 50_000, 10_000
TEST_VIEWS = {"none": 1, "flip": 2, "ten_crop": 10}  # images the test classifies per test image
# What a budgeted run takes from its config as given; the plan chooses the rest (the recipe).
KEPT_FIELDS = RUN_ONLY_FIELDS | {"time_budget", "seed", "data_dir", "train_subset",
                                 "validation_size", "mixed_precision", "jit_compile",
                                 "steps_per_execution", "augmentation", "deterministic",
                                 "distribution", "cpu_threads"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """A budget's plan: the frontier variant, its whole epochs, and the accuracy the frontier
    predicts for them (`None` below the variant's first measured point)."""

    variant: FrontierVariant
    epochs: int
    predicted_accuracy: Optional[float]

    def summary(self) -> dict[str, Any]:
        return {"recipe": self.variant.recipe, **self.variant.values, "epochs": self.epochs,
                "predicted_test_accuracy": self.predicted_accuracy}


def after_training_seconds(seconds_per_image: float, test_images: int, test_views: int) -> float:
    """The time kept back for the test (every view of every image), figures and export."""
    return test_images * test_views * seconds_per_image * EVAL_COST + AFTER_TRAINING_SECONDS


def affordable_epochs(seconds: float, seconds_per_image: float, train_images: int,
                      validation_images: int) -> int:
    """Whole epochs (training and validation) that fit in `seconds`, the first one's tracing
    included."""
    epoch = (train_images + validation_images * EVAL_COST) * seconds_per_image
    return max(0, math.floor((seconds - FIRST_EPOCH_SECONDS) / epoch))


def plan_run(budget: float, elapsed: float, seconds_per_image: float, train_images: int,
             eval_images: tuple[int, int], test_views: int,
             variants: Optional[Sequence[FrontierVariant]] = None) -> Plan:
    """The frontier variant and epochs with the best predicted accuracy in what is left of a
    budget.

    Args:
        budget: Seconds from process start to the SavedModel.
        elapsed: Seconds of it already gone.
        seconds_per_image: A training image's time for the cheapest variant here (the others
            cost their `relative_step_cost` times it).
        train_images: Images of one epoch.
        eval_images: The validation and the test images.
        test_views: Views the test classifies of each test image.
        variants: The frontier's variants to choose from (default: all).

    Returns:
        The `Plan`.

    Raises:
        ConfigError: Not even one epoch of the cheapest fits; the line names the smallest
            budget that works here.
    """
    variants = tuple(variants or frontier())
    validation_images, test_images = eval_images
    candidates = []
    for variant in variants:
        rate = seconds_per_image * variant.relative_step_cost
        left = (budget * (1 - SAFETY_SHARE) - elapsed
                - after_training_seconds(rate, test_images, test_views))
        epochs = affordable_epochs(left, rate, train_images, validation_images)
        accuracy = variant.predicted_accuracy(epochs)
        if epochs >= 1 and (accuracy is not None or variant is variants[0]):
            candidates.append(Plan(variant, epochs, accuracy))
    if not candidates:
        smallest = smallest_budget(elapsed, seconds_per_image, train_images, eval_images,
                                   test_views)
        started = (f" (it counts from the process's start, {_minutes(elapsed)} ago)"
                   if elapsed >= LATE_START_SECONDS else "")
        raise ConfigError(f"a time budget of {_minutes(budget)} is too small for one epoch on "
                          f"this machine; the smallest that works here is about "
                          f"{_minutes(math.ceil(smallest))}{started}")
    return max(candidates, key=lambda plan: (plan.predicted_accuracy or 0.0,
                                             -plan.variant.relative_step_cost))


def smallest_budget(elapsed: float, seconds_per_image: float, train_images: int,
                    eval_images: tuple[int, int], test_views: int) -> float:
    """Seconds from process start that buy one epoch of the cheapest variant here."""
    validation_images, test_images = eval_images
    one_epoch = (FIRST_EPOCH_SECONDS
                 + (train_images + validation_images * EVAL_COST) * seconds_per_image)
    rest = after_training_seconds(seconds_per_image, test_images, test_views)
    return (elapsed + one_epoch + rest) / (1 - SAFETY_SHARE)


class BudgetKeeper(keras.callbacks.Callback):
    """Ends training at the step that leaves the rest of the run (test, figures, export) time to
    finish by `deadline` (a `time.perf_counter()` value), re-planned from the recent steps'
    speed, and moves the learning-rate schedule's end there (`LinearWarmupDecay.replan`), so that
    the rate reaches 0 at the last step even when the machine slows down or speeds up. With
    several steps per execution (an accelerator's 32), it stops at the end of the execution that
    reaches that step: up to 31 steps more, at a rate of 0.

    Args:
        deadline: When the whole run must be done, on `time.perf_counter()`'s clock.
        steps_per_epoch: Training steps of one epoch.
        max_steps: The most steps `fit` was asked for (its epochs).
        seconds_per_image: The first estimate of a training image's time (the probe's).
        batch_size: Images per step.
        test_images: Images the test classifies, times its views.
        validation_images: Images each epoch's validation classifies.
        clock: The clock `deadline` is on (`time.perf_counter`).
    """

    def __init__(self, deadline: float, steps_per_epoch: int, max_steps: int,
                 seconds_per_image: float, batch_size: int, test_images: int,
                 validation_images: int = 0, clock: Optional[Callable[[], float]] = None):
        super().__init__()
        self.deadline, self.steps_per_epoch, self.max_steps = deadline, steps_per_epoch, max_steps
        self.batch_size, self.test_images = batch_size, test_images
        self.clock = clock or time.perf_counter
        self.estimate = seconds_per_image * batch_size  # a step's seconds, until steps are timed
        self.step_seconds: collections.deque = collections.deque(maxlen=WINDOW)
        # An epoch's end (validation, backups) until one is timed: the images at inference
        # speed, and a second for the writes.
        self.epoch_gap = validation_images * EVAL_COST * seconds_per_image + 1.0
        self.total_steps = max_steps
        self.replans: list[dict[str, Any]] = []
        self.at_stop: dict[str, float] = {}
        self._after = 0.0
        self._epoch, self._last_end, self._last_step, self._traced = 0, None, 0, False

    def on_train_begin(self, logs=None):
        self._last_end = self.clock()
        self._replan(0, self._last_end)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 and self._epoch > 0 and self._last_end is not None:
            self.epoch_gap = self.clock() - self._last_end  # validation, backups, the iterator
            self._last_end = self.clock()
            self._last_step = self._epoch * self.steps_per_epoch

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        step = self._epoch * self.steps_per_epoch + batch + 1  # `batch`: the execution's last
        if self._traced:  # the run's first execution traces the train function: not timed
            self.step_seconds.append((now - self._last_end) / max(1, step - self._last_step))
        self._last_end, self._last_step, self._traced = now, step, True
        self._replan(step, now)
        if step >= self.total_steps:
            self.model.stop_training = True
            self.at_stop = {"seconds_left": round(self.deadline - now, 1),
                            "kept_for_after_training": round(self._after, 1)}

    def _replan(self, step: int, now: float) -> None:
        """Moves the end of training to the last step that leaves time for the rest."""
        step_seconds = (sum(self.step_seconds) / len(self.step_seconds)
                        if len(self.step_seconds) >= 3 else self.estimate)
        after = after_training_seconds(step_seconds / self.batch_size, self.test_images, 1)
        self._after = after + self.epoch_gap  # the last validation, then the test and the rest
        left = self.deadline - now - after
        steps = _most_steps(lambda steps: self._seconds(step, steps, step_seconds) <= left,
                            self.max_steps - step)
        total = step + steps
        # Far from the end, a move of under 1 % (or 2 steps) is the steps' noise; near it, every
        # step counts, so that the rate reaches 0 where training stops.
        near_end = min(total, self.total_steps) - step <= WINDOW
        if total == self.total_steps or (not near_end
                                         and abs(total - self.total_steps) < max(2, 0.01 * total)):
            return
        self.replans.append({"at_step": step, "end_step": total,
                             "seconds_per_step": round(step_seconds, 4),
                             "seconds_left": round(self.deadline - now, 1)})
        self.total_steps = total
        optimizer = self.model.optimizer  # under mixed_float16, Keras' LossScaleOptimizer wraps it
        schedule = getattr(getattr(optimizer, "inner_optimizer", optimizer),
                           "learning_rate_schedule", None)
        if schedule is not None and getattr(schedule, "plan", None) is not None:
            reload_jax_state(self.model, lambda: schedule.replan(step, total))

    def _seconds(self, step: int, steps: int, step_seconds: float) -> float:
        """The time `steps` more steps take after `step`, with each epoch end still ahead: the
        current epoch's (also when `step` is its last), those they cross, the validation after
        the last."""
        current = max(0, step - 1) // self.steps_per_epoch  # the epoch of the step just done
        ends = max(1, math.ceil((step + steps) / self.steps_per_epoch) - current)
        return steps * step_seconds + ends * self.epoch_gap

    def summary(self) -> dict[str, Any]:
        """The plan as it ended: the last step, its epochs, the re-plans (their count and the
        last ones) and, when the budget stopped it, the seconds left then and those it kept for
        the rest."""
        return {"trained_steps": self.total_steps,
                "trained_epochs": round(self.total_steps / self.steps_per_epoch, 2),
                "replans": len(self.replans), "last_replans": self.replans[-RECORDED_REPLANS:],
                **({"at_stop": self.at_stop} if self.at_stop else {})}


def _most_steps(fits: Callable[[int], bool], most: int) -> int:
    """The largest `n` in [0, `most`] with `fits(n)` (monotone: true up to some `n`), 0 if
    none."""
    low, high = 0, most
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


@dataclasses.dataclass(frozen=True)
class BudgetRun:
    """A budgeted run's plan, as made before it starts: the budget and the deadline (seconds
    from process start; on `time.perf_counter()`'s clock, the safety share kept back), the plan,
    and the precision and measured training rate it was made with."""

    budget: float
    deadline: float
    plan: Plan
    precision: str
    images_per_second: float

    def keeper(self, config: TrainConfig, train_images: int, test_images: int) -> BudgetKeeper:
        """The run's `BudgetKeeper`, for `train_images` a pass, `config`'s epochs and a test of
        `test_images`."""
        steps_per_epoch = math.ceil(train_images / config.batch_size)
        return BudgetKeeper(self.deadline, steps_per_epoch, steps_per_epoch * config.epochs,
                            self.plan.variant.relative_step_cost / self.images_per_second,
                            config.batch_size,
                            test_images * TEST_VIEWS[config.test_time_augmentation],
                            config.validation_size)

    def summary(self, keeper: Optional[BudgetKeeper]) -> dict[str, Any]:
        """What `metrics.json` records of the budget, the plan and how it went."""
        return {"budget_seconds": round(self.budget, 1), "plan": self.plan.summary(),
                "mixed_precision": self.precision,
                "measured_images_per_second": round(self.images_per_second, 1),
                **(keeper.summary() if keeper else {})}


def plan_budget(config: TrainConfig,
                measure_rate: Callable[[TrainConfig], tuple[str, float]]) -> tuple[TrainConfig,
                                                                                  BudgetRun]:
    """The config a run with `config.time_budget` trains, and its plan: `measure_rate(config)`
    gives the precision and training images/s of the cheapest variant's network on this host.
    `config` is the seed's (any frontier recipe may be chosen) or a frontier recipe's (only it),
    with run settings of its own; a recipe value given is refused: the plan chooses them. A run
    on fewer training images than the frontier's (a `train_subset`, a larger `validation_size`)
    is planned on the cheapest variant, with no accuracy predicted."""
    if config.dataset != CIFAR10 or config.distribution == "multi_host":
        raise ConfigError("time_budget plans CIFAR-10 runs of one process (its frontier was "
                          "measured there)")
    if config.deterministic:
        raise ConfigError("time_budget stops training at the step the clock allows, so a run "
                          "with it cannot be deterministic; leave out one of them")
    recipe, kept = _budget_recipe(config)
    variants = [variant for variant in frontier() if recipe in ("seed", variant.recipe)]
    cheapest = TrainConfig.from_recipe(variants[0].recipe, **variants[0].values, **kept)
    precision, rate = measure_rate(cheapest)
    budget, elapsed = config.time_budget_seconds, process_age()
    train_images = min(cheapest.train_subset or CIFAR10_TRAIN_IMAGES,
                       CIFAR10_TRAIN_IMAGES - cheapest.validation_size)
    measured = train_images >= CIFAR10_TRAIN_IMAGES - TrainConfig.from_recipe(
        variants[0].recipe).validation_size
    if not measured:  # the frontier's accuracies are those of the whole training split
        variants = variants[:1]
    plan = plan_run(budget, elapsed, 1 / rate, train_images,
                    (cheapest.validation_size, CIFAR10_TEST_IMAGES),
                    TEST_VIEWS[cheapest.test_time_augmentation], variants)
    plan = plan if measured else dataclasses.replace(plan, predicted_accuracy=None)
    values = RECIPES[plan.variant.recipe].values
    planned = TrainConfig.from_recipe(
        plan.variant.recipe, **plan.variant.values, **{**kept, "mixed_precision": precision},
        epochs=plan.epochs * EXTRA_EPOCHS_FACTOR + 2,
        warmup_epochs=values.get("warmup_epochs", 0.0) * plan.epochs / values["epochs"])
    deadline = time.perf_counter() - elapsed + budget * (1 - SAFETY_SHARE)
    logger.info("time budget %s from process start (%.0f s gone): %s at batch %d for %d epochs "
                "(measured frontier: %s), %s at %.0f training images/s", _minutes(budget),
                elapsed, plan.variant.recipe, planned.batch_size, plan.epochs,
                "unmeasured" if plan.predicted_accuracy is None
                else f"{plan.predicted_accuracy:.1f} % test accuracy", precision,
                rate / plan.variant.relative_step_cost)
    return planned, BudgetRun(budget, deadline, plan, precision, rate)


def _budget_recipe(config: TrainConfig) -> tuple[str, dict[str, Any]]:
    """The recipe `config` is (the one it differs least from) and the settings it keeps
    (`KEPT_FIELDS` changed from that recipe's); refuses a config that changes other values of
    it, or a recipe the frontier has not measured."""
    def differences(name: str) -> tuple[list[str], dict[str, Any]]:
        base = TrainConfig.from_recipe(name).to_dict()
        kept = {field: value for field, value in config.to_dict().items()
                if field in KEPT_FIELDS and value != base[field]}
        return TrainConfig.from_recipe(name, **kept).training_differences(config.to_dict()), kept

    planned = ("seed", *(variant.recipe for variant in frontier()))
    found = {name: differences(name) for name in RECIPES}
    recipe = min(found, key=lambda name: (len(found[name][0]), name not in planned))
    given, kept = found[recipe]
    if recipe not in planned:
        recipes = " and ".join(planned[1:])
        raise ConfigError(f"time_budget plans the {recipes} recipes (their epochs against "
                          f"accuracy were measured), not {recipe!r}")
    if given:
        raise ConfigError(f"time_budget chooses the recipe's values itself; leave out "
                          f"{', '.join(difference.split()[0] for difference in given)}")
    return recipe, kept


def _minutes(seconds: float) -> str:
    """`'8 min'`, `'1 h 30 min'`, `'45 s'`."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{value} {unit}" for value, unit in ((hours, "h"), (minutes, "min"), (secs, "s"))
             if value]
    return " ".join(parts) or "0 s"
