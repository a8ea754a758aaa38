"""The errors the package reports to its user: bad input, or a run that cannot finish; not bugs.

The command line prints any `KerasAlexNetError` as one `keras-alexnet: error: …` line and exits
with its `exit_status` (2, bad input, for all but a diverged run's 3), and so a full disk
(`disk_full_reason`); every other exception is a bug and surfaces with its traceback.
"""

from __future__ import annotations

import errno
import os
from typing import Optional

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class KerasAlexNetError(Exception):
    """Base of the errors the package reports in one line: what the user gave was wrong (config,
    data, model, image, server), or training could not finish.

    Attributes:
        exit_status: The command line's exit status for it: 2, bad input, unless a subclass
            says otherwise.
    """

    exit_status = 2


class ConfigError(KerasAlexNetError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class DataError(KerasAlexNetError, ValueError):
    """The data set is missing, corrupt or not CIFAR-10."""


class ModelError(KerasAlexNetError, ValueError):
    """A model path is missing, or holds neither a `.keras` model nor a SavedModel."""


class ExportError(KerasAlexNetError, ValueError):
    """The SavedModel could not be written or found."""


class ImageError(KerasAlexNetError, ValueError):
    """An image to classify is unreadable, of an unsupported format, or too large."""


class ServingError(KerasAlexNetError, RuntimeError):
    """TF Serving could not be reached or answered with an error."""


class TrainingError(KerasAlexNetError, RuntimeError):
    """Training could not finish (the loss diverged, or the export after it failed)."""


class PeerLost(TrainingError):
    """Another process of a multi-host run stopped (it died, or ended with its own error), so
    this one cannot go on (exit status 75: start every process again to resume)."""

    exit_status = 75


class TrainingDiverged(TrainingError):
    """The loss became NaN or infinite (exit status 3: not bad input; try a lower learning
    rate)."""

    exit_status = 3


class TrainingStopped(KerasAlexNetError):
    """Training was stopped on request (SIGTERM, SIGINT) after writing its backup.

    Attributes:
        exit_status: The exit status the command line ends with: 75 after SIGTERM
            (`EX_TEMPFAIL`: try again, it resumes), 130 after SIGINT.
    """

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


class RunDirError(KerasAlexNetError, FileNotFoundError):
    """A run directory lacks the files the command needs (it never ran, or did not finish), or
    one of them is damaged."""


def disk_full_reason(error: BaseException) -> Optional[str]:
    """Why a write failed when the disk, a quota or the file-size limit is full: the system's
    words (`No space left on device`, …) found in `error` or the errors it came from, an
    `OSError`'s errno or a TensorFlow or h5py message; `None` for any other error."""
    reasons = [os.strerror(number) for number in DISK_FULL_ERRNOS]
    while error is not None:
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return os.strerror(error.errno)
        reason = next((reason for reason in reasons if reason in str(error)), None)
        if reason is not None:
            return reason
        error = error.__cause__ or error.__context__
    return None
