"""Atomic file writes: a reader sees the old complete file or the new complete file, never half."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator, Optional


@contextlib.contextmanager
def atomic_path(path: str, previous: Optional[str] = None, fsync: bool = False
                ) -> Iterator[str]:
    """Yields a temporary path beside `path`: renamed onto `path` on success, removed on error.

    The temporary name keeps the file's extensions (`.weights.h5`, `.keras`: Keras and
    matplotlib choose the format by them) and starts with a dot (`.NAME.tmp-…`).

    Args:
        path: The file to write.
        previous: Where the file at `path`, if any, is moved just before the new one takes its
            place (so a reader finds the new file, or the old one under one of the two names).
        fsync: Flush the new file to the disk before it takes `path`'s place, so that a power
            cut cannot leave a renamed but empty file.

    Example:

    >>> import json
    >>> with atomic_path("metrics.json") as staging:
    ...     with open(staging, "w") as file:
    ...         json.dump({"test_accuracy": 0.8}, file)
    >>> json.load(open("metrics.json"))
    {'test_accuracy': 0.8}
    """
    folder, name = os.path.split(path)
    stem, dot, extensions = name.partition(".")
    staging = os.path.join(folder, f".{stem}.tmp-{uuid.uuid4().hex[:8]}{dot}{extensions}")
    try:
        yield staging
        if fsync:
            with open(staging, "rb+") as file:
                os.fsync(file.fileno())
        if previous is not None and os.path.exists(path):
            os.replace(path, previous)
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise
