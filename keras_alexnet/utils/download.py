"""Presets from elsewhere: an `https://` archive checked against its SHA-256 and kept in the
Keras cache, or a Hugging Face or Kaggle handle through their own libraries."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from typing import Optional

from keras_alexnet.errors import ModelError

# The most bytes a preset archive may have, and may unpack to: far above the largest network.
MAX_ARCHIVE_BYTES = 2 * 2 ** 30
DOWNLOAD_TIMEOUT_SECONDS = 60.0
# The library each hub scheme needs, and the function that fetches a handle into a directory.
HUBS = {"hf": ("huggingface_hub", "snapshot_download", "repo_id"),
        "kaggle": ("kagglehub", "model_download", "handle")}


def keras_cache_dir(kind: str) -> str:
    """The package's directory for `kind` (`presets`, `saved_models`) in Keras' cache:
    `$KERAS_HOME/keras_alexnet/KIND`, `~/.keras/keras_alexnet/KIND` by default (also where
    `KERAS_HOME` is empty: not the current directory)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "keras_alexnet", kind)


def preset_source(uri: str, sha256: Optional[str] = None) -> str:
    """The local directory of a preset at `uri`: `https://…` (with `sha256`), `hf://…` or
    `kaggle://…`.

    Raises:
        ModelError: Another scheme, a missing or malformed `sha256`, a download that failed or
            gave other bytes, an archive that is not a preset, or a hub library not installed.
    """
    scheme, _, handle = uri.partition("://")
    if scheme in ("https", "http"):
        return _downloaded(uri, sha256)
    if scheme in HUBS:
        return _from_hub(scheme, handle, uri)
    raise ModelError(f"preset {uri!r}: the schemes are https://, hf:// and kaggle://")


def _from_hub(scheme: str, handle: str, uri: str) -> str:
    package, function, argument = HUBS[scheme]
    try:
        hub = importlib.import_module(package)
    except ImportError as error:
        raise ModelError(f"preset {uri!r} needs {package}: pip install {package}") from error
    try:
        return getattr(hub, function)(**{argument: handle})
    except Exception as error:  # each hub raises its own errors for a missing handle
        raise ModelError(f"preset {uri!r} could not be fetched: "
                         f"{' '.join(str(error).split())[:200]}") from error


def _downloaded(url: str, sha256: Optional[str]) -> str:
    """Downloads and unpacks the archive at `url` once, into a cache directory named by its
    hash; a failed or wrong download leaves nothing behind."""
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ModelError(f"preset {url!r}: give its archive's sha256 (64 hex digits), so that "
                         f"what is downloaded is what was published")
    cache = keras_cache_dir("presets")
    target = os.path.join(cache, sha256.lower())
    if not os.path.isdir(target):
        os.makedirs(cache, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as work:
            archive = os.path.join(work, "archive")
            digest = _fetch(url, archive)
            if digest != sha256.lower():
                raise ModelError(f"preset {url!r}: the download's sha256 is {digest}, not "
                                 f"{sha256.lower()}; nothing was kept")
            unpacked = os.path.join(work, "preset")
            _unpack(archive, unpacked, url)
            with contextlib.suppress(OSError):  # another process may have put it there first
                os.replace(unpacked, target)
    return _preset_root(target, url)


def _fetch(url: str, path: str) -> str:
    """Writes the bytes at `url` to `path`; returns their SHA-256."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, \
                open(path, "wb") as file:
            total = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                total += len(block)
                if total > MAX_ARCHIVE_BYTES:
                    raise ModelError(f"preset {url!r} is larger than "
                                     f"{MAX_ARCHIVE_BYTES // 2 ** 30} GiB")
                digest.update(block)
                file.write(block)
    except ModelError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as error:  # ValueError: a bad URL
        reason = (f"HTTP {error.code} {error.reason}" if isinstance(error, urllib.error.HTTPError)
                  else getattr(error, "reason", None) or error)
        raise ModelError(f"preset {url!r} could not be downloaded: {reason}") from error
    return digest.hexdigest()


def _unpack(archive: str, directory: str, url: str) -> None:
    """Unpacks a `.tar(.gz)` or `.zip` archive into `directory`, refusing members that would
    land outside it or unpack to more than `MAX_ARCHIVE_BYTES`."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as opened:
                members = opened.infolist()
                _check_members([(m.filename, m.file_size) for m in members], url)
                opened.extractall(directory)
        else:
            with tarfile.open(archive) as opened:
                members = opened.getmembers()
                _check_members([(m.name, m.size) for m in members], url)
                opened.extractall(directory, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as error:
        shutil.rmtree(directory, ignore_errors=True)
        raise ModelError(f"preset {url!r} is not a .tar.gz or .zip archive of a preset "
                         f"({error})") from error


def _check_members(members: list[tuple[str, int]], url: str) -> None:
    if sum(size for _, size in members) > MAX_ARCHIVE_BYTES:
        raise ModelError(f"preset {url!r} unpacks to more than "
                         f"{MAX_ARCHIVE_BYTES // 2 ** 30} GiB")
    for name, _ in members:
        if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            raise ModelError(f"preset {url!r} holds a file outside its directory: {name!r}")


def _preset_root(directory: str, url: str) -> str:
    """The preset inside an unpacked archive: the directory itself, or its one sub-directory."""
    if os.path.isfile(os.path.join(directory, "config.json")):
        return directory
    entries = [os.path.join(directory, name) for name in os.listdir(directory)]
    if len(entries) == 1 and os.path.isfile(os.path.join(entries[0], "config.json")):
        return entries[0]
    raise ModelError(f"preset {url!r}: the archive holds no config.json")
