"""`train()`: a recipe end to end — data, augmentation, model, `fit`, test, figures, export.

On the JAX backend with a local `data_dir` and `augmentation="device"`, nothing here imports
TensorFlow; only the SavedModel export needs it (`export.export_or_save`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Optional, Union

import keras

from keras_alexnet.config import TrainConfig, check_packages
from keras_alexnet.data.augment import build_augmentation
from keras_alexnet.data.image_sets import ImageSet, RunData, load_run_data
from keras_alexnet.errors import ConfigError
from keras_alexnet.evaluation.metrics import run_metrics
from keras_alexnet.plots import write_figures
from keras_alexnet.serving.export import export_or_save
from keras_alexnet.training.callbacks import EpochKeyedDraws, build_callbacks
from keras_alexnet.training.checkpoints import CheckpointSchedule, find_resume_backup, resume_epoch
from keras_alexnet.training.fit_setup import build_trainer, fit_data
from keras_alexnet.training.interruption import StopOnSignal, stop_on_signals
from keras_alexnet.training.performance import (
    Performance,
    make_tensorflow_deterministic,
    resolve,
    use_compilation_cache,
    use_cpu_threads,
)
from keras_alexnet.training.process_state import process_state_kept
from keras_alexnet.training.run_dir import (
    CLASS_NAMES_FILE,
    CONFIG,
    HISTORY,
    METRICS,
    check_directory,
    check_run_dir,
    read_history,
    run_lock,
    stop_if_diverged,
    write_class_names,
    write_json,
)


@dataclasses.dataclass
class TrainResult:
    """What `train()` produced.

    Attributes:
        model: The trained Keras model (the weights after the last epoch).
        history: Per-epoch values from `history.csv`, every epoch of the run (also resumed ones).
        metrics: The contents of `metrics.json`.
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


class PhaseClock:
    """Wall seconds of consecutive phases: `lap(name)` ends the phase begun at the last lap."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lap_start = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._lap_start
        self._lap_start = now


def train(config: Optional[TrainConfig] = None, *, preset: Optional[str] = None,
          **overrides) -> TrainResult:
    """Trains AlexNet (by default the seed's, on CIFAR-10), tests it and exports a SavedModel.

    Writes into `config.output_dir`: `best.keras` (best validation accuracy), `history.csv`,
    `metrics.json`, `config.json` and the seed's figures as PNGs; exports under
    `saved_models_dir/model_name/<version>/`. A run killed midway resumes from its last backup
    when started again with the same `output_dir` and the same config (`ConfigError` for another
    config, unless `overwrite`). One run at a time trains into an `output_dir`. Every file is
    written atomically.

    Args:
        config: The run's `TrainConfig`; `None` is the seed recipe, or `preset`.
        preset: Start from a named recipe instead (`keras_alexnet.presets()`); not with `config`.
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
        TrainingStopped: SIGTERM or SIGINT arrived; the run stopped after the step in progress
            and backed up the state its epoch began with, to resume from.

    Example:

    >>> result = train(preset="tweaked", data_dir="../shared/data/cifar-10-batches-py")
    >>> result.metrics["test_accuracy"], result.export_dir
    """
    if config is not None and preset is not None:
        raise ConfigError("pass either a TrainConfig or a preset, not both")
    config = (config.replace(**overrides) if config is not None
              else TrainConfig.from_preset(preset or "seed", **overrides))
    check_packages(config)
    if config.export:
        check_directory(os.path.join(config.saved_models_dir, config.model_name),
                        "model directory")
    with run_lock(config.output_dir), process_state_kept():
        check_run_dir(config)
        return _train(config)


def _train(config: TrainConfig) -> TrainResult:
    """`train()` in its run directory, held."""
    clock = PhaseClock()
    if config.deterministic:
        make_tensorflow_deterministic()
    else:
        use_cpu_threads(config.cpu_threads)
    use_compilation_cache(config.compilation_cache_dir)
    keras.utils.set_random_seed(config.seed)
    data = load_run_data(config)
    clock.lap("data")
    performance = resolve(config)
    augmentation = None if isinstance(data, ImageSet) else build_augmentation(
        data.stats.eigenvalues, data.stats.eigenvectors, pad=config.pad,
        pca_stddev=config.pca_stddev, seed=config.seed, cutout=config.cutout,
        cutout_fill=data.stats.mean)
    model, trainer = build_trainer(config, performance, data, augmentation)
    clock.lap("build")

    checkpoint_writes = fit(trainer, model, data, augmentation, config, performance)
    clock.lap("fit")
    history = read_history(os.path.join(config.output_dir, HISTORY))
    stop_if_diverged(history, config.output_dir)

    metrics = run_metrics(model, data, history, config, performance.summary())
    clock.lap("test")
    metrics["phase_seconds"] = {**clock.seconds, "checkpoint_writes": checkpoint_writes}
    write_json(os.path.join(config.output_dir, METRICS), metrics)
    if config.figures:
        write_figures(config.output_dir, data, history, metrics["confusion_matrix"], config)
    clock.lap("figures")
    export_dir = export_or_save(model, config, data.class_names) if config.export else None
    clock.lap("export")
    return TrainResult(model, history, metrics, config.output_dir, export_dir,
                       {**metrics["phase_seconds"], **clock.seconds})


def progress_verbosity(verbose: Union[int, str]) -> int:
    """`fit`'s `verbose` for the config's: `"auto"` is a progress bar on a terminal and one
    line per epoch otherwise (a log file, CI), where a bar's redraws would fill it."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def fit(trainer: keras.Model, model: keras.Model, data: RunData,
        augmentation: Optional[keras.layers.Layer], config: TrainConfig,
        performance: Performance) -> float:
    """Trains `trainer` for `config.epochs` epochs into the run directory (`config.json`,
    `class_names.txt`, `history.csv`, `best.keras`, the resume backup); returns the seconds the
    checkpoint writes took. SIGTERM or SIGINT stop it after the step in progress, backed up
    (`interruption.StopOnSignal`)."""
    write_json(os.path.join(config.output_dir, CONFIG), config.to_dict())
    write_class_names(os.path.join(config.output_dir, CLASS_NAMES_FILE), data.class_names)
    data_args, next_epoch = fit_data(data, augmentation, config, performance)
    callbacks = build_callbacks(config, model)
    backup = find_resume_backup(callbacks)
    initial_epoch = resume_epoch(trainer, callbacks)
    with stop_on_signals() as request:
        trainer.fit(**data_args, epochs=config.epochs, initial_epoch=initial_epoch,
                    verbose=progress_verbosity(config.verbose),
                    callbacks=[EpochKeyedDraws(next_epoch, config.seed), *callbacks,
                               StopOnSignal(request, config.output_dir, backup, model)])
    return sum(callback.write_seconds for callback in callbacks
               if isinstance(callback, CheckpointSchedule))
