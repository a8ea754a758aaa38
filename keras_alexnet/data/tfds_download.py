"""Downloading a tensorflow-datasets set once, in bounded time and whole or not at all.

Without a network, tfds retries every download with back-off for minutes and leaves its partial
files behind (`downloads/…tmp…`, an empty dataset folder). `prepare_tfds` first tries to reach
the hosts the set downloads from (`DOWNLOAD_PROBE_SECONDS` each), and refuses in one line when
one cannot be reached; if the download or preparation fails later, everything it added to the
data directory is removed again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import urllib.parse
from typing import Iterable, Iterator, Optional

from keras_alexnet.errors import DataError

DOWNLOAD_PROBE_SECONDS = 10.0
_SNAPSHOT_DEPTH = 3  # root/downloads/<set>/<file>.tmp.<id>: where tfds writes while it downloads


def prepare_tfds(name: str, data_dir: Optional[str] = None) -> None:
    """Downloads and prepares the tfds set `name` into `data_dir` (tfds' default when `None`)
    unless it is there already.

    Raises:
        DataError: The name is unknown, a download host cannot be reached, or the download or
            preparation failed (then nothing it wrote is left).

    Example:

    >>> prepare_tfds("no_such_set", "tfds")
    Traceback (most recent call last):
    keras_alexnet.errors.DataError: could not download and prepare 'no_such_set' ... not found.
    """
    import tensorflow_datasets as tfds

    try:
        with _quiet("absl"):  # "Variant folder … has no dataset_info.json": not downloaded yet
            builder = tfds.builder(name, data_dir=data_dir)
            if builder.is_prepared():
                return
        check_reachable(name, builder.url_infos or ())
        with removed_on_failure(builder.data_dir_root):
            builder.download_and_prepare()
    except DataError:
        raise
    except Exception as error:  # tfds raises many kinds: unknown name, network, disk
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"could not download and prepare {name!r} through tensorflow-datasets: "
                        f"{first_line}") from error


def check_reachable(name: str, urls: Iterable[str],
                    timeout: float = DOWNLOAD_PROBE_SECONDS) -> None:
    """`DataError` unless a TCP connection opens to each host of `urls` within `timeout`
    seconds each.

    Example:

    >>> check_reachable("mnist", ["https://127.0.0.1:9/mnist.gz"])  # a closed port
    Traceback (most recent call last):
    keras_alexnet.errors.DataError: cannot download 'mnist' through ... (Connection refused); ...
    """
    hosts = {(url.hostname, url.port or (443 if url.scheme == "https" else 80))
             for url in map(urllib.parse.urlsplit, urls) if url.hostname}
    for host, port in sorted(hosts):
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise DataError(f"cannot download {name!r} through tensorflow-datasets: {host}:{port} "
                            f"cannot be reached ({reason}); on a machine without network, copy a "
                            f"prepared copy into tensorflow-datasets' data directory (or pass "
                            f"--data-dir where it is)") from None


@contextlib.contextmanager
def removed_on_failure(root: str) -> Iterator[None]:
    """If the block raises, removes every file and folder it created under `root` (looked for
    `_SNAPSHOT_DEPTH` levels deep; `root` too if it did not exist)."""
    existed = os.path.isdir(root)
    before = set(_paths(root))
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for path in sorted(set(_paths(root)) - before):  # a folder before what it holds
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.lexists(path):
                    os.remove(path)
        raise


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """The Python logger `logger_name` shows only errors for the block."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _paths(root: str, depth: int = _SNAPSHOT_DEPTH) -> Iterator[str]:
    """The paths under `root`, at most `depth` levels deep (links are not followed)."""
    if depth == 0 or not os.path.isdir(root) or os.path.islink(root):
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            yield entry.path
            yield from _paths(entry.path, depth - 1)
