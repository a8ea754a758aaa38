"""The run directory: its file names; reading and writing `history.csv`, `metrics.json` and
`config.json` (every write through a temporary file renamed into place); one run at a time in
it (`run_lock`), only the run its config continues (`check_run_dir`), and what a diverged run
keeps (`stop_if_diverged`)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
from typing import Any, Iterator, Optional, Sequence

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.errors import ConfigError, RunDirError, TrainingDiverged
from keras_alexnet.utils.atomic import atomic_path
from keras_alexnet.utils.bounded_files import read_text_file

CHECKPOINT = "best.keras"
FINAL_MODEL = "final.keras"
CLASS_NAMES_FILE = "class_names.txt"  # the run's classes, one a line, in label order
HISTORY = "history.csv"
METRICS = "metrics.json"
CONFIG = "config.json"
BACKUP = "backup"
LOCK = ".lock"
# What the other processes of a multi-host run read of a resumed run (`multi_host.shared_run_files`)
RESUME_FILES = (HISTORY, os.path.join(BACKUP, "latest.weights.h5"),
                os.path.join(BACKUP, "previous.weights.h5"))


def read_history_rows(path: str) -> list[dict[str, str]]:
    """The rows of a history CSV as they are written (strings); `RunDirError` naming the line
    when one is cut short or not numbers (a file damaged outside this package, whose writes are
    atomic)."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            text = file.read()
    except UnicodeDecodeError as error:
        raise RunDirError(f"{path} is not UTF-8 text (byte {error.start})") from error
    rows = list(csv.DictReader(io.StringIO(text)))
    for line, row in enumerate(rows, start=2):
        if not _is_numeric_row(row) or (line == len(rows) + 1 and not text.endswith("\n")):
            raise RunDirError(f"{path}, line {line}, is cut short or not numbers; restore the file "
                              f"or delete that line and the ones after it")
    return rows


def _is_numeric_row(row: dict) -> bool:
    if None in row:  # more values than columns
        return False
    try:
        for value in row.values():
            float(value)
    except (TypeError, ValueError):  # fewer values than columns, or not a number
        return False
    return True


def read_history(path: str) -> dict[str, list[float]]:
    """Reads a history CSV into a dict of per-epoch lists (`epoch` as ints)."""
    rows = read_history_rows(path)
    columns = rows[0].keys() if rows else []
    return {name: [int(row[name]) if name == "epoch" else float(row[name]) for row in rows]
            for name in columns}


def write_history(path: str, rows: list[dict[str, Any]]) -> None:
    """Writes per-epoch rows (each with an `epoch`) as CSV, columns `epoch` then sorted."""
    columns = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
    with atomic_path(path) as staging:
        with open(staging, "w", newline="") as file:
            writer = csv.DictWriter(file, columns)
            writer.writeheader()
            writer.writerows(rows)


def read_json(path: str) -> Any:
    """The JSON value in `path`."""
    with open(path) as file:
        return json.load(file)


def write_json(path: str, value: Any) -> None:
    """Writes `value` as JSON through a temporary file renamed into place."""
    with atomic_path(path) as staging:
        with open(staging, "w") as file:
            json.dump(value, file, indent=2)


def read_class_names(path: str, what: Optional[str] = None) -> tuple[str, ...]:
    """The class names in a `class_names.txt` file, one a line; `ModelError` in one line,
    naming the file as `what`, when it is not a regular UTF-8 file of at most 1 MiB
    (`bounded_files.read_text_file`: a FIFO, a device or a huge file is never read whole)."""
    names = read_text_file(path, what or f"the class names file {path}").split("\n")
    return tuple(names[:-1] if names[-1] == "" else names)


def class_names_in(path: Optional[str]) -> tuple[str, ...]:
    """The class names in the `class_names.txt` file at `path`, or CIFAR-10's where there is
    none (a run or an export made before the file was written, or no path)."""
    return read_class_names(path) if path and os.path.lexists(path) else CLASS_NAMES


def write_class_names(path: str, class_names: Sequence[str]) -> None:
    """Writes `class_names` one a line through a temporary file renamed into place."""
    with atomic_path(path) as staging:
        with open(staging, "w", encoding="utf-8") as file:
            file.writelines(f"{name}\n" for name in class_names)


def check_run_dir(config: TrainConfig) -> None:
    """Raises `ConfigError` when `config.output_dir` holds a run that `config` would not
    continue, one that trains something else: interrupted (a backup), or finished or stopped
    before its first backup, unless `config.overwrite`, which then removes that run's files;
    `RunDirError` when its `backup` is a link or a file, or the `history.csv` of the run it
    would resume has a damaged line. Call it holding the directory (`run_lock`); nothing is
    written or removed otherwise."""
    run_dir = config.output_dir
    backup = os.path.join(run_dir, BACKUP)
    if os.path.islink(backup) or (os.path.exists(backup) and not os.path.isdir(backup)):
        raise RunDirError(f"{backup} is not a directory of its own (a link or a file); a run "
                          f"keeps its backups there: remove it and run again")
    if not os.path.isfile(os.path.join(run_dir, CONFIG)):
        return
    if config.overwrite:
        remove_run(run_dir)
        return
    try:
        saved = read_json(os.path.join(run_dir, CONFIG))
    except (OSError, ValueError):
        saved = None
    differences = (config.training_differences(saved) if isinstance(saved, dict)
                   else ["its config.json is unreadable"])
    if not differences:
        if os.path.isdir(backup) and os.path.isfile(os.path.join(run_dir, HISTORY)):
            read_history_rows(os.path.join(run_dir, HISTORY))  # a damaged line, named now
        return
    shown = ", ".join(differences[:3]) + (", …" if len(differences) > 3 else "")
    if os.path.isdir(backup):
        raise ConfigError(f"{run_dir} holds an interrupted run of another config ({shown}); "
                          f"continue it with --resume {run_dir}, or give this run another "
                          f"--output-dir (or --overwrite it)")
    raise ConfigError(f"{run_dir} holds a run of another config ({shown}); give this run another "
                      f"--output-dir, or --overwrite that run")


def remove_backup(run_dir: str) -> None:
    """Removes a run's resume backup: the run completed, or resuming it would not help."""
    shutil.rmtree(os.path.join(run_dir, BACKUP), ignore_errors=True)


def remove_run(run_dir: str) -> None:
    """Removes a run's files from `run_dir`: its backup, checkpoints, history, metrics and
    config (figures are replaced as the next run draws them)."""
    remove_backup(run_dir)
    for name in (CHECKPOINT, FINAL_MODEL, HISTORY, METRICS, CONFIG, CLASS_NAMES_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run_dir, name))


@contextlib.contextmanager
def run_lock(run_dir: str) -> Iterator[None]:
    """Holds `run_dir` for this process: creates it (removed again if the block raises while it
    is empty), and refuses with `RunDirError` naming the holder while another process holds it.
    The hold is an advisory lock on `run_dir/.lock` (`fcntl.flock`), which the system releases
    when its process ends however it ends, so a killed run never blocks the next. Staging files
    a killed writer left are removed.

    Example:

    >>> with run_lock("runs/alexnet_cifar10"):
    ...     pass  # train into it
    """
    with new_directory(run_dir, "run directory"):
        if fcntl is None:  # not a POSIX system: no lock
            yield
            return
        path = os.path.join(run_dir, LOCK)
        descriptor = _locked(path, run_dir)
        try:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"process {os.getpid()} on {socket.gethostname()}, started "
                                 f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}".encode())
            remove_staging(run_dir)
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            os.close(descriptor)  # releases the lock


def make_directory(path: str, role: str) -> None:
    """Creates directory `path` (with its parents) unless it exists; `RunDirError` in one line,
    naming it by `role` ("run directory", …), when it cannot be: a file is there, or a parent
    cannot be written."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"the {role} {path} is a file, not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise RunDirError(f"cannot create the {role} {path}: {error.strerror or error}") from error


@contextlib.contextmanager
def new_directory(path: str, role: str) -> Iterator[None]:
    """`make_directory(path, role)` for the block; when the block raises, the directories it
    created that are still empty are removed again (bad input leaves nothing behind)."""
    created = _missing_directories(path)
    make_directory(path, role)
    try:
        yield
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        raise


def check_directory(path: str, role: str) -> None:
    """Whether directory `path` can be made and written into: `RunDirError` as
    `make_directory`, or when it is read-only, without leaving anything."""
    created = _missing_directories(path)
    make_directory(path, role)
    try:
        # A file without a name (O_TMPFILE where the system has it): a kill leaves nothing.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise RunDirError(f"cannot write into the {role} {path}: "
                          f"{error.strerror or error}") from error
    finally:
        for folder in created:
            os.rmdir(folder)


def check_output_file(path: str, role: str) -> None:
    """Whether file `path` can be written (`atomic_path`): `RunDirError` in one line, naming it
    by `role` ("LiteRT file", …), when a directory is there or its folder cannot be made or
    written into (a file, read-only, under `/proc`); nothing is left."""
    if os.path.isdir(path):
        raise RunDirError(f"the {role} {path} is a directory, not a file")
    check_directory(os.path.dirname(os.path.abspath(path)), f"folder of the {role}")


def _missing_directories(path: str) -> list[str]:
    """`path` and its parents up to the first that exists, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _locked(path: str, run_dir: str) -> int:
    """A descriptor of `path` holding its exclusive lock; `RunDirError` when another process
    holds it."""
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunDirError(f"cannot write into the run directory {run_dir}: "
                              f"{error.strerror or error}") from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 200).decode(errors="replace").strip()
            os.close(descriptor)
            raise RunDirError(f"{run_dir} is in use by another run ({holder or 'starting'}); wait "
                              f"for it to end, or give this run another --output-dir") from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        os.close(descriptor)  # the holder removed the file as it ended: lock the new one


def remove_staging(run_dir: str) -> None:
    """Removes the staging files (`atomic.atomic_path`'s `.NAME.tmp-…`) that a writer killed
    midway left in `run_dir` and its backup; call it holding the directory, when no other
    process writes there."""
    backup = os.path.join(run_dir, BACKUP)
    for folder in (run_dir, backup):
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in names:
            if name.startswith(".") and ".tmp-" in name:
                path = os.path.join(folder, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)


def stop_if_diverged(history: dict[str, list[float]], run_dir: str) -> None:
    """Raises `TrainingDiverged` when the last epoch's loss is NaN or infinite, keeping the best
    checkpoint and removing the backup (resuming from it would only diverge again)."""
    if math.isfinite(history["loss"][-1]):
        return
    remove_backup(run_dir)
    best = os.path.join(run_dir, CHECKPOINT)
    kept = (f"the last good checkpoint is {best}" if os.path.isfile(best)
            else "no checkpoint was saved")
    raise TrainingDiverged(f"the loss became NaN or infinite in epoch {len(history['loss'])}; "
                        f"training stopped and {kept} (try a lower learning rate)")
