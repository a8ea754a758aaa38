"""`train()`: a recipe end to end — data, augmentation, model, `fit`, test, figures, export.

On the JAX backend with a local `data_dir` and `augmentation="device"`, nothing here imports
TensorFlow; only the SavedModel export needs it (`backend_export.export_or_save`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import keras

from keras_alexnet.config import TrainConfig, check_packages, warn_renamed
from keras_alexnet.data.augment import build_augmentation
from keras_alexnet.data.cifar10 import NUM_CLASSES
from keras_alexnet.data.image_sets import ImageSet, load_run_data
from keras_alexnet.errors import ConfigError
from keras_alexnet.evaluation.metrics import run_metrics
from keras_alexnet.plots import write_figures
from keras_alexnet.run_dir import (
    HISTORY,
    METRICS,
    read_history,
    remove_backup,
    stop_if_diverged,
    write_json,
)
from keras_alexnet.serving.backend_export import export_or_save
from keras_alexnet.training.devices import place
from keras_alexnet.training.fit_setup import build_trainer, fit, precision_probe
from keras_alexnet.training.interruption import StopRequest, after_training, stop_on_signals
from keras_alexnet.training.multi_host import (
    ProcessShard,
    agree_on_config,
    check_batches,
    join,
    process_local,
    run_held,
)
from keras_alexnet.training.performance import (
    PROBE_MIN_IMAGES,
    make_tensorflow_deterministic,
    resolve,
    use_compilation_cache,
    use_cpu_threads,
)
from keras_alexnet.training.process_state import process_state_kept
from keras_alexnet.training.time_budget import BudgetRun, plan_budget
from keras_alexnet.utils.phase_clock import PhaseClock, process_age


@dataclasses.dataclass
class TrainResult:
    """What `train()` produced.

    Attributes:
        model: The trained Keras model (the weights after the last epoch).
        history: Per-epoch values from `history.csv`, every epoch of the run (also resumed ones;
            on the other processes of a multi-host run, this call's epochs).
        metrics: The contents of `metrics.json` (`{}` on the processes of a multi-host run
            but process 0, which alone tests, draws and exports the run).
        run_dir: The run directory (`config.output_dir`).
        export_dir: The SavedModel version directory, or `None` when export was off.
        phase_seconds: Wall seconds of this call's phases: `data`, `build`, `fit` (of which
            `checkpoint_writes`), `test` (as in `metrics.json`), then `figures` and `export`.
    """

    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict
    run_dir: str
    export_dir: Optional[str]
    phase_seconds: dict[str, float]


def train(config: Optional[TrainConfig] = None, *, recipe: Optional[str] = None,
          preset: Optional[str] = None, **overrides) -> TrainResult:
    """Trains AlexNet (by default the seed's, on CIFAR-10), tests it and exports a SavedModel.

    Writes into `config.output_dir`: `best.keras` (best validation accuracy), `history.csv`,
    `metrics.json`, `config.json` and the seed's figures as PNGs; exports under
    `saved_models_dir/model_name/<version>/`. A run killed midway resumes from its last backup
    when started again with the same `output_dir` and the same config (`ConfigError` for another
    config, unless `overwrite`). One run at a time trains into an `output_dir`. Every file is
    written atomically. On several processes (`distribution="multi_host"`), every process
    calls it alike and process 0 writes the run (`training.multi_host`).

    Args:
        config: The run's `TrainConfig`; `None` is the seed recipe, or `recipe`.
        recipe: Start from a named recipe instead (`keras_alexnet.recipes()`); not with `config`.
        preset: Deprecated spelling of `recipe`.
        **overrides: `TrainConfig` fields to change, e.g. `epochs=1, train_subset=512`.

    Returns:
        A `TrainResult`.

    Raises:
        ConfigError: A bad configuration value, or an `output_dir` holding a run of another
            config without `overwrite` (before anything is written).
        DataError: Missing or corrupt data (before anything is written).
        RunDirError: Another process trains into `output_dir`, it or `saved_models_dir`
            cannot be created, or a resumed run's `history.csv` was damaged outside the package.
        TrainingDiverged: The loss became NaN or infinite; the best checkpoint so far is kept.
        TrainingStopped: SIGTERM or SIGINT arrived: in `fit` the run stopped after the step in
            progress, backed up at its epoch's start; elsewhere at once (after `fit`, the same
            call then finishes the run without training again).
        PeerLost: Another process of a multi-host run stopped.

    Example:

    >>> result = train(recipe="tweaked", data_dir="cifar-10-batches-py")
    >>> result.metrics["test_accuracy"], result.export_dir
    """
    if preset is not None:
        warn_renamed("train(preset=...)", "train(recipe=...)")
        recipe = recipe or preset
    if config is not None and recipe is not None:
        raise ConfigError("pass either a TrainConfig or a recipe, not both")
    config = (config.replace(**overrides) if config is not None
              else TrainConfig.from_recipe(recipe or "seed", **overrides))
    check_packages(config)
    with stop_on_signals() as request:
        budget = None
        if config.time_budget is not None:
            request.enter("while measuring this host for the time budget")
            config, budget = plan_budget(config, measured_rate)
        shard = join(config.distribution)
        request.reclaim()  # JAX's distributed runtime installs a SIGTERM handler of its own
        agree_on_config(shard, config)
        check_batches(shard, config.batch_size, config.eval_batch_size)
        with run_held(config, shard), process_state_kept():
            return _train(config, shard, request, budget)


def set_up_threads(config: TrainConfig) -> None:
    """The run's CPU thread pools (or TensorFlow's determinism), set before its runtime starts."""
    if config.deterministic:
        make_tensorflow_deterministic()
    else:
        use_cpu_threads(config.cpu_threads)


def measured_rate(config: TrainConfig) -> tuple[str, float]:
    """The precision `config` trains in on this host (the probe's choice, cached or measured)
    and its training images/s measured now (what else runs on the machine counts too), on the
    run's thread pools, set here: once the budget's config was accepted."""
    set_up_threads(config)
    probe = precision_probe(config, NUM_CLASSES, train_images=PROBE_MIN_IMAGES)
    precision = resolve(config, probe=probe).mixed_precision
    fresh = {} if probe.cached else probe.rates
    return precision, fresh.get(precision) or probe.measure(precision)


def _train(config: TrainConfig, shard: ProcessShard, request: StopRequest,
           budget: Optional[BudgetRun] = None) -> TrainResult:
    """`train()` in its run directory, held; `request` names each phase for a stop message;
    `budget`: the plan of a run with a time budget."""
    clock = PhaseClock()
    request.enter("while loading the data")
    set_up_threads(config)
    use_compilation_cache(config.compilation_cache_dir)
    keras.utils.set_random_seed(config.seed)
    data = load_run_data(config)
    clock.lap("data")
    request.enter("while building the model")
    performance = resolve(config, probe=precision_probe(config, data.num_classes,
                                                        data.train_size * config.epochs))
    placement = place(config.distribution)  # first: on JAX the augmentation's state is placed too
    augmentation = None if isinstance(data, ImageSet) else build_augmentation(
        data.stats.eigenvalues, data.stats.eigenvectors, pad=config.pad,
        pca_stddev=config.pca_stddev, seed=config.seed, cutout=config.cutout,
        cutout_fill=data.stats.mean)
    model, trainer = build_trainer(config, performance, data, augmentation, placement)
    clock.lap("build")

    keeper = budget.keeper(config, data.train_size, data.test_size) if budget else None
    checkpoint_writes, fitted = fit(trainer, model, data, augmentation, config, performance, shard,
                                    request, keeper)
    clock.lap("fit")
    if not shard.is_writer:
        return TrainResult(model, fitted, {}, config.output_dir, None, clock.seconds)
    request.enter("after training, while testing",
                  after_training(config.checkpoint_every, shard.count))
    model = process_local(model) if shard.count > 1 else model
    history = read_history(os.path.join(config.output_dir, HISTORY))
    stop_if_diverged(history, config.output_dir)

    metrics = run_metrics(model, data, history, config, performance.summary())
    clock.lap("test")
    metrics["phase_seconds"] = {**clock.seconds, "checkpoint_writes": checkpoint_writes}
    if budget:
        metrics["time_budget"] = budget.summary(keeper)
    write_json(os.path.join(config.output_dir, METRICS), metrics)
    request.enter("after training, while drawing the figures")
    if config.figures:
        write_figures(config.output_dir, data, history, metrics["confusion_matrix"], config)
    clock.lap("figures")
    request.enter("after training, while exporting")
    export_dir = export_or_save(model, config, data.class_names) if config.export else None
    clock.lap("export")
    if budget:  # the whole run's time, from process start to the SavedModel, and its phases
        metrics["time_budget"].update(seconds=round(process_age(), 1), phase_seconds={
            name: round(value, 1) for name, value in clock.seconds.items()})
        write_json(os.path.join(config.output_dir, METRICS), metrics)
    remove_backup(config.output_dir)  # the run is complete
    return TrainResult(model, history, metrics, config.output_dir, export_dir,
                       {**metrics["phase_seconds"], **clock.seconds})
