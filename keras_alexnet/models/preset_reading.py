"""A preset's files read and checked before anything is built from them: each from a regular
file and bounded in size (and its JSON in depth), its values of the right types, its weights the
ones its metadata names; and the preset's identity, the digest of what was verified."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import Any, Optional

from keras_alexnet.errors import ModelError
from keras_alexnet.models.catalogue import CONFIG_FILE, METADATA_FILE, WEIGHTS_FILE
from keras_alexnet.models.footprint import MAX_NETWORK_BYTES
from keras_alexnet.utils.bounded_files import (
    MAX_JSON_BYTES,
    copy_bounded,
    open_bounded,
    parse_json,
    read_text_file,
)

SHA256_DIGITS = re.compile("[0-9a-fA-F]{64}")


@dataclasses.dataclass(frozen=True)
class PresetFiles:
    """A preset's files as read and checked by `read_preset`: what its network is built from.

    Attributes:
        preset: The preset as its user named it (for messages).
        directory: Where its files are.
        config: Its `config.json`.
        class_names: Its metadata's class names, one a line each; `None` where it has none.
        digest: The SHA-256 of what was verified (the weights as read, `config.json`, the class
            names), together: the preset's identity, which nothing it claims can choose.
    """

    preset: str
    directory: str
    config: dict[str, Any]
    class_names: Optional[tuple[str, ...]]
    digest: str


def read_preset(directory: str, preset: str) -> PresetFiles:
    """A preset's files read and checked, before anything is built: its JSON files from regular
    files, bounded in size and depth (`utils.bounded_files`), their values of the right types,
    and its weights file against the SHA-256 its metadata claims.

    Raises:
        ModelError: A missing, damaged or oversized file, a value of the wrong type, or weights
            that are not the ones the metadata names.
    """
    config_text = _read_preset_text(directory, CONFIG_FILE, preset, MAX_JSON_BYTES)
    config = _json_object(config_text, CONFIG_FILE, preset)
    _check_config(config, preset)
    metadata = read_preset_json(directory, METADATA_FILE, preset)
    class_names = _class_names(metadata, preset)
    claimed = metadata.get("weights_sha256")
    if not isinstance(claimed, str) or not SHA256_DIGITS.fullmatch(claimed):
        raise ModelError(f"preset {preset!r}: the weights_sha256 in its {METADATA_FILE} is not "
                         f"64 hexadecimal digits")
    weights = _weights_sha256(directory, preset)
    if weights != claimed.lower():
        raise ModelError(f"preset {preset!r}: {WEIGHTS_FILE} does not match the sha256 in its "
                         f"{METADATA_FILE}: it is damaged or was changed")
    verified = json.dumps([weights, hashlib.sha256(config_text.encode()).hexdigest(),
                           class_names])
    return PresetFiles(preset, directory, config, class_names,
                       hashlib.sha256(verified.encode()).hexdigest())


def read_preset_json(directory: str, name: str, preset: str) -> dict[str, Any]:
    """One of a preset's JSON files, as a dict, read as `read_preset` reads them."""
    return _json_object(_read_preset_text(directory, name, preset, MAX_JSON_BYTES), name, preset)


def _read_preset_text(directory: str, name: str, preset: str, max_bytes: int) -> str:
    path = os.path.join(directory, name)
    if not os.path.lexists(path):
        raise ModelError(f"preset {preset!r} has no {name}")
    return read_text_file(path, f"preset {preset!r}: its {name}", max_bytes)


def _json_object(text: str, name: str, preset: str) -> dict[str, Any]:
    values = parse_json(text, f"preset {preset!r}: its {name}")
    if not isinstance(values, dict):
        raise ModelError(f"preset {preset!r}: {name} does not hold a JSON object")
    return values


def _check_config(config: dict[str, Any], preset: str) -> None:
    """`ModelError` unless `config.json` names its class and holds its arguments as an object,
    with a dtype given by name."""
    values = config.get("config")
    problem = (
        "its \"registered_name\" is not a string"
        if not isinstance(config.get("registered_name"), str) else
        "its \"config\" is not a JSON object" if not isinstance(values, dict) else
        "its \"dtype\" is not a dtype's name"
        if not isinstance(values.get("dtype"), (str, type(None))) else None)
    if problem:
        raise ModelError(f"preset {preset!r}: {CONFIG_FILE}: {problem}")


def _class_names(metadata: dict[str, Any], preset: str) -> Optional[tuple[str, ...]]:
    """The class names in a preset's metadata (`None` without any), each checked to be one
    non-empty line of text."""
    names = metadata.get("class_names")
    if names is None:
        return None
    if not isinstance(names, list) or not all(
            isinstance(name, str) and name.splitlines() == [name] for name in names):
        raise ModelError(f"preset {preset!r}: the class_names in its {METADATA_FILE} are not a "
                         f"list of names of one line each")
    return tuple(names)


def _weights_sha256(directory: str, preset: str) -> str:
    """The SHA-256 of a preset's weights file, read from a regular file of at most
    `MAX_NETWORK_BYTES` (no network allowed takes more)."""
    path = os.path.join(directory, WEIGHTS_FILE)
    if not os.path.lexists(path):
        raise ModelError(f"preset {preset!r} has no {WEIGHTS_FILE}")
    digest = hashlib.sha256()
    with open_bounded(path, f"preset {preset!r}: its {WEIGHTS_FILE}", MAX_NETWORK_BYTES) as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_preset(directory: str, target: str, preset: str) -> str:
    """Copies a preset's three files into the directory `target` (from regular files, each
    bounded as `read_preset` bounds it), so that what is read there cannot change meanwhile;
    returns `target`."""
    for name, max_bytes in ((CONFIG_FILE, MAX_JSON_BYTES), (METADATA_FILE, MAX_JSON_BYTES),
                            (WEIGHTS_FILE, MAX_NETWORK_BYTES)):
        source = os.path.join(directory, name)
        if not os.path.lexists(source):
            raise ModelError(f"preset {preset!r} has no {name}")
        copy_bounded(source, os.path.join(target, name), f"preset {preset!r}: its {name}",
                     max_bytes)
    return target
