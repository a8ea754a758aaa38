"""The cache of presets' SavedModels in Keras' cache, which nothing but a verified export can fill.

Each export lives in `saved_models/<digest>/` (the digest of what was verified, never a name a
preset claims): `model/1/`, the SavedModel, and `stamp.json`, the digest and the SHA-256 of
every file and folder of `model/`, written last. It is built in a staging directory
(`.tmp-HOST-PID-…`) and published by one rename. Before each use the stamp is checked against
the files there; a damaged export (cut short, another export's variables, a missing file, a
stray version) is exported again, with one warning line. Staging directories a killed process
left are removed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import socket
import stat
import uuid
from typing import Any, Callable, Optional

from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.models.preset_files import file_sha256
from keras_alexnet.run_dir import make_directory
from keras_alexnet.serving.versions import STAGING_PREFIX, remove_abandoned_staging
from keras_alexnet.utils.atomic import atomic_path
from keras_alexnet.utils.bounded_files import read_json_file
from keras_alexnet.utils.download import keras_cache_dir

logger = logging.getLogger(__name__)

MODEL_NAME = "model"
STAMP_FILE = "stamp.json"
# A staging directory of another host unchanged this long is a killed export's.
STALE_STAGING_SECONDS = 3600


def cached_saved_model(digest: str, export: Callable[[str], Any], what: str) -> str:
    """The model directory (`…/<digest>/model`) of the export `export(base)` writes into
    `base/model`: exported when the cache holds none, or a damaged one (said in one warning
    naming `what`), then reused.

    Args:
        digest: The SHA-256 (64 hex digits) of what the export is made from.
        export: Writes the export into `base/model/1`.
        what: What the export is of, for the warning (`preset 'alexnet_fast_cifar10'`).
    """
    root = keras_cache_dir("saved_models")
    make_directory(root, "SavedModel cache")
    remove_abandoned_staging(root, STALE_STAGING_SECONDS)
    entry = os.path.join(root, digest)
    if os.path.lexists(entry):
        problem = damage(entry, digest)
        if problem is None:
            return os.path.join(entry, MODEL_NAME)
        logger.warning("the cached SavedModel of %s is damaged (%s): exporting it again", what,
                       problem)
    staging = _staging_name(root)
    try:
        os.makedirs(staging)
        export(staging)
        with atomic_path(os.path.join(staging, STAMP_FILE)) as path:
            with open(path, "w", encoding="utf-8") as file:
                json.dump({"digest": digest, "files": _listing(staging)}, file, indent=1)
        _publish(staging, entry, root, digest)
    finally:
        _remove(staging)
    return os.path.join(entry, MODEL_NAME)


def damage(entry: str, digest: str) -> Optional[str]:
    """What is wrong with the cached export at `entry` (`None`: it is the one stamped for
    `digest`, every file as written)."""
    try:
        stamp = read_json_file(os.path.join(entry, STAMP_FILE), "its stamp")
    except KerasAlexNetError as error:
        return str(error)
    if not isinstance(stamp, dict) or stamp.get("digest") != digest:
        return "its stamp is another export's"
    if stamp.get("files") != _listing(entry):
        return "its files are not the ones it was exported with"
    return None


def _listing(entry: str) -> dict[str, str]:
    """Every file and folder under `entry/model` by its relative path: a file's SHA-256,
    `"folder"`, or `"other"` (a link, a FIFO, a device: never read)."""
    listing = {}
    top = os.path.join(entry, MODEL_NAME)
    for folder, folders, files in os.walk(top):
        for name in folders + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            listing[os.path.relpath(path, top)] = (
                "folder" if stat.S_ISDIR(mode) else
                file_sha256(path) if stat.S_ISREG(mode) else "other")
    return listing


def _staging_name(root: str) -> str:
    return os.path.join(root, f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-"
                              f"{uuid.uuid4().hex}")


def _publish(staging: str, entry: str, root: str, digest: str) -> None:
    """Renames the complete `staging` to `entry`, the damaged export there (if any) moved aside
    first and removed; a sound one another process published meanwhile is kept instead."""
    aside = _staging_name(root)
    try:
        if os.path.lexists(entry) and damage(entry, digest) is not None:
            os.rename(entry, aside)
        os.rename(staging, entry)
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    finally:
        _remove(aside)


def _remove(path: str) -> None:
    """Removes the folder or file at `path`, if any."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
