"""The versions of an exported model in TF Serving's layout: `model_dir/<version>/`, each published
by renaming a complete staging directory into place; finding and resolving them."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import time
from typing import Optional

from keras_alexnet.errors import ExportError

STAGING_PREFIX = ".tmp-"  # + host-pid-random: an export being written, renamed when complete


def remove_abandoned_staging(base: str, max_age: Optional[float] = None) -> None:
    """Removes the staging directories under `base` that a killed export left: those of a
    process of this host that no longer runs and, with `max_age`, those of another host (or of
    no process) unchanged for more than `max_age` seconds."""
    for name in os.listdir(base):
        if not name.startswith(STAGING_PREFIX):
            continue
        owner = name[len(STAGING_PREFIX):].rsplit("-", 2)
        ours = len(owner) == 3 and owner[0] == socket.gethostname() and owner[1].isdigit()
        if ours and _process_runs(int(owner[1])):
            continue
        if ours or (max_age is not None and _unchanged_for(os.path.join(base, name)) > max_age):
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _unchanged_for(path: str) -> float:
    """Seconds since `path` last changed (0 when it is gone)."""
    try:
        return time.time() - os.lstat(path).st_mtime
    except FileNotFoundError:
        return 0.0


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def publish(staging: str, base: str, version: Optional[int]) -> str:
    """Renames the written export into its version directory. Without a fixed `version`, a
    number another exporter took meanwhile makes it try the next free one."""
    while True:
        final = os.path.join(base, str(next_version(base) if version is None else version))
        try:
            os.rename(staging, final)
            return final
        except OSError as error:
            if version is not None or error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise


def next_version(model_dir: str) -> int:
    """One more than the highest integer version under `model_dir` (1 when there is none)."""
    return max(existing_versions(model_dir), default=0) + 1


def existing_versions(model_dir: str) -> list[int]:
    """The integer version directories under `model_dir`, ascending."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir)  # "²" is a digit, not an int
                  if name.isascii() and name.isdigit()
                  and os.path.isdir(os.path.join(model_dir, name)))


def resolve_saved_model(path: str) -> str:
    """A SavedModel directory, or the newest version under a model directory."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = existing_versions(path)
    if not versions:
        raise ExportError(f"no SavedModel at {path} (no saved_model.pb and no version directory)")
    return os.path.join(path, str(versions[-1]))
