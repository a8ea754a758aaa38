"""`train()`: a recipe end to end — data, augmentation, model, `fit`, test, figures, export.

On the JAX backend with a local `data_dir` and `augmentation="device"`, nothing here imports
TensorFlow; only the SavedModel export needs it (`export.export_or_save`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from typing import Any, Optional

import keras
import numpy as np

from keras_alexnet.augment import build_augmentation
from keras_alexnet.callbacks import CheckpointSchedule, EpochKeyedDraws, build_callbacks
from keras_alexnet.config import TrainConfig
from keras_alexnet.data import PreparedData, Split, eval_dataset, prepare, train_dataset
from keras_alexnet.distribute import place
from keras_alexnet.errors import ConfigError, TrainingError
from keras_alexnet.evaluation import run_metrics
from keras_alexnet.export import export_or_save
from keras_alexnet.losses import build_loss
from keras_alexnet.model import build_model
from keras_alexnet.on_device import DeviceAugmentedModel
from keras_alexnet.optimizer import build_optimizer
from keras_alexnet.performance import (
    Performance,
    dtype_policy,
    make_tensorflow_deterministic,
    resolve,
    use_compilation_cache,
)
from keras_alexnet.plots import write_figures
from keras_alexnet.run_dir import (
    BACKUP,
    CHECKPOINT,
    CONFIG,
    HISTORY,
    METRICS,
    read_history,
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
    """Trains AlexNet on CIFAR-10, tests it and exports a SavedModel.

    Writes into `config.output_dir`: `best.keras` (best validation accuracy), `history.csv`,
    `metrics.json`, `config.json` and the seed's figures as PNGs; exports under
    `saved_models_dir/model_name/<version>/`. A run killed midway resumes from its last completed
    epoch when started again with the same `output_dir`. Every file is written atomically.

    Args:
        config: The run's `TrainConfig`; `None` is the seed recipe, or `preset`.
        preset: Start from a named recipe instead (`keras_alexnet.presets()`); not with `config`.
        **overrides: `TrainConfig` fields to change, e.g. `epochs=1, train_subset=512`.

    Returns:
        A `TrainResult`.

    Raises:
        ConfigError: A bad configuration value (before anything is written).
        DataError: Missing or corrupt data (before anything is written).
        TrainingError: The loss became NaN or infinite; the best checkpoint so far is kept.

    Example:

    >>> result = train(preset="tweaked", data_dir="../shared/data/cifar-10-batches-py")
    >>> result.metrics["test_accuracy"], result.export_dir
    """
    if config is not None and preset is not None:
        raise ConfigError("pass either a TrainConfig or a preset, not both")
    config = (config or TrainConfig.from_preset(preset or "seed")).replace(**overrides)
    clock = PhaseClock()
    if config.deterministic:
        make_tensorflow_deterministic()
    use_compilation_cache(config.compilation_cache_dir)
    keras.utils.set_random_seed(config.seed)
    data = prepare(config)
    clock.lap("data")
    performance = resolve(config)
    augmentation = build_augmentation(data.stats.eigenvalues, data.stats.eigenvectors,
                                      pad=config.pad, pca_stddev=config.pca_stddev,
                                      seed=config.seed, cutout=config.cutout,
                                      cutout_fill=data.stats.mean)
    model, trainer = build_trainer(config, performance, data, augmentation)
    clock.lap("build")

    checkpoint_writes = fit(trainer, model, data, augmentation, config, performance)
    clock.lap("fit")
    history = read_history(os.path.join(config.output_dir, HISTORY))
    stop_if_diverged(history, config.output_dir)

    metrics = run_metrics(model, data.split, history, config.test_time_augmentation,
                          performance.summary(), batch_size=config.eval_batch_size)
    clock.lap("test")
    metrics["phase_seconds"] = {**clock.seconds, "checkpoint_writes": checkpoint_writes}
    write_json(os.path.join(config.output_dir, METRICS), metrics)
    if config.figures:
        write_figures(config.output_dir, data.split.x_train, data.split.y_train, data.stats,
                      history, metrics["confusion_matrix"], pad=config.pad,
                      pca_stddev=config.pca_stddev, seed=config.seed,
                      lr_schedule=config.lr_schedule)
    clock.lap("figures")
    export_dir = export_or_save(model, config) if config.export else None
    clock.lap("export")
    return TrainResult(model, history, metrics, config.output_dir, export_dir,
                       {**metrics["phase_seconds"], **clock.seconds})


def fit(trainer: keras.Model, model: keras.Model, data: PreparedData,
        augmentation: keras.layers.Layer, config: TrainConfig, performance: Performance) -> float:
    """Trains `trainer` for `config.epochs` epochs into the run directory (`config.json`,
    `history.csv`, `best.keras`, the resume backup); returns the seconds the checkpoint writes
    took."""
    os.makedirs(config.output_dir, exist_ok=True)
    write_json(os.path.join(config.output_dir, CONFIG), config.to_dict())
    data_args, next_epoch = fit_data(data.split, augmentation, config, performance)
    callbacks = build_callbacks(config, model)
    trainer.fit(**data_args, epochs=config.epochs, verbose=config.verbose,
                callbacks=[EpochKeyedDraws(next_epoch), *callbacks])
    return sum(callback.write_seconds for callback in callbacks
               if isinstance(callback, CheckpointSchedule))


def build_trainer(config: TrainConfig, performance: Performance, data: PreparedData,
                  augmentation: keras.layers.Layer) -> tuple[keras.Model, keras.Model]:
    """The model and what `fit` trains: the model itself, or, with on-device augmentation, a
    `DeviceAugmentedModel` around it; both compiled, in the run's precision and devices."""
    placement = place(config.distribution)
    if config.verbose:
        print(f"keras_alexnet: training on {placement.num_replicas} replica(s) ({placement.name}, "
              f"{performance.accelerator.name}), global batch {config.batch_size}, "
              f"{performance.mixed_precision}, XLA {performance.jit_compile}, "
              f"{performance.steps_per_execution} step(s) per execution, augmentation on the "
              f"{performance.augmentation}")
    split = data.split
    with dtype_policy(performance.mixed_precision), placement.scope:
        model = build_model(init=config.init, dropout=config.dropout, mean=data.stats.mean,
                            std=data.stats.std, seed=config.seed, conv1_stride=config.conv1_stride,
                            batch_norm=config.batch_norm)
        trainer = (DeviceAugmentedModel(model, np.concatenate([split.x_train, split.x_val]),
                                        augmentation)
                   if performance.augmentation == "device" else model)
        compile_for_training(trainer, config, performance,
                             steps_per_epoch=math.ceil(len(split.x_train) / config.batch_size))
        if trainer is not model:  # best.keras then carries the optimizer state too
            model.compile(optimizer=trainer.optimizer, loss=trainer.loss, metrics=["accuracy"])
    return model, trainer


def compile_for_training(model: keras.Model, config: TrainConfig, performance: Performance,
                         steps_per_epoch: int) -> None:
    """Compiles with the run's optimizer and loss, XLA and steps per execution."""
    model.compile(optimizer=build_optimizer(config, steps_per_epoch), loss=build_loss(config),
                  metrics=["accuracy"], jit_compile=performance.jit_compile,
                  steps_per_execution=performance.steps_per_execution)


def fit_data(split: Split, augmentation: keras.layers.Layer, config: TrainConfig,
             performance: Performance) -> tuple[dict, Any]:
    """`fit`'s data arguments, and the training dataset's pass counter (`None` on the device).

    The data is tf.data datasets (pipeline), or indices into the device store that holds the
    training images followed by the validation images (device).
    """
    if performance.augmentation == "device":
        train_size = len(split.x_train)
        return {"x": np.arange(train_size, dtype=np.int32), "y": split.y_train,
                "batch_size": config.batch_size, "shuffle": True,
                "validation_data": (np.arange(train_size, train_size + len(split.x_val),
                                              dtype=np.int32), split.y_val),
                "validation_batch_size": config.eval_batch_size}, None
    import tensorflow as tf

    next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    return {"x": train_dataset(split.x_train, split.y_train, config.batch_size, augmentation,
                               config.seed, deterministic=config.deterministic,
                               jit_compile=not config.deterministic, next_epoch=next_epoch),
            "validation_data": eval_dataset(split.x_val, split.y_val, config.eval_batch_size),
            "shuffle": False}, next_epoch  # The training dataset shuffles itself every epoch.


def stop_if_diverged(history: dict[str, list[float]], run_dir: str) -> None:
    """Raises `TrainingError` when the last epoch's loss is NaN or infinite, keeping the best
    checkpoint and removing the backup (resuming from it would only diverge again)."""
    if math.isfinite(history["loss"][-1]):
        return
    shutil.rmtree(os.path.join(run_dir, BACKUP), ignore_errors=True)
    best = os.path.join(run_dir, CHECKPOINT)
    kept = (f"the last good checkpoint is {best}" if os.path.isfile(best)
            else "no checkpoint was saved")
    raise TrainingError(f"the loss became NaN or infinite in epoch {len(history['loss'])}; "
                        f"training stopped and {kept} (try a lower learning rate)")
