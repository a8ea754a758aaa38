"""Presets from elsewhere: an `https://` archive checked against its SHA-256 and kept in the
Keras cache, or a Hugging Face or Kaggle handle through their own libraries.

A download ends within `DOWNLOAD_TIMEOUT_SECONDS` in all, whatever the server sends; any
protocol error, or SIGTERM or SIGINT (exit status 75 or 130 from the command line), is one line
and leaves nothing behind. It is written into a `.download-*` directory of the cache, held while
it runs; one left by a killed process is removed by the next download once it is older than the
timeout and no process holds it. An archive is checked before anything is unpacked: its size
unpacked, its number of files, how deep they lie, and that it holds only files and folders.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Iterator, Optional

from keras_alexnet.errors import ModelError
from keras_alexnet.utils.archives import MAX_ARCHIVE_BYTES, unpack
from keras_alexnet.utils.stop_signals import stop_on_signals

try:
    import fcntl
except ImportError:  # Windows: staging is removed by its age alone
    fcntl = None

# The whole download, headers and redirects included: 11 MB (the largest shipped preset) need
# 0.15 Mbit/s, 2 GiB 29 Mbit/s.
DOWNLOAD_TIMEOUT_SECONDS = 600.0
STAGING_PREFIX = ".download-"
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
    hash; a failed or wrong download, or a signal, leaves nothing behind."""
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ModelError(f"preset {url!r}: give its archive's sha256 (64 hex digits), so that "
                         f"what is downloaded is what was published")
    cache = keras_cache_dir("presets")
    target = os.path.join(cache, sha256.lower())
    for path in (cache, target):
        if os.path.lexists(path) and not os.path.isdir(path):
            raise ModelError(f"preset {url!r}: the cache {path} is a file, not a directory; "
                             f"remove it")
    if not os.path.isdir(target):
        try:
            os.makedirs(cache, exist_ok=True)
        except OSError as error:
            raise ModelError(f"preset {url!r}: cannot create the cache {cache}: "
                             f"{error.strerror or error}") from error
        _remove_abandoned_staging(cache)
        with stop_on_signals() as request:
            request.enter(f"while downloading {url!r}",
                          "nothing was kept: the same call downloads it again")
            with _staging(cache) as work:
                _download_into(url, sha256.lower(), work, target)
    return _preset_root(target, url)


def _download_into(url: str, sha256: str, work: str, target: str) -> None:
    """Downloads the archive into `work`, checks it and unpacks it as `target`."""
    archive = os.path.join(work, "archive")
    digest = _fetch(url, archive, DOWNLOAD_TIMEOUT_SECONDS)
    if digest != sha256:
        raise ModelError(f"preset {url!r}: the download's sha256 is {digest}, not {sha256}; "
                         f"nothing was kept")
    unpacked = os.path.join(work, "preset")
    unpack(archive, unpacked, url)
    with contextlib.suppress(OSError):  # another process may have put it there first
        os.replace(unpacked, target)


@contextlib.contextmanager
def _staging(cache: str) -> Iterator[str]:
    """A new `.download-*` directory in `cache`, held for the block and removed after it
    however it ends."""
    work = tempfile.mkdtemp(dir=cache, prefix=STAGING_PREFIX)
    descriptor = _hold(work)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if descriptor is not None:
            os.close(descriptor)


def _remove_abandoned_staging(cache: str) -> None:
    """Removes the `.download-*` directories in `cache` of downloads that were killed: older
    than `DOWNLOAD_TIMEOUT_SECONDS` and held by no process."""
    oldest = time.time() - DOWNLOAD_TIMEOUT_SECONDS
    for name in os.listdir(cache):
        path = os.path.join(cache, name)
        with contextlib.suppress(OSError):  # held by its download, or gone meanwhile
            if name.startswith(STAGING_PREFIX) and os.lstat(path).st_mtime < oldest:
                descriptor = _hold(path)
                shutil.rmtree(path)
                if descriptor is not None:
                    os.close(descriptor)


def _hold(directory: str) -> Optional[int]:
    """A descriptor of `directory` holding its advisory lock (`flock`), which the system
    releases when this process ends however it ends; `None` without `fcntl` (Windows).

    Raises:
        BlockingIOError: Another process holds it.
    """
    if fcntl is None:
        return None
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


class _Deadline:
    """Ends every connection opened through `opener()` once `seconds` have passed since it was
    made: a timer shuts their sockets, which ends any read or write in progress (a per-read
    timeout would let a server send one byte in each for ever)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = threading.Event()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.timer = threading.Timer(seconds, self._shut)
        self.timer.daemon = True
        self.timer.start()

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener for http(s) alone (a redirect to `ftp://` or `file://` is refused),
        honouring the proxy variables, whose connections the deadline ends."""
        opener = urllib.request.OpenerDirector()
        for handler in (urllib.request.ProxyHandler(), _Handler(self),
                        urllib.request.HTTPRedirectHandler(),
                        urllib.request.HTTPDefaultErrorHandler(),
                        urllib.request.HTTPErrorProcessor(), urllib.request.UnknownHandler()):
            opener.add_handler(handler)
        return opener

    def connection(self, kind: type) -> Callable[..., http.client.HTTPConnection]:
        """`kind`'s constructor for urllib, each connection waiting at most until the end."""
        def connect(host: str, **kwargs) -> http.client.HTTPConnection:
            left = max(self.end - time.monotonic(), 0.01)  # 0 would not wait at all
            made = kind(host, **{**kwargs, "timeout": left})
            # Every socket as soon as it connects, before TLS or a proxy's tunnel speak on it
            # (urllib lets go of the connection's own `sock` once the headers came).
            made._create_connection = self._watched
            return made
        return connect

    def _watched(self, *args, **kwargs) -> socket.socket:
        """`socket.create_connection`, keeping a duplicate of the socket for `_shut` (TLS
        takes the socket object over)."""
        connected = socket.create_connection(*args, **kwargs)
        with self.lock:
            self.sockets.append(socket.socket(fileno=os.dup(connected.fileno())))
            if self.expired.is_set():
                self._shut_all()
        return connected

    def cancel(self) -> None:
        """Stops the timer and lets go of the sockets' duplicates."""
        self.timer.cancel()
        with self.lock:
            for kept in self.sockets:
                kept.close()

    def _shut(self) -> None:
        with self.lock:
            self.expired.set()
            self._shut_all()

    def _shut_all(self) -> None:
        for kept in self.sockets:
            with contextlib.suppress(OSError):  # closed already
                kept.shutdown(socket.SHUT_RDWR)


class _Handler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler):
    """urllib's http and https handler, making its connections through a `_Deadline`."""

    def __init__(self, deadline: _Deadline):
        urllib.request.HTTPHandler.__init__(self)
        urllib.request.HTTPSHandler.__init__(self)
        self.deadline = deadline

    def http_open(self, request):
        return self.do_open(self.deadline.connection(http.client.HTTPConnection), request)

    def https_open(self, request):
        return self.do_open(self.deadline.connection(http.client.HTTPSConnection), request,
                            context=self._context)


def _fetch(url: str, path: str, seconds: float) -> str:
    """Writes the bytes at `url` to `path` within `seconds` in all; returns their SHA-256."""
    digest = hashlib.sha256()
    deadline = _Deadline(seconds)
    late = ModelError(f"preset {url!r} was not downloaded within {seconds:g} s; nothing was kept")
    try:
        with deadline.opener().open(url) as response, open(path, "wb") as file:
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
    # ValueError: a bad URL; HTTPException: a bad status line, chunk or header.
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        if deadline.expired.is_set():
            raise late from error
        raise ModelError(f"preset {url!r} could not be downloaded: {_reason(error)}") from error
    finally:
        deadline.cancel()
    if deadline.expired.is_set():  # the shut socket ended a body without a length
        raise late
    if response.length:  # bytes its Content-Length announced that never came
        raise ModelError(f"preset {url!r} could not be downloaded: the server cut it short "
                         f"{response.length:,} bytes before its end")
    return digest.hexdigest()


def _reason(error: Exception) -> str:
    """What went wrong in a download, in one line."""
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        text = str(error.reason)
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:300]


def _preset_root(directory: str, url: str) -> str:
    """The preset inside an unpacked archive: the directory itself, or its one sub-directory."""
    if os.path.isfile(os.path.join(directory, "config.json")):
        return directory
    entries = [os.path.join(directory, name) for name in os.listdir(directory)]
    if len(entries) == 1 and os.path.isfile(os.path.join(entries[0], "config.json")):
        return entries[0]
    raise ModelError(f"preset {url!r}: the archive holds no config.json")
