"""The callbacks of a training run: timing, learning rate, history, and (from `checkpoints`) the
best checkpoint and the resume backup.

`build_callbacks(config)` returns them in the order they must run at the end of each epoch.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import keras
import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.run_dir import (
    BACKUP,
    CHECKPOINT,
    HISTORY,
    read_history_rows,
    write_history,
)
from keras_alexnet.training.checkpoints import (
    BestCheckpoint,
    CheckpointSchedule,
    ResumeBackup,
)
from keras_alexnet.training.optimizer import learning_rate_schedule
from keras_alexnet.utils.random_draws import epoch_counter, seed_states, set_counter

PLATEAU_MAX_DROPS = 3  # the paper divided its learning rate by 10 three times


def build_callbacks(config: TrainConfig, model: Optional[keras.Model] = None,
                    writes: bool = True) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in the order they must run at the end of each epoch.

    `model` is the model `best.keras` holds (default: the one being fit); with on-device
    augmentation it is the network inside the `DeviceAugmentedModel` that `fit` trains.
    Without `writes` (the other processes of a multi-host run), only those that set the
    learning rate and stop a diverged run, and a `ResumeBackup` that only restores.

    On a resumed run (`output_dir/backup` exists) `checkpoints.resume_epoch` restores the weights
    and the optimizer state, and `fit` starts at the epoch it returns; `HistoryWriter` keeps the
    rows of the completed epochs and `BestCheckpoint` the validation accuracy of the epoch
    `best.keras` holds.
    """
    run_dir = config.output_dir
    resuming = os.path.isdir(os.path.join(run_dir, BACKUP))
    history_path = os.path.join(run_dir, HISTORY)
    callbacks = [EpochTimer(), _learning_rate_callback(config, history_path, resuming),
                 keras.callbacks.TerminateOnNaN()]
    history = HistoryWriter(history_path, resume=resuming)
    if config.checkpoint_every == 0:
        return [*callbacks, history, *_tensorboard(config)] if writes else callbacks
    schedule = CheckpointSchedule(config.checkpoint_every)
    if not writes:
        return [*callbacks, ResumeBackup(os.path.join(run_dir, BACKUP), schedule, writes=False)]
    return [*callbacks, schedule,
            BestCheckpoint(os.path.join(run_dir, CHECKPOINT), resume=resuming, model=model,
                           schedule=schedule),
            history,
            ResumeBackup(os.path.join(run_dir, BACKUP), schedule),
            *_tensorboard(config)]


def _learning_rate_callback(config: TrainConfig, history_path: str,
                            resuming: bool) -> keras.callbacks.Callback:
    """The callback that sets (step, plateau) or logs (per-step schedules) the learning rate."""
    if config.lr_schedule == "step":
        return keras.callbacks.LearningRateScheduler(learning_rate_schedule(config))
    if config.lr_schedule == "plateau":
        lowest = config.scaled_learning_rate * config.lr_decay_factor ** PLATEAU_MAX_DROPS
        return ResumedReduceLROnPlateau(
            history_path if resuming else None, monitor="val_accuracy", mode="max",
            factor=config.lr_decay_factor, patience=config.lr_patience, min_lr=lowest)
    return LearningRateLogger()


def _tensorboard(config: TrainConfig) -> list[keras.callbacks.Callback]:
    if not config.tensorboard:
        return []
    return [keras.callbacks.TensorBoard(os.path.join(config.output_dir, "logs"))]


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


class EpochKeyedDraws(keras.callbacks.Callback):
    """Keys every random draw of an epoch to the epoch, so a resumed run draws what an
    uninterrupted one did.

    At the start of each epoch `e`, sets the counter of every seed generator in the model being
    fit (dropout, and augmentation run on the device) to `e`'s own (`random_draws`). When the
    first epoch of this `fit` begins (a resumed run's is not 0) it also sets `next_epoch`, the
    counter of the training dataset's passes (`data.train_dataset`), which keys the shuffle
    order and the input pipeline's augmentation (or `data.device_pipeline.IndexBatches`'
    order); the passes then count themselves. When `fit` shuffles arrays itself (the on-device
    path: image indices), Keras draws each epoch's order from NumPy's global generator on the
    JAX backend: with a `seed`, that generator is seeded from `(seed, e)` as epoch `e` begins.

    Args:
        next_epoch: The training dataset's pass counter; `None` when the data is not one.
        seed: The run's seed, which keys the order `fit` shuffles arrays in; `None` leaves
            NumPy's generator alone.
    """

    def __init__(self, next_epoch=None, seed: Optional[int] = None):
        super().__init__()
        self.next_epoch = next_epoch
        self.seed = seed
        self._first = True

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and self.next_epoch is not None:
            self.next_epoch.assign(epoch)
        self._first = False
        set_counter(seed_states(self.model), epoch_counter(epoch))
        if self.seed is not None:
            np.random.seed(np.random.SeedSequence([self.seed, epoch]).generate_state(1)[0])


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's learning rate at the end of each epoch to the logs, `learning_rate`
    (what `keras.callbacks.LearningRateScheduler` logs for the step schedule)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class ResumedReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """`keras.callbacks.ReduceLROnPlateau` that a resumed run continues where the interrupted
    one left it: its best value and epochs without improvement are counted again from the
    `history` rows of the epochs before the first one this `fit` runs (the learning rate itself
    is restored with the optimizer state).

    Args:
        history: The run's `history.csv` to count from, or `None` (a fresh run).
        **kwargs: `ReduceLROnPlateau`'s arguments; `mode` must be `"min"` or `"max"`.
    """

    def __init__(self, history: Optional[str] = None, **kwargs):
        super().__init__(**kwargs)
        self.history = history
        self._replayed = False

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._replayed = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._replayed:
            return
        self._replayed = True
        if self.history is None or not os.path.isfile(self.history):
            return
        for row in read_history_rows(self.history):
            if int(row["epoch"]) < epoch:
                self._count(float(row[self.monitor]), float(row["learning_rate"]))

    def _count(self, value: float, learning_rate: float) -> None:
        """What `on_epoch_end` counts for an epoch's `value` trained at `learning_rate`, without
        touching the optimizer (the count restarts where it lowered the rate)."""
        if self.best is None or self._improves(value, self.best):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience and learning_rate > np.float32(self.min_lr):
            self.wait = 0

    def _improves(self, value: float, best: float) -> bool:
        """Keras' rule for `mode="min"` or `"max"`: better than `best` by more than
        `min_delta` (whose sign Keras flips in place for `"min"`)."""
        delta = abs(self.min_delta)
        return value < best - delta if self.mode == "min" else value > best + delta


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
        write_history(self.path, self.rows)
