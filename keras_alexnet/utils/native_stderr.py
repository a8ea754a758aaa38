"""Silencing what TensorFlow's C++ side writes to file descriptor 2 while an operation whose
failure Python reports anyway runs: the command line's errors stay one line."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null inside the block (Python's `sys.stderr` is flushed
    first and restored after, so an exception raised in the block is still reported).

    Example:

    >>> with native_stderr_silenced():
    ...     import tensorflow  # start-up messages of its C++ side go nowhere
    """
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
