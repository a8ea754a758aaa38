"""Reading small files a user or a download handed us: regular files only, a size cap, strict
UTF-8 and, for JSON, a nesting limit, each failure one `KerasAlexNetError` line.

A config, metadata or metrics file that is a link to `/dev/zero`, a FIFO, a sparse file of
gigabytes or an array nested 200,000 deep is refused before it is read whole.

Example:

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "metrics.json")
>>> _ = open(path, "w").write('{"test_accuracy": 0.9}')
>>> read_json_file(path, "the run's metrics.json")["test_accuracy"]
0.9
>>> read_json_file("/dev/zero", "config.json")
Traceback (most recent call last):
keras_alexnet.errors.ModelError: config.json is not a regular file (/dev/zero)
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any, BinaryIO, Iterator

from keras_alexnet.errors import KerasAlexNetError, ModelError
from keras_alexnet.utils.image_files import NotARegularFile, open_regular_file

MAX_JSON_BYTES = 1 << 20  # a preset's or run's JSON files are a few kB
MAX_TEXT_BYTES = 1 << 20  # class names: 1 MiB holds 10,000 names of 100 characters
MAX_JSON_DEPTH = 32  # the deepest the package writes is 4


@contextlib.contextmanager
def open_bounded(path: str, what: str, max_bytes: int,
                 error: type[KerasAlexNetError] = ModelError) -> Iterator[BinaryIO]:
    """The regular file at `path` opened for reading (`image_files.open_regular_file`), refused
    as `error` (naming `what`) when it is missing, not a regular file (a FIFO, a device, a
    directory) or over `max_bytes`; a reader must still stop at `max_bytes` (it may grow)."""
    with contextlib.ExitStack() as stack:
        try:
            file = stack.enter_context(open_regular_file(path))
        except NotARegularFile as cause:
            raise error(f"{what} is not a regular file ({path})") from cause
        except FileNotFoundError as cause:
            raise error(f"{what} is missing ({path})") from cause
        except OSError as cause:
            raise error(f"{what} cannot be read: {cause.strerror or cause}") from cause
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            raise error(f"{what} is {size:,} bytes, over the {max_bytes:,} allowed")
        yield file


def read_bytes(path: str, what: str, max_bytes: int,
               error: type[KerasAlexNetError] = ModelError) -> bytes:
    """The bytes of the regular file at `path`, refused as `open_bounded` says."""
    with open_bounded(path, what, max_bytes, error) as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:  # the file grew since it was opened
        raise error(f"{what} is over the {max_bytes:,} bytes allowed")
    return data


def copy_bounded(path: str, target: str, what: str, max_bytes: int,
                 error: type[KerasAlexNetError] = ModelError) -> None:
    """Copies the regular file at `path` to `target`, refused as `open_bounded` says (also when
    it grows past `max_bytes` as it is copied)."""
    left = max_bytes + 1  # one byte more tells a file that grew
    with open_bounded(path, what, max_bytes, error) as source, open(target, "wb") as copy:
        while block := source.read(min(1 << 20, left)):
            left -= len(block)
            if not left:
                raise error(f"{what} is over the {max_bytes:,} bytes allowed")
            copy.write(block)


def read_text_file(path: str, what: str, max_bytes: int = MAX_TEXT_BYTES,
                   error: type[KerasAlexNetError] = ModelError) -> str:
    """The UTF-8 text of the regular file at `path` (as `read_bytes`), refused when it is not
    UTF-8."""
    try:
        return read_bytes(path, what, max_bytes, error).decode("utf-8")
    except UnicodeDecodeError as cause:
        raise error(f"{what} is not UTF-8 text (byte {cause.start})") from cause


def read_json_file(path: str, what: str, max_bytes: int = MAX_JSON_BYTES,
                   error: type[KerasAlexNetError] = ModelError) -> Any:
    """The JSON value in the regular file at `path` (as `read_text_file`), refused when it is
    not JSON or nests deeper than `MAX_JSON_DEPTH`."""
    return parse_json(read_text_file(path, what, max_bytes, error), what, error)


def parse_json(text: str, what: str, error: type[KerasAlexNetError] = ModelError) -> Any:
    """The JSON value in `text`, refused as `error` when it is not JSON or nests deeper than
    `MAX_JSON_DEPTH`."""
    if _nesting(text) > MAX_JSON_DEPTH:
        raise error(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except ValueError as cause:
        raise error(f"{what} is not valid JSON ({cause})") from cause


def _nesting(text: str) -> int:
    """The deepest nesting of `[` and `{` in JSON `text`, strings skipped (an upper bound where
    the text is not JSON)."""
    depth = deepest = 0
    in_string = escaped = False
    for character in text:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
        elif character == '"':
            in_string = True
        elif character in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif character in "]}":
            depth -= 1
    return deepest
