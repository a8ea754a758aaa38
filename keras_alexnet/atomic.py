"""Atomic file writes: a reader sees the old complete file or the new complete file, never half."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path`: renamed onto `path` on success, removed on error.

    The temporary name keeps the file's extension (Keras and matplotlib choose the format by it)
    and starts with a dot.

    Example:

    >>> with atomic_path("runs/metrics.json") as staging:
    ...     with open(staging, "w") as file:
    ...         file.write("{}")
    """
    folder, name = os.path.split(path)
    stem, extension = os.path.splitext(name)
    staging = os.path.join(folder, f".{stem}.tmp-{uuid.uuid4().hex[:8]}{extension}")
    try:
        yield staging
        os.replace(staging, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        raise
