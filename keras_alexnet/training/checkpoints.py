"""What a run writes to survive: `best.keras` (`BestCheckpoint`) and the resume backup
(`ResumeBackup`), both on the schedule `CheckpointSchedule` keeps, and written atomically."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import zipfile
from typing import Callable, Iterator, Optional, Sequence

import h5py
import keras

from keras_alexnet.training.multi_host import host_side
from keras_alexnet.utils.atomic import atomic_path

logger = logging.getLogger(__name__)

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


class ResumeBackup(keras.callbacks.Callback):
    """Backs up the weights and optimizer state at the epochs `schedule` makes due (the last
    always), so that a killed run resumes: `restore()` before `fit`, then
    `fit(initial_epoch=…)` with what it returns. The last epoch's backup is the trained state a
    run stopped after `fit` (in its test or export) finishes from; the run removes it when it
    completes (`run_dir.remove_backup`). Like
    `keras.callbacks.BackupAndRestore`, with public Keras API only, and backups that survive a
    kill or a full disk at any moment.

    Each backup is one file, `latest.weights.h5`: the weights and optimizer state, with the
    number of epochs they end as an HDF5 attribute (so the two cannot disagree), written and
    flushed to disk under a temporary name, then renamed into place after the one before is
    renamed to `previous.weights.h5` (`atomic.atomic_path`). `restore` loads the latest backup
    that loads, and says so when it skips one; with none, the run starts from epoch 1. A run
    killed between backups resumes after the last one written, so the epochs since are trained
    again (their `history.csv` rows are replaced).

    Args:
        backup_dir: Where the backup lives.
        schedule: The `CheckpointSchedule`, earlier in the callback list.
        writes: Write backups; `False` only restores (the other processes of a
            multi-host run, from process 0's backup: `multi_host.shared_run_files`).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> x, y = np.zeros((8, 4)), np.zeros(8)
    >>> backup = ResumeBackup("run/backup", CheckpointSchedule(every=1))
    >>> history = model.fit(x, y, epochs=3, initial_epoch=backup.restore(model),
    ...                     callbacks=[backup.schedule, backup], verbose=0)
    >>> history.epoch                               # a killed run restarts where it stopped
    [0, 1, 2]
    """

    def __init__(self, backup_dir: str, schedule: CheckpointSchedule, writes: bool = True):
        super().__init__()
        self.backup_dir = backup_dir
        self.schedule = schedule
        self.writes = writes
        self.latest = os.path.join(backup_dir, "latest.weights.h5")
        self.previous = os.path.join(backup_dir, "previous.weights.h5")

    def restore(self, model: keras.Model) -> int:
        """Loads the latest readable backup into `model` (compiled: its optimizer state too);
        returns the epochs it ends, where `fit` resumes (0 without one)."""
        found = [path for path in (self.latest, self.previous) if os.path.isfile(path)]
        if not found:
            return 0
        if model.optimizer is not None and not model.optimizer.built:  # its state is loaded too
            model.optimizer.build(model.trainable_variables)
        start = training_state(model)
        for path in found:
            try:
                with h5py.File(path, "r") as file:
                    epochs = int(file.attrs[BACKUP_EPOCHS])
                model.load_weights(path)
                return epochs
            except (OSError, ValueError, KeyError, RuntimeError, TypeError) as error:
                set_training_state(start)
                logger.warning("the backup %s cannot be read (%s); it is skipped", path,
                               type(error).__name__)
        logger.warning("no backup in %s can be read: training starts again from epoch 1",
                       self.backup_dir)
        return 0

    def write(self, epochs: int) -> None:
        """Writes a backup of the model's present state as the end of `epochs` epochs."""
        os.makedirs(self.backup_dir, exist_ok=True)
        with atomic_path(self.latest, previous=self.previous, fsync=True) as staging, host_side():
            self.model.save_weights(staging)
            with h5py.File(staging, "a") as file:
                file.attrs[BACKUP_EPOCHS] = epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.writes and self.schedule.due:
            with self.schedule.writing():
                self.write(epoch + 1)


def find_resume_backup(callbacks: Sequence[keras.callbacks.Callback]) -> Optional[ResumeBackup]:
    """The `ResumeBackup` among `callbacks`; `None` when the run keeps none."""
    return next((callback for callback in callbacks if isinstance(callback, ResumeBackup)), None)


def resume_epoch(model: keras.Model, callbacks: Sequence[keras.callbacks.Callback]) -> int:
    """Restores `model` from the backup of the `ResumeBackup` among `callbacks`, if there is one;
    returns the epoch `fit(initial_epoch=…)` resumes at (0 without a backup)."""
    backup = find_resume_backup(callbacks)
    return backup.restore(model) if backup is not None else 0


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
        with writing, atomic_path(self.path) as staging, host_side():
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
