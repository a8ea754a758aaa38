"""The callbacks of a training run: timing, learning rate, history, best checkpoint, resume backup.

`build_callbacks(config)` returns them in the order they must run at the end of each epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
import uuid
import zipfile
from typing import Callable, Iterator, Optional

import h5py
import keras

from keras_alexnet.atomic import atomic_path
from keras_alexnet.config import TrainConfig
from keras_alexnet.optimizer import learning_rate_schedule
from keras_alexnet.random_draws import epoch_counter, seed_states, set_counter
from keras_alexnet.run_dir import (
    BACKUP,
    CHECKPOINT,
    HISTORY,
    read_history_rows,
    write_history,
)


def build_callbacks(config: TrainConfig, model: Optional[keras.Model] = None
                    ) -> list[keras.callbacks.Callback]:
    """The run's callbacks, in the order they must run at the end of each epoch.

    `model` is the model `best.keras` holds (default: the one being fit); with on-device
    augmentation it is the network inside the `DeviceAugmentedModel` that `fit` trains.

    On a resumed run (`output_dir/backup` exists) `BackupAndRestore` restores the weights, the
    optimizer state and the epoch; `HistoryWriter` keeps the rows of the completed epochs and
    `BestCheckpoint` the validation accuracy of the epoch `best.keras` holds.
    """
    run_dir = config.output_dir
    resuming = os.path.isdir(os.path.join(run_dir, BACKUP))
    callbacks = [
        EpochTimer(),
        (keras.callbacks.LearningRateScheduler(learning_rate_schedule(config))
         if config.lr_schedule == "step" else LearningRateLogger()),
        keras.callbacks.TerminateOnNaN(),
    ]
    history = HistoryWriter(os.path.join(run_dir, HISTORY), resume=resuming)
    if config.checkpoint_every == 0:
        return [*callbacks, history, *_tensorboard(config)]
    schedule = CheckpointSchedule(config.checkpoint_every)
    return [*callbacks, schedule,
            BestCheckpoint(os.path.join(run_dir, CHECKPOINT), resume=resuming, model=model,
                           schedule=schedule),
            history,
            PeriodicBackupAndRestore(os.path.join(run_dir, BACKUP), schedule),
            *_tensorboard(config)]


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
    order and the input pipeline's augmentation; the passes then count themselves.

    Args:
        next_epoch: The training dataset's pass counter; `None` when the data is not one.
    """

    def __init__(self, next_epoch=None):
        super().__init__()
        self.next_epoch = next_epoch
        self._first = True

    def on_train_begin(self, logs=None):
        self._first = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and self.next_epoch is not None:
            self.next_epoch.assign(epoch)
        self._first = False
        set_counter(seed_states(self.model), epoch_counter(epoch))


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's learning rate at the end of each epoch to the logs, `learning_rate`
    (what `keras.callbacks.LearningRateScheduler` logs for the step schedule)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


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


AUTO_MIN_SECONDS = 60.0  # the least time between two automatic writes
AUTO_WRITE_SHARE = 0.02  # the most of a run's time that automatic writes may take


class CheckpointSchedule(keras.callbacks.Callback):
    """Decides at the end of each epoch whether `best.keras` and the resume backup are written,
    and times the writes.

    With `every` epochs: every `every`-th epoch and the last. With `every=None` (automatic): the
    last epoch, and an epoch that ends at least `min_seconds` after the last write ended (or
    training began) and at least `1 / write_share` times as long after it as that write took,
    so that writing takes at most `write_share` of the time whatever the disk and device: on a
    CPU, where an epoch takes minutes, every epoch writes; on a fast GPU, whose epochs take a
    second, few do. Put it before the callbacks that ask it.

    Args:
        every: Epochs between writes, or `None` for the automatic schedule.
        min_seconds: The automatic schedule's least time between writes.
        write_share: The automatic schedule's most share of the time spent writing.
        clock: The clock the automatic schedule reads, in seconds.

    Attributes:
        due: Whether the epoch that just ended writes.
        write_seconds: Seconds spent writing (`writing()`) since training began.
    """

    def __init__(self, every: Optional[int] = None, min_seconds: float = AUTO_MIN_SECONDS,
                 write_share: float = AUTO_WRITE_SHARE,
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.every = every
        self.min_seconds = min_seconds
        self.write_share = write_share
        self.clock = clock
        self.due = False
        self.write_seconds = 0.0

    def on_train_begin(self, logs=None):
        self.due, self.write_seconds = False, 0.0
        self._last_write_end, self._last_write_seconds = self.clock(), 0.0

    def on_epoch_end(self, epoch, logs=None):
        self.due = self.is_last(epoch) or self._due(epoch)
        if self.due:
            self._last_write_seconds = 0.0

    def _due(self, epoch: int) -> bool:
        if self.every is not None:
            return (epoch + 1) % self.every == 0
        wait = max(self.min_seconds, self._last_write_seconds / self.write_share)
        return self.clock() - self._last_write_end >= wait

    def is_last(self, epoch: int) -> bool:
        """Whether 0-based `epoch` is the last of this `fit`."""
        return epoch + 1 == (self.params or {}).get("epochs")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Times a write made at the end of a due epoch."""
        start = self.clock()
        try:
            yield
        finally:
            self._last_write_end = self.clock()
            self._last_write_seconds += self._last_write_end - start
            self.write_seconds += self._last_write_end - start


BACKUP_EPOCHS = "keras_alexnet_epochs"  # in a backup file: the epochs its weights end


class PeriodicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that backs up at the epochs `schedule` makes due, except
    the last (training then completes and removes the backup), and whose backups survive a kill
    or a full disk at any moment.

    Each backup is one file, `latest.weights.h5`: the weights and optimizer state, with the
    number of epochs they end as an HDF5 attribute (so the two cannot disagree), written and
    flushed to disk under a temporary name, then renamed into place after the one before is
    renamed to `previous.weights.h5`. A resumed run restores the latest backup that loads, and
    says so when it skips one; with none, it starts from epoch 1. A run killed between backups
    resumes after the last one written, so the epochs since are trained again (their
    `history.csv` rows are replaced).

    Args:
        backup_dir: Where the backup lives (removed when training completes).
        schedule: The `CheckpointSchedule`, earlier in the callback list.
    """

    def __init__(self, backup_dir: str, schedule: CheckpointSchedule):
        super().__init__(backup_dir)
        self.schedule = schedule
        self._prev_weights_path = os.path.join(backup_dir, "previous.weights.h5")

    def on_train_begin(self, logs=None):
        found = [path for path in (self._weights_path, self._prev_weights_path)
                 if os.path.isfile(path)]
        if not found:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:  # its variables are loaded too
            optimizer.build(self.model.trainable_variables)
        start = training_state(self.model)
        for path in found:
            try:
                self._restore(path)
                return
            except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
                print(f"keras_alexnet: the backup {path} cannot be read ({type(error).__name__}); "
                      f"it is skipped", file=sys.stderr)
        set_training_state(start)
        print(f"keras_alexnet: no backup in {self.backup_dir} can be read: training starts again "
              f"from epoch 1", file=sys.stderr)

    def _restore(self, path: str) -> None:
        with h5py.File(path, "r") as file:
            epoch = int(file.attrs[BACKUP_EPOCHS])
        self.model.load_weights(path)
        self.model._initial_epoch = epoch  # where BackupAndRestore makes fit resume

    def _save_model(self):
        self.write(self._current_epoch)

    def write(self, epochs: int) -> None:
        """Writes a backup of the model's present state as the end of `epochs` epochs."""
        os.makedirs(self.backup_dir, exist_ok=True)
        staging = os.path.join(self.backup_dir, f".next-{uuid.uuid4().hex[:8]}.weights.h5")
        try:
            self.model.save_weights(staging)
            with h5py.File(staging, "a") as file:
                file.attrs[BACKUP_EPOCHS] = epochs
            with open(staging, "rb+") as file:
                os.fsync(file.fileno())
            if os.path.exists(self._weights_path):
                os.replace(self._weights_path, self._prev_weights_path)
            os.replace(staging, self._weights_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(staging)
            raise

    def on_epoch_end(self, epoch, logs=None):
        if self.schedule.due and not self.schedule.is_last(epoch):
            with self.schedule.writing():
                super().on_epoch_end(epoch, logs)


def training_state(model: keras.Model) -> list:
    """The model's and its optimizer's variables with their values now (host copies)."""
    variables = [*model.variables, *(model.optimizer.variables if model.optimizer else [])]
    return [(variable, keras.ops.convert_to_numpy(variable)) for variable in variables]


def set_training_state(state: list) -> None:
    """Gives each variable of a `training_state` its value there."""
    for variable, value in state:
        variable.assign(value)


BEST_RECORD = "keras_alexnet_best.json"  # inside best.keras: the epoch it holds and its value


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the whole model (with its optimizer) whenever validation accuracy reaches a new best.

    Like `keras.callbacks.ModelCheckpoint(save_best_only=True)`, but the `.keras` file is written
    under a temporary name and renamed, so a crash leaves the previous best intact, and it records
    inside itself (`BEST_RECORD`) the epoch it holds and its value: a resumed run starts from the
    best it saved, not from epochs it logged but never wrote.

    Args:
        path: The `.keras` file.
        monitor: The epoch log to maximise.
        resume: Start from the value recorded in the file at `path` (a resumed run).
        model: The model to save; default: the model being fit.
        schedule: Consider only the epochs this `CheckpointSchedule` (earlier in the callback
            list) makes due (fewer ~190 MB writes); default: every epoch.
    """

    def __init__(self, path: str, monitor: str = "val_accuracy", resume: bool = False,
                 model: Optional[keras.Model] = None,
                 schedule: Optional[CheckpointSchedule] = None):
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.resume = resume
        self.saved_model = model
        self.schedule = schedule
        self.best = -math.inf

    def on_train_begin(self, logs=None):
        record = read_best_record(self.path) if self.resume else {}
        self.best = record.get(self.monitor, -math.inf)

    def on_epoch_end(self, epoch, logs=None):
        if self.schedule is not None and not self.schedule.due:
            return
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(logs.get("loss", 0.0)) or value <= self.best:
            return
        self.best = value
        writing = self.schedule.writing() if self.schedule else contextlib.nullcontext()
        with writing, atomic_path(self.path) as staging:
            (self.saved_model or self.model).save(staging)
            with zipfile.ZipFile(staging, "a") as archive:
                archive.writestr(BEST_RECORD, json.dumps({"epoch": epoch, self.monitor: value}))


def read_best_record(path: str) -> dict:
    """What a `BestCheckpoint` file records: `{"epoch": …, monitor: value}`; `{}` when there is
    no file, or it has no record (written otherwise) or is unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            record = json.loads(archive.read(BEST_RECORD))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    return record if isinstance(record, dict) else {}
