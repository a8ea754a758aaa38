"""The run directory: its file names, and reading and writing `history.csv`, `metrics.json` and
`config.json`. Every write goes through a temporary file renamed into place."""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Any

from keras_alexnet.atomic import atomic_path
from keras_alexnet.config import TrainConfig
from keras_alexnet.errors import ConfigError, RunDirError

CHECKPOINT = "best.keras"
FINAL_MODEL = "final.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
CONFIG = "config.json"
BACKUP = "backup"


def read_history_rows(path: str) -> list[dict[str, str]]:
    """The rows of a history CSV as they are written (strings); `RunDirError` naming the line
    when one is cut short or not numbers (a file damaged outside this package, whose writes are
    atomic)."""
    with open(path, newline="") as file:
        text = file.read()
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


def check_resumable(config: TrainConfig) -> None:
    """Raises `ConfigError` when `config.output_dir` holds an interrupted run (a backup) that
    `config` would not continue: one that trains something else. Nothing is written or removed."""
    run_dir = config.output_dir
    if not os.path.isdir(os.path.join(run_dir, BACKUP)):
        return
    try:
        saved = read_json(os.path.join(run_dir, CONFIG))
    except (OSError, ValueError):
        saved = None
    differences = (config.training_differences(saved) if isinstance(saved, dict)
                   else ["its config.json is unreadable"])
    if differences:
        shown = ", ".join(differences[:3]) + (", …" if len(differences) > 3 else "")
        raise ConfigError(f"{run_dir} holds an interrupted run of another config ({shown}); "
                          f"continue it with --resume {run_dir}, or give this run another "
                          f"--output-dir")
