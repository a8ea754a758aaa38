"""Old spellings that still work: a run's `config.json` written before two fields took Keras'
names, and the functions renamed when a preset became a trained model."""

from __future__ import annotations

import warnings
from typing import Any

# What the config.json of a run written before fields took Keras' names calls them.
_OLD_NAMES = {"clip_norm": "global_clipnorm"}
_OLD_VALUES = {"jit_compile": {"on": True, "off": False}}


def with_keras_names(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with the old field names and values of `_OLD_NAMES` and `_OLD_VALUES` replaced
    by Keras' (`clip_norm` → `global_clipnorm`, `jit_compile` `"on"` → `True`).

    Example:

    >>> with_keras_names({"clip_norm": 2.0, "jit_compile": "off"})
    {'global_clipnorm': 2.0, 'jit_compile': False}
    """
    renamed = {_OLD_NAMES.get(name, name): value for name, value in values.items()}
    for name, old_values in _OLD_VALUES.items():
        if isinstance(renamed.get(name), str) and renamed[name] in old_values:
            renamed[name] = old_values[renamed[name]]
    return renamed


def warn_renamed(old: str, new: str) -> None:
    """Warns once per call site (a `FutureWarning`, shown by default) that `old` is now
    `new`."""
    warnings.warn(f"{old} is deprecated: use {new}; a preset is now a trained model",
                  FutureWarning, stacklevel=3)
