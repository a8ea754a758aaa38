"""`train()`: the seed's recipe end to end — data, augmentation, model, `fit`, test, export.

On the JAX backend with a local `data_dir` and `augmentation="device"`, nothing here imports
TensorFlow; only the SavedModel export needs it: the run saves `final.keras` and exports it with
`keras-alexnet export --weights` in a TensorFlow-backend process, or, without TensorFlow, leaves it
for a machine that has it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
import warnings
from typing import Callable, Optional

import keras
import numpy as np

from keras_alexnet.atomic import atomic_path
from keras_alexnet.augment import build_augmentation
from keras_alexnet.config import TrainConfig
from keras_alexnet.data import PixelStats, Split, eval_dataset, load_cifar10, split_train_validation, train_dataset
from keras_alexnet.distribute import place
from keras_alexnet.evaluation import predict_probabilities, test_metrics
from keras_alexnet.model import build_model
from keras_alexnet.on_device import DeviceAugmentedModel
from keras_alexnet.optimizer import TorchSGD
from keras_alexnet.performance import Performance, resolve

CHECKPOINT = "best.keras"
FINAL_MODEL = "final.keras"
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
    `output_dir` (`keras.callbacks.BackupAndRestore`). Every file is written atomically.

    Args:
        config: The run's `TrainConfig`; `None` is the seed recipe.
        **overrides: `TrainConfig` fields to change, e.g. `epochs=1, train_subset=512`.

    Returns:
        A `TrainResult`.

    Raises:
        ConfigError: A bad configuration value (before anything is written).
        DataError: Missing or corrupt data (before anything is written).
        TrainingError: The loss became NaN or infinite; the best checkpoint so far is kept.

    Example:

    >>> result = train(epochs=1, train_subset=512, data_dir="../shared/data")
    >>> result.metrics["test_accuracy"], result.export_dir
    """
    config = (config or TrainConfig()).replace(**overrides)
    if config.deterministic:
        make_tensorflow_deterministic()
    keras.utils.set_random_seed(config.seed)
    split = split_train_validation(load_cifar10(config.data_dir), config.validation_size,
                                   config.seed, config.train_subset)
    stats = PixelStats.from_images(split.x_train)
    performance = resolve(config)
    placement = place(config.distribution)
    if config.verbose:
        print(f"keras_alexnet: training on {placement.num_replicas} replica(s) ({placement.name}, "
              f"{performance.accelerator.name}), global batch {config.batch_size}, "
              f"{performance.mixed_precision}, XLA {performance.jit_compile}, "
              f"{performance.steps_per_execution} step(s) per execution, augmentation on the "
              f"{performance.augmentation}")
    # The augmentation computes in float32 whatever the model's precision.
    augmentation = build_augmentation(stats.eigenvalues, stats.eigenvectors, pad=config.pad,
                                      pca_stddev=config.pca_stddev, seed=config.seed)
    with dtype_policy(performance.mixed_precision), placement.scope:
        model = build_model(init=config.init, dropout=config.dropout, mean=stats.mean,
                            std=stats.std, seed=config.seed)
        trainer = (DeviceAugmentedModel(model, np.concatenate([split.x_train, split.x_val]),
                                        augmentation)
                   if performance.augmentation == "device" else model)
        compile_for_training(trainer, config, performance)
        if trainer is not model:  # best.keras then carries the optimizer state too
            model.compile(optimizer=trainer.optimizer, loss=trainer.loss, metrics=["accuracy"])

    run_dir = config.output_dir
    os.makedirs(run_dir, exist_ok=True)
    write_json(os.path.join(run_dir, CONFIG), config.to_dict())
    trainer.fit(**fit_data(split, augmentation, config, performance), epochs=config.epochs,
                callbacks=build_callbacks(config, model), verbose=config.verbose)
    history = read_history(os.path.join(run_dir, HISTORY))
    if not math.isfinite(history["loss"][-1]):
        # The backup holds the diverged weights: resuming from it would only diverge again.
        shutil.rmtree(os.path.join(run_dir, BACKUP), ignore_errors=True)
        best = os.path.join(run_dir, CHECKPOINT)
        kept = f"the last good checkpoint is {best}" if os.path.isfile(best) else "no checkpoint was saved"
        raise TrainingError(f"the loss became NaN or infinite in epoch {len(history['loss'])}; "
                            f"training stopped and {kept} (try a lower learning rate)")
    probabilities = predict_probabilities(model, split.x_test, verbose=0)
    epoch_seconds = history["epoch_seconds"]
    steady = epoch_seconds[1:] or epoch_seconds
    metrics = {
        **test_metrics(probabilities, split.y_test),
        "best_val_accuracy": max(history["val_accuracy"]),
        "epochs_completed": len(history["epoch"]),
        "train_seconds": float(np.sum(epoch_seconds)),
        "train_images_per_second": float(len(split.x_train) / np.median(steady)),
        "performance": {"mixed_precision": performance.mixed_precision,
                        "jit_compile": performance.jit_compile,
                        "steps_per_execution": performance.steps_per_execution,
                        "augmentation": performance.augmentation,
                        "backend": keras.backend.backend(),
                        "device": performance.accelerator.name},
    }
    write_json(os.path.join(run_dir, METRICS), metrics)
    if config.figures:
        from keras_alexnet.plots import write_figures

        write_figures(run_dir, split.x_train, split.y_train, stats, history,
                      metrics["confusion_matrix"], pad=config.pad, pca_stddev=config.pca_stddev,
                      seed=config.seed)
    export_dir = export_or_save(model, config) if config.export else None
    return TrainResult(model, history, metrics, run_dir, export_dir)


def compile_for_training(model: keras.Model, config: TrainConfig, performance: Performance) -> None:
    """Compiles with the seed's optimizer and loss and the run's XLA and steps-per-execution."""
    model.compile(optimizer=build_optimizer(config),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=performance.jit_compile,
                  steps_per_execution=performance.steps_per_execution)


def fit_data(split: Split, augmentation: keras.layers.Layer, config: TrainConfig,
             performance: Performance) -> dict:
    """`fit`'s data arguments: tf.data datasets (pipeline), or indices into the device store
    that holds the training images followed by the validation images (device)."""
    if performance.augmentation == "device":
        train_size = len(split.x_train)
        return {"x": np.arange(train_size, dtype=np.int32), "y": split.y_train,
                "batch_size": config.batch_size, "shuffle": True,
                "validation_data": (np.arange(train_size, train_size + len(split.x_val),
                                              dtype=np.int32), split.y_val)}
    return {"x": train_dataset(split.x_train, split.y_train, config.batch_size, augmentation,
                               config.seed, deterministic=config.deterministic,
                               jit_compile=not config.deterministic),
            "validation_data": eval_dataset(split.x_val, split.y_val, config.batch_size),
            "shuffle": False}  # The training dataset reshuffles itself every epoch.


def export_or_save(model: keras.Model, config: TrainConfig) -> Optional[str]:
    """Exports the SavedModel. On another backend the model is saved as `final.keras` and
    exported by `keras-alexnet export` in a TensorFlow-backend process (TF Serving needs plain
    TensorFlow ops); without TensorFlow, `final.keras` is left to export elsewhere."""
    if keras.backend.backend() == "tensorflow":
        from keras_alexnet.export import export_saved_model

        return export_saved_model(model, config.saved_models_dir, config.model_name)
    final = os.path.join(config.output_dir, FINAL_MODEL)
    with atomic_path(final) as staging:
        model.save(staging)
    if importlib.util.find_spec("tensorflow") is None:
        print(f"keras_alexnet: TensorFlow is not installed, so no SavedModel was exported; the "
              f"trained model is {final}: on a machine with TensorFlow run `keras-alexnet export "
              f"--weights {final}`", file=sys.stderr)
        return None
    command = [sys.executable, "-m", "keras_alexnet.cli", "export", "--weights", final,
               "--saved-models-dir", config.saved_models_dir, "--model-name", config.model_name]
    exported = subprocess.run(command, capture_output=True, text=True, check=False)
    if exported.returncode != 0:
        raise TrainingError(f"exporting {final} failed: {exported.stderr.strip()[-2000:]}")
    return exported.stdout.strip().splitlines()[-1].removeprefix("SavedModel: ")


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets Keras' global dtype policy (e.g. `"mixed_bfloat16"`) inside the block only."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def make_tensorflow_deterministic() -> None:
    """TensorFlow op determinism on one CPU thread per op, so CPU reductions keep their order.

    The thread counts can only be set before TensorFlow's runtime starts; later (a notebook that
    already ran TensorFlow) a warning says that results may differ in their last bits.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        warnings.warn("deterministic=True: TensorFlow had already started, so ops keep their "
                      "thread pools; restart the process for bit-identical runs")


def build_optimizer(config: TrainConfig) -> TorchSGD:
    """The seed's optimizer: PyTorch-style SGD, coupled L2, global-norm clipping."""
    return TorchSGD(learning_rate=config.scaled_learning_rate, momentum=config.momentum,
                    weight_decay=config.weight_decay, global_clipnorm=config.clip_norm)


def learning_rate_schedule(config: TrainConfig) -> Callable[[int], float]:
    """Step decay by 0-based epoch index: `learning_rate` for the first `lr_decay_epoch` epochs,
    then `learning_rate * lr_decay_factor` (the seed: 0.01 for epochs 1–30, 0.001 from 31)."""

    def schedule(epoch: int) -> float:
        if epoch < config.lr_decay_epoch:
            return config.scaled_learning_rate
        return config.scaled_learning_rate * config.lr_decay_factor

    return schedule


def build_callbacks(config: TrainConfig, model: Optional[keras.Model] = None
                    ) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in the order they must run at the end of each epoch.

    `model` is the model `best.keras` holds (default: the one being fit); with on-device
    augmentation it is the network inside the `DeviceAugmentedModel` that `fit` trains.

    On a resumed run (`output_dir/backup` exists) `BackupAndRestore` restores the weights, the
    optimizer state and the epoch; `HistoryWriter` keeps the rows of the completed epochs and
    `BestCheckpoint` the best validation accuracy reached so far.
    """
    run_dir = config.output_dir
    resuming = os.path.isdir(os.path.join(run_dir, BACKUP))
    callbacks = [
        EpochTimer(),
        keras.callbacks.LearningRateScheduler(learning_rate_schedule(config)),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.checkpoint_every:
        callbacks.append(BestCheckpoint(os.path.join(run_dir, CHECKPOINT), resume=resuming,
                                        model=model, every=config.checkpoint_every))
    callbacks.append(HistoryWriter(os.path.join(run_dir, HISTORY), resume=resuming))
    if config.checkpoint_every:
        callbacks.append(PeriodicBackupAndRestore(os.path.join(run_dir, BACKUP),
                                                  every=config.checkpoint_every,
                                                  double_checkpoint=True))
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")))
    return callbacks


class TrainingError(RuntimeError):
    """Training could not finish (the loss diverged)."""


class EpochTimer(keras.callbacks.Callback):
    """Adds to the epoch logs the wall time of each epoch's training phase, `epoch_seconds`, and
    of its validation, `validation_seconds` (0 without validation)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._seconds = None

    def on_test_begin(self, logs=None):
        if self._seconds is None:
            self._seconds = time.perf_counter() - self._start

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        if self._seconds is None:
            self._seconds = elapsed
        if logs is not None:
            logs["epoch_seconds"] = self._seconds
            logs["validation_seconds"] = elapsed - self._seconds


class HistoryWriter(keras.callbacks.Callback):
    """Writes every epoch's logs to a CSV file, rewritten atomically after each epoch.

    Like `keras.callbacks.CSVLogger`, but a crash never leaves a half-written row, and a resumed
    run keeps exactly the rows of the epochs before the one it resumes at: no duplicates.

    Args:
        path: The CSV file.
        resume: Keep the file's rows of the epochs before the first one this `fit` runs.
    """

    def __init__(self, path: str, resume: bool = False):
        super().__init__()
        self.path = path
        self.resume = resume
        self.rows: Optional[list[dict]] = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:
            kept = read_history_rows(self.path) if self.resume and os.path.isfile(self.path) else []
            self.rows = [row for row in kept if int(row["epoch"]) < epoch]

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        columns = ["epoch", *sorted({key for row in self.rows for key in row} - {"epoch"})]
        with atomic_path(self.path) as staging:
            with open(staging, "w", newline="") as file:
                writer = csv.DictWriter(file, columns)
                writer.writeheader()
                writer.writerows(self.rows)


def is_due(epoch: int, every: int, epochs: Optional[int]) -> bool:
    """Whether 0-based `epoch` is one that writes: every `every`-th epoch, and the last."""
    return (epoch + 1) % every == 0 or epoch + 1 == epochs


class PeriodicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that backs up every `every` epochs and after the last.

    A run killed between backups resumes after the last one written, so the epochs since are
    trained again (their `history.csv` rows are replaced).

    Args:
        backup_dir: Where the backup lives (removed when training completes).
        every: Epochs between backups.
        **kwargs: Passed to `BackupAndRestore` (e.g. `double_checkpoint=True`).
    """

    def __init__(self, backup_dir: str, every: int = 1, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        if is_due(epoch, self.every, (self.params or {}).get("epochs")):
            super().on_epoch_end(epoch, logs)


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (with its optimizer) whenever validation accuracy reaches a new best.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, but the `.keras` file is written
    under a temporary name and renamed, so a crash leaves the previous best intact, and the best
    value is carried over from the file's own history when a run resumes.

    Args:
        path: The `.keras` file.
        monitor: The epoch log to maximise.
        resume: Start from the best value in the `history.csv` beside `path` (a resumed run).
        model: The model to save; default: the model being fit.
        every: Consider only every `every`-th epoch and the last (fewer ~190 MB writes).
    """

    def __init__(self, path: str, monitor: str = "val_accuracy", resume: bool = False,
                 model: Optional[keras.Model] = None, every: int = 1):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.resume = resume
        self.saved_model = model
        self.every = every
        self.best = -math.inf

    def on_train_begin(self, logs=None):
        history = os.path.join(os.path.dirname(self.path), HISTORY)
        if self.resume and os.path.isfile(self.path) and os.path.isfile(history):
            self.best = max(read_history(history).get(self.monitor, []), default=-math.inf)

    def on_epoch_end(self, epoch, logs=None):
        if not is_due(epoch, self.every, (self.params or {}).get("epochs")):
            return
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(logs.get("loss", 0.0)) or value <= self.best:
            return
        self.best = value
        with atomic_path(self.path) as staging:
            (self.saved_model or self.model).save(staging)


def read_history_rows(path: str) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def read_history(path: str) -> dict[str, list[float]]:
    """Reads a history CSV into a dict of per-epoch lists (`epoch` as ints)."""
    rows = read_history_rows(path)
    columns = rows[0].keys() if rows else []
    return {name: [int(row[name]) if name == "epoch" else float(row[name]) for row in rows]
            for name in columns}


def write_json(path: str, value) -> None:
    """Writes `value` as JSON through a temporary file renamed into place."""
    with atomic_path(path) as staging:
        with open(staging, "w") as file:
            json.dump(value, file, indent=2)
