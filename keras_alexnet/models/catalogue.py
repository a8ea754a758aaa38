"""The presets that ship inside the package, read without importing Keras (so the command line
can check a preset's name before TensorFlow or JAX is imported)."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "pretrained")
# What `predict` uses when no model is named: the most accurate shipped preset.
DEFAULT_PRESET = "alexnet_long_cifar10"
HUB_SCHEMES = ("hf://", "kaggle://")


@functools.lru_cache(maxsize=None)
def shipped_presets() -> dict[str, dict[str, Any]]:
    """The presets in the package: each name with its `metadata.json` (description, parameter
    count, test accuracies, and what produced it).

    Example:

    >>> sorted(shipped_presets())
    ['alexnet_fast_cifar10', 'alexnet_long_cifar10']
    """
    if not os.path.isdir(SHIPPED_DIR):
        return {}
    found = {}
    for name in sorted(os.listdir(SHIPPED_DIR)):
        path = os.path.join(SHIPPED_DIR, name, METADATA_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                found[name] = json.load(file)
    return found


def is_preset(model: str) -> bool:
    """Whether a command line's MODEL names a preset: a shipped one, a hub handle, or a
    directory holding a preset's `config.json` and `metadata.json` (of any kind: reading them
    refuses what is not a regular file)."""
    return (model in shipped_presets() or model.startswith(HUB_SCHEMES)
            or all(os.path.lexists(os.path.join(model, name))
                   for name in (CONFIG_FILE, METADATA_FILE)))
