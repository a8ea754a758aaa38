"""The errors the package reports to its user: bad input, not bugs.

The command line prints any `KerasAlexNetError` as one `keras-alexnet: error: …` line with exit
status 2; every other exception is a bug and surfaces with its traceback.
"""


class KerasAlexNetError(Exception):
    """Base of the errors caused by what the user gave: config, data, model, image, server."""


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


class RunDirError(KerasAlexNetError, FileNotFoundError):
    """A run directory lacks the files the command needs (it never ran, or did not finish)."""
