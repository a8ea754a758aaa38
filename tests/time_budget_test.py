"""Time budgets: parsing, the frontier's predictions, the plan made from injected timings (never
from this machine's clock), the re-planning callback on a simulated clock that slows down, and
a budgeted run end to end with an injected probe."""

import json
import math
import os

import keras
import numpy as np
import pytest

from keras_alexnet.config import TrainConfig
from keras_alexnet.config.time_budget import FrontierVariant, frontier, parse_time_budget
from keras_alexnet.errors import ConfigError
from keras_alexnet.training import time_budget
from keras_alexnet.training.optimizer import LinearWarmupDecay, TorchSGD
from keras_alexnet.training.time_budget import BudgetKeeper, plan_run, smallest_budget

FAST = FrontierVariant("fast", "fast", {"batch_size": 256}, 1.0, ((3, 77.0), (5, 82.0), (30, 90.0)))
LONG = FrontierVariant("long", "long", {"batch_size": 256}, 2.0, ((30, 91.0),))


@pytest.mark.parametrize("text, seconds", [
    ("20m", 1200), ("1h30m", 5400), ("90s", 90), ("1h", 3600), (8, 480), (2.5, 150),
    ("8", 480), (" 1H 5M ", 3900), ("2min", 120), ("1m30s", 90), (".5m", 30), ("5.m", 300),
    ("１０m", 600),  # full-width digits, as float() reads them
])
def test_budgets_parse_as_minutes_or_durations(text, seconds):
    assert parse_time_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "0", "-5", "5x", "m", "h", "1h1h", "nan", "inf",
                                  "30d", True, [8], "1e9"])
def test_bad_budgets_are_one_line(text):
    with pytest.raises(ConfigError, match="TrainConfig.time_budget must be"):
        parse_time_budget(text)
    with pytest.raises(ConfigError, match="time_budget"):
        TrainConfig(time_budget=text)


@pytest.mark.parametrize("value", [10**5000, 10**400, "1" * 400, "9" * 5000 + "m"],
                         ids=["int-5001-digits", "int-401-digits", "text-400", "text-5001m"])
def test_a_huge_budget_is_refused_in_one_short_line(value):
    with pytest.raises(ConfigError, match="at most a week") as refused:
        parse_time_budget(value)
    assert len(str(refused.value)) < 160 and "\n" not in str(refused.value)


def test_the_frontier_interpolates_in_log_epochs_and_holds_past_its_last_point():
    assert FAST.predicted_accuracy(2) is None
    assert FAST.predicted_accuracy(3) == 77.0
    # Halfway between 5 and 30 epochs in log(epochs) is sqrt(5 * 30) epochs: halfway in accuracy.
    assert FAST.predicted_accuracy(math.sqrt(150)) == pytest.approx(86.0)
    assert FAST.predicted_accuracy(4) == pytest.approx(77 + 5 * math.log(4 / 3) / math.log(5 / 3))
    assert FAST.predicted_accuracy(300) == 90.0


def test_the_shipped_frontier_is_measured_and_rises_with_epochs():
    variants = frontier()
    assert [variant.recipe for variant in variants] == ["fast", "long"]
    for variant in variants:
        accuracies = [accuracy for _, accuracy in variant.points]
        assert accuracies == sorted(accuracies) and all(50 < a < 100 for a in accuracies)
        TrainConfig.from_recipe(variant.recipe, **variant.values)  # values a recipe takes


def epoch_seconds(seconds_per_image, train=48_000, validation=2_000):
    return (train + validation * time_budget.EVAL_COST) * seconds_per_image


def test_the_plan_spends_what_is_left_after_the_test_on_whole_epochs():
    rate = 1 / 370  # float32 on the Intel Xeon of docs/performance.md
    # 580 s: 4 epochs fit in what is left before the test and the export, not 4 with them.
    plan = plan_run(580, 20, rate, 48_000, (2_000, 10_000), 2, (FAST, LONG))
    after = 10_000 * 2 * rate * time_budget.EVAL_COST + time_budget.AFTER_TRAINING_SECONDS
    left = 580 * (1 - time_budget.SAFETY_SHARE) - 20 - time_budget.FIRST_EPOCH_SECONDS
    assert plan.variant is FAST
    assert int(left // epoch_seconds(rate)) == 4
    assert plan.epochs == int((left - after) // epoch_seconds(rate)) == 3
    assert plan.predicted_accuracy == 77.0


def test_a_long_budget_buys_the_wider_recipe_once_it_reaches_its_measured_epochs():
    rate = 1 / 1343
    short = plan_run(1200, 20, rate, 48_000, (2_000, 10_000), 2, (FAST, LONG))
    assert short.variant is FAST  # long's 30 epochs need twice fast's time
    long = plan_run(7200, 20, rate, 48_000, (2_000, 10_000), 2, (FAST, LONG))
    assert long.variant is LONG and long.epochs >= 30
    assert long.epochs == pytest.approx(7200 * 0.985 / epoch_seconds(2 * rate), abs=2)


def test_too_small_a_budget_names_the_smallest_that_works_here():
    rate = 1 / 300
    smallest = smallest_budget(25, rate, 48_000, (2_000, 10_000), 2)
    assert plan_run(smallest + 1, 25, rate, 48_000, (2_000, 10_000), 2, (FAST, LONG)).epochs == 1
    with pytest.raises(ConfigError, match=rf"smallest that works here is about "
                                          rf"{math.ceil(smallest) // 60} min"):
        plan_run(smallest - 1, 25, rate, 48_000, (2_000, 10_000), 2, (FAST, LONG))


def test_too_small_a_budget_says_when_it_began_counting():
    """A budget counts from the process's start: a refusal in an old process (a notebook's
    kernel) says how long ago that was."""
    # By hand: 2,300 s gone, 6 s of tracing, an epoch of (48,000 + 0.35 × 2,000) / 600 s, the
    # test's 0.35 × 20,000 / 600 s and 30 s after it, all over 0.985: 2,465.8 s.
    smallest = math.ceil(smallest_budget(2300, 1 / 600, 48_000, (2_000, 10_000), 2))
    assert divmod(smallest, 60) == (41, 6)
    with pytest.raises(ConfigError, match=r"about 41 min 6 s \(it counts from the process's "
                                          r"start, 38 min 20 s ago\)$"):
        plan_run(1200, 2300, 1 / 600, 48_000, (2_000, 10_000), 2, (FAST, LONG))
    with pytest.raises(ConfigError) as fresh:
        plan_run(10, 20, 1 / 600, 48_000, (2_000, 10_000), 2, (FAST, LONG))
    assert str(fresh.value).endswith("about 2 min 32 s")


@pytest.mark.parametrize("subset", [{"train_subset": 1}, {"train_subset": 40_000},
                                    {"validation_size": 49_999}])
def test_a_run_on_fewer_images_than_the_frontier_plans_the_cheapest_and_predicts_nothing(
        monkeypatch, subset):
    """The frontier's accuracies are those of 48,000 training images: a run on fewer is not
    promised them, nor sent to a costlier recipe for them."""
    monkeypatch.setattr(time_budget, "process_age", lambda: 0.0)
    rate = lambda config: ("float32", 2000.0)  # noqa: E731
    whole, _ = time_budget.plan_budget(TrainConfig(time_budget="3h"), rate)
    assert whole.width_multiplier == 0.75  # 3 hours buy the wider recipe's measured epochs
    planned, run = time_budget.plan_budget(TrainConfig(time_budget="3h", **subset), rate)
    assert run.plan.variant.recipe == "fast" and run.plan.predicted_accuracy is None
    assert planned.width_multiplier == 0.5 and run.plan.summary()["predicted_test_accuracy"] is None


def test_resuming_a_budgeted_run_is_refused_in_one_line(tmp_path, monkeypatch, run_cli_here):
    """A budget's deadline counts from the run's first start, so `--resume` cannot keep it: the
    refusal names the budget (not the planned values the user never gave), writing nothing."""
    monkeypatch.setattr(time_budget, "process_age", lambda: 0.0)
    planned, _ = time_budget.plan_budget(TrainConfig(time_budget="20m"),
                                         lambda config: ("float32", 2000.0))
    run_dir = tmp_path / "run"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(planned.to_dict()))
    before = sorted(os.listdir(run_dir))
    resumed = run_cli_here("train", "--resume", run_dir)
    assert resumed.returncode == 2 and resumed.stdout == ""
    assert resumed.stderr == (f"keras-alexnet: error: {run_dir} ran with a time budget, counted "
                              f"from its start: it cannot resume; train it again with "
                              f"--time-budget and --overwrite\n")
    assert sorted(os.listdir(run_dir)) == before and os.listdir(run_dir / "backup") == []


class Clock:
    """A simulated `time.perf_counter`."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def simulate(keeper, steps_per_epoch, epochs, step_seconds, gap=2.0):
    """Runs `keeper` as `fit` would call it, each step taking `step_seconds(step)` on the
    simulated clock and each epoch's end `gap`; returns the steps trained."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = LinearWarmupDecay(0.1, steps_per_epoch * epochs, steps_per_epoch, replannable=True)
    model.compile(optimizer=TorchSGD(learning_rate=schedule), loss="mse")
    model.optimizer.build(model.trainable_variables)
    keeper.set_model(model)
    keeper.on_train_begin()
    keeper.rates_used = []  # the learning rate each step trained with, as the plan stood then
    step = 0
    for epoch in range(epochs):
        keeper.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            keeper.on_train_batch_begin(batch)
            keeper.rates_used.append(float(schedule(step)))
            keeper.clock.now += step_seconds(step)
            step += 1
            keeper.on_train_batch_end(batch)
            if model.stop_training:
                return step, schedule
        keeper.clock.now += gap
    return step, schedule


def test_the_keeper_stops_where_the_rest_still_fits_and_the_rate_reaches_zero_there():
    clock, batch, spe = Clock(), 256, 100
    after = time_budget.after_training_seconds(0.5 / batch, 20_000, 1)
    keeper = BudgetKeeper(deadline=200.0, steps_per_epoch=spe, max_steps=spe * 10,
                          seconds_per_image=0.5 / batch, batch_size=batch, test_images=20_000,
                          clock=clock)
    steps, schedule = simulate(keeper, spe, 10, lambda step: 0.5)
    assert clock.now + after <= 200.0
    assert clock.now + after > 200.0 - 0.5 - 2.0  # no whole step (or epoch end) left unused
    assert steps == keeper.total_steps
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-7)
    assert float(schedule(steps - 1)) > 0


def test_a_slowdown_is_replanned_so_the_run_still_ends_on_time():
    """Halfway through, every step takes three times as long: the end moves earlier, the rate
    goes from where it was straight to 0 at the new end, and the deadline holds."""
    clock, batch, spe = Clock(), 256, 50
    keeper = BudgetKeeper(deadline=150.0, steps_per_epoch=spe, max_steps=spe * 10,
                          seconds_per_image=0.2 / batch, batch_size=batch, test_images=10_000,
                          clock=clock)
    first_plan = None

    def step_seconds(step):
        nonlocal first_plan
        if step == 200:
            first_plan = keeper.total_steps
        return 0.2 if step < 200 else 0.6

    steps, schedule = simulate(keeper, spe, 10, step_seconds)
    after = time_budget.after_training_seconds(0.6 / batch, 10_000, 1)
    assert steps == keeper.total_steps < first_plan
    assert clock.now + after <= 150.0 + 0.6 * time_budget.WINDOW  # the window's lag at most
    assert float(schedule(steps)) == pytest.approx(0.0, abs=1e-7)
    # The rates the steps trained with never rise after the warm-up: each re-plan goes on from
    # the rate reached.
    rates = keeper.rates_used[spe:]
    assert all(a >= b - 1e-7 for a, b in zip(rates, rates[1:]))
    assert any(replan["at_step"] > 200 for replan in keeper.replans)


def test_a_machine_that_speeds_up_trains_more_steps_up_to_fits_epochs():
    clock, batch, spe = Clock(), 256, 20
    keeper = BudgetKeeper(deadline=400.0, steps_per_epoch=spe, max_steps=spe * 6,
                          seconds_per_image=2.0 / batch, batch_size=batch, test_images=1_000,
                          clock=clock)
    steps, _ = simulate(keeper, spe, 6, lambda step: 0.5)
    assert steps == spe * 6  # the epochs fit was given bound it


def test_a_budget_is_not_deterministic():
    with pytest.raises(ConfigError, match="cannot be deterministic"):
        time_budget.plan_budget(TrainConfig(time_budget="8m", deterministic=True), None)


def test_a_budget_chooses_the_recipe_values_itself():
    with pytest.raises(ConfigError, match="leave out epochs$"):
        time_budget.plan_budget(TrainConfig(time_budget="8m", epochs=3), None)
    with pytest.raises(ConfigError, match="leave out batch_size, dropout$"):
        time_budget.plan_budget(TrainConfig.from_recipe("fast", time_budget="8m", batch_size=64,
                                                        dropout=0.3), None)
    with pytest.raises(ConfigError, match="not 'tweaked'"):
        time_budget.plan_budget(TrainConfig.from_recipe("tweaked", time_budget="8m"), None)


@pytest.mark.parametrize("recipe, planned", [("seed", ["fast", "long"]), ("fast", ["fast"]),
                                             ("long", ["long"])])
def test_a_recipe_given_restricts_the_plan_to_it(monkeypatch, recipe, planned):
    """The seed's config lets the plan choose any recipe, a frontier recipe's only itself; run
    settings (here the seed and data directory) are kept."""
    chosen = []

    def plan(budget, elapsed, seconds_per_image, train_images, eval_images, views, variants):
        chosen.append([variant.recipe for variant in variants])
        return time_budget.Plan(variants[-1], 4, None)

    monkeypatch.setattr(time_budget, "plan_run", plan)
    config = TrainConfig.from_recipe(recipe, time_budget="1h", seed=3, data_dir="here")
    planned_config, run = time_budget.plan_budget(config, lambda config: ("float32", 500.0))
    assert chosen == [planned]
    assert (planned_config.seed, planned_config.data_dir, planned_config.mixed_precision) == (
        3, "here", "float32")
    assert planned_config.width_multiplier == TrainConfig.from_recipe(planned[-1]).width_multiplier
    assert planned_config.epochs == 10 and run.plan.epochs == 4  # room for a faster machine


class SteppingClock:
    """`time` for the budget's module: each reading of its clock is 2 s after the last, so a
    run's plan depends on the calls made, not on this machine's speed."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        self.now += 2.0
        return self.now


def test_a_budgeted_run_plans_replans_and_records_it(cifar_dir, tmp_path, monkeypatch):
    """End to end with an injected probe (2,000 training images/s in float32), a stepping
    clock and a test of 100 images: the run trains the plan's recipe, stops where the budget
    says, before the epochs fit was given, its schedule reaching 0 at that step, and
    metrics.json records the budget and the plan."""
    import keras_alexnet

    monkeypatch.setattr(time_budget, "time", SteppingClock())
    monkeypatch.setattr(time_budget, "process_age", lambda: 0.0)
    monkeypatch.setattr(time_budget, "CIFAR10_TEST_IMAGES", 100)
    monkeypatch.setattr("keras_alexnet.training.recipe.measured_rate",
                        lambda config: ("float32", 2000.0))
    run_dir = str(tmp_path / "run")
    result = keras_alexnet.train(recipe="fast", time_budget="90s", data_dir=cifar_dir,
                                 train_subset=256, validation_size=100, output_dir=run_dir,
                                 figures=False, saved_models_dir=str(tmp_path / "models"),
                                 verbose=0)
    budget = result.metrics["time_budget"]
    saved = json.load(open(os.path.join(run_dir, "metrics.json")))["time_budget"]
    assert saved == budget and budget["budget_seconds"] == 90
    assert budget["plan"]["recipe"] == "fast" and budget["mixed_precision"] == "float32"
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert (config["batch_size"], config["width_multiplier"], config["mixed_precision"],
            config["time_budget"]) == (256, 0.5, "float32", "90s")
    steps = budget["trained_steps"]
    assert steps == len(result.history["loss"])  # one step an epoch: 256 images at batch 256
    assert 3 <= steps < config["epochs"]  # stopped by the budget, not by fit's epochs
    # About 2 clock readings a step and one an epoch's start: 6 s a step; 90 s less 1.5 %, 12 s
    # after training and two readings before the plan leave 10 to 13 steps.
    assert 10 <= steps <= 13
    assert result.history["learning_rate"][-1] == pytest.approx(0.0, abs=1e-6)
    assert max(result.history["learning_rate"]) == pytest.approx(0.1, rel=0.25)
    assert np.isfinite(result.metrics["test_accuracy"])


def test_an_end_planned_at_an_epoch_boundary_counts_that_epochs_validation():
    """At the last step of an epoch its validation is still ahead: a step more costs two epoch
    ends (that one and the next), so with 8 s left beside the 30 s after training the run stops
    there. By hand: 1 s steps, 5 s epoch ends, 10 steps an epoch; step 20 ends at 25 s; its
    validation ends at 30 s and the rest at 60 s; a 21st step would end at 66 s."""
    clock = Clock()
    keeper = BudgetKeeper(deadline=63.0, steps_per_epoch=10, max_steps=100,
                          seconds_per_image=1.0 / 4, batch_size=4, test_images=0,
                          validation_images=0, clock=clock)
    steps, _ = simulate(keeper, 10, 10, lambda step: 1.0, gap=5.0)
    assert steps == 20
    assert clock.now + 5.0 + 30.0 <= 63.0  # its last validation, then the rest


def test_the_keeper_replans_the_schedule_under_a_loss_scale_optimizer():
    """Under `mixed_float16`, Keras wraps the optimizer in a `LossScaleOptimizer`: the schedule
    it wraps is still moved, so the rate reaches 0 at the step the budget stops."""
    clock, spe = Clock(), 10
    schedule = LinearWarmupDecay(0.1, spe * 10, spe, replannable=True)
    optimizer = keras.optimizers.LossScaleOptimizer(TorchSGD(learning_rate=schedule))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    optimizer.build(model.trainable_variables)
    keeper = BudgetKeeper(deadline=60.0, steps_per_epoch=spe, max_steps=spe * 10,
                          seconds_per_image=1.0 / 4, batch_size=4, test_images=0, clock=clock)
    keeper.set_model(model)
    keeper.on_train_begin()
    keeper.on_epoch_begin(0)
    for batch in range(spe):
        keeper.on_train_batch_begin(batch)
        clock.now += 1.0
        keeper.on_train_batch_end(batch)
    # By hand: at step 10 (10 s) the 30 s after training leave 20 s, 17 steps of 1 s and the
    # three 1 s epoch ends they reach.
    assert keeper.total_steps == 27
    assert float(schedule(keeper.total_steps)) == pytest.approx(0.0, abs=1e-7)
    assert float(schedule(keeper.total_steps - 1)) > 0


@pytest.mark.parametrize("refused", [{"deterministic": True}, {"epochs": 3}])
def test_a_refused_budget_leaves_the_process_thread_pools_alone(monkeypatch, refused):
    """The thread pools (and op determinism) cannot be undone in a process: a budget refused
    for its config sets neither."""
    import keras_alexnet
    from keras_alexnet.training import recipe

    calls = []
    monkeypatch.setattr(recipe, "make_tensorflow_deterministic", lambda: calls.append("det"))
    monkeypatch.setattr(recipe, "use_cpu_threads", lambda threads: calls.append("threads"))
    with pytest.raises(ConfigError):
        keras_alexnet.train(time_budget="8m", **refused)
    assert calls == []
