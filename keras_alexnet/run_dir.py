"""The run directory: its file names, and reading and writing `history.csv`, `metrics.json` and
`config.json`. Every write goes through a temporary file renamed into place."""

from __future__ import annotations

import csv
import json
from typing import Any

from keras_alexnet.atomic import atomic_path

CHECKPOINT = "best.keras"
FINAL_MODEL = "final.keras"
HISTORY = "history.csv"
METRICS = "metrics.json"
CONFIG = "config.json"
BACKUP = "backup"


def read_history_rows(path: str) -> list[dict[str, str]]:
    """The rows of a history CSV as they are written (strings)."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


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
