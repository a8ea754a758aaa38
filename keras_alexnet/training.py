"""`train()`: the seed's recipe end to end — data, augmentation, model, `fit`, test, export."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from typing import Callable, Optional

import keras
import numpy as np

from keras_alexnet.augment import build_augmentation
from keras_alexnet.config import TrainConfig
from keras_alexnet.data import PixelStats, eval_dataset, load_cifar10, split_train_validation, train_dataset
from keras_alexnet.evaluation import predict_probabilities, test_metrics
from keras_alexnet.export import export_saved_model
from keras_alexnet.model import build_model
from keras_alexnet.optimizer import TorchSGD
from keras_alexnet.plots import write_figures

CHECKPOINT = "best.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
CONFIG = "config.json"
BACKUP = "backup"


@dataclasses.dataclass
class TrainResult:
    """What `train()` produced.

    Attributes:
        model: The trained Keras model (the weights after the last epoch).
        history: Per-epoch values from `history.csv`, every epoch of the run (also resumed ones).
        metrics: The contents of `metrics.json`.
        run_dir: The run directory (`config.output_dir`).
        export_dir: The SavedModel version directory, or `None` when export was off.
    """

    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict
    run_dir: str
    export_dir: Optional[str]


def train(config: Optional[TrainConfig] = None, **overrides) -> TrainResult:
    """Trains AlexNet on CIFAR-10 with the seed's recipe, tests it and exports a SavedModel.

    Writes into `config.output_dir`: `best.keras` (best validation accuracy), `history.csv`,
    `metrics.json`, `config.json` and the seed's figures as PNGs (`plots.write_figures`); exports
    under `saved_models_dir/model_name/<version>/`.
    A run killed midway resumes from its last completed epoch when started again with the same
    `output_dir` (`keras.callbacks.BackupAndRestore`).

    Args:
        config: The run's `TrainConfig`; `None` is the seed recipe.
        **overrides: `TrainConfig` fields to change, e.g. `epochs=1, train_subset=512`.

    Returns:
        A `TrainResult`.

    Example:

    >>> result = train(epochs=1, train_subset=512, data_dir="../shared/data")
    >>> result.metrics["test_accuracy"], result.export_dir
    (0.2265, 'saved_models/alexnet_cifar10/1')
    """
    config = (config or TrainConfig()).replace(**overrides)
    keras.utils.set_random_seed(config.seed)
    split = split_train_validation(load_cifar10(config.data_dir), config.validation_size,
                                   config.seed, config.train_subset)
    stats = PixelStats.from_images(split.x_train)
    model = build_model(init=config.init, dropout=config.dropout, mean=stats.mean, std=stats.std,
                        seed=config.seed)
    model.compile(optimizer=build_optimizer(config),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    augmentation = build_augmentation(stats.eigenvalues, stats.eigenvectors, pad=config.pad,
                                      pca_stddev=config.pca_stddev, seed=config.seed)

    run_dir = config.output_dir
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, CONFIG), config.to_dict())
    model.fit(
        train_dataset(split.x_train, split.y_train, config.batch_size, augmentation, config.seed),
        validation_data=eval_dataset(split.x_val, split.y_val, config.batch_size),
        epochs=config.epochs,
        shuffle=False,  # The training dataset reshuffles itself every epoch.
        callbacks=build_callbacks(config),
        verbose=config.verbose,
    )
    history = read_history(os.path.join(run_dir, HISTORY))
    probabilities = predict_probabilities(model, split.x_test, verbose=0)
    epoch_seconds = history["epoch_seconds"]
    steady = epoch_seconds[1:] or epoch_seconds
    metrics = {
        **test_metrics(probabilities, split.y_test),
        "best_val_accuracy": max(history["val_accuracy"]),
        "epochs_completed": len(history["epoch"]),
        "train_seconds": float(np.sum(epoch_seconds)),
        "train_images_per_second": float(len(split.x_train) / np.median(steady)),
    }
    write_json(os.path.join(run_dir, METRICS), metrics)
    write_figures(run_dir, split.x_train, split.y_train, stats, history, metrics["confusion_matrix"],
                  pad=config.pad, pca_stddev=config.pca_stddev, seed=config.seed)
    export_dir = None
    if config.export:
        export_dir = export_saved_model(model, config.saved_models_dir, config.model_name)
    return TrainResult(model, history, metrics, run_dir, export_dir)


def build_optimizer(config: TrainConfig) -> TorchSGD:
    """The seed's optimizer: PyTorch-style SGD, coupled L2, global-norm clipping."""
    return TorchSGD(learning_rate=config.learning_rate, momentum=config.momentum,
                    weight_decay=config.weight_decay, global_clipnorm=config.clip_norm)


def learning_rate_schedule(config: TrainConfig) -> Callable[[int], float]:
    """Step decay by 0-based epoch index: `learning_rate` for the first `lr_decay_epoch` epochs,
    then `learning_rate * lr_decay_factor` (the seed: 0.01 for epochs 1–30, 0.001 from 31)."""

    def schedule(epoch: int) -> float:
        if epoch < config.lr_decay_epoch:
            return config.learning_rate
        return config.learning_rate * config.lr_decay_factor

    return schedule


def build_callbacks(config: TrainConfig) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in the order they must run at the end of each epoch."""
    run_dir = config.output_dir
    resuming = os.path.isdir(os.path.join(run_dir, BACKUP))
    history_path = os.path.join(run_dir, HISTORY)
    best_so_far = None
    if resuming and os.path.isfile(history_path):
        best_so_far = max(read_history(history_path).get("val_accuracy", []), default=None)
    callbacks = [
        EpochTimer(),
        keras.callbacks.LearningRateScheduler(learning_rate_schedule(config)),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.ModelCheckpoint(os.path.join(run_dir, CHECKPOINT), monitor="val_accuracy",
                                        mode="max", save_best_only=True,
                                        initial_value_threshold=best_so_far),
        keras.callbacks.CSVLogger(history_path, append=resuming),
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, BACKUP)),
    ]
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
    return callbacks


class EpochTimer(keras.callbacks.Callback):
    """Adds `epoch_seconds`, the wall time of each epoch's training phase, to the epoch logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._seconds = None

    def on_test_begin(self, logs=None):
        if self._seconds is None:
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        if self._seconds is None:
            self._seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = self._seconds


def read_history(path: str) -> dict[str, list[float]]:
    """Reads a `CSVLogger` file into a dict of per-epoch lists (`epoch` as ints)."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    columns = rows[0].keys() if rows else []
    return {name: [int(row[name]) if name == "epoch" else float(row[name]) for row in rows]
            for name in columns}


def write_json(path: str, value) -> None:
    """Writes `value` as JSON through a temporary file renamed into place."""
    staging = f"{path}.tmp"
    with open(staging, "w") as file:
        json.dump(value, file, indent=2)
    os.replace(staging, path)
