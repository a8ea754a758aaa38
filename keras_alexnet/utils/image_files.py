"""The encoded image formats the package reads — PNG, JPEG and BMP — told apart by the bytes their
files begin with, whether a file is whole, and how many pixels its header declares: the one list
the exported signature, the client, the CLI and the image-folder data set all check against."""

from __future__ import annotations

import contextlib
import os
import stat
from typing import BinaryIO, Iterator, Optional

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk's type and CRC
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_SCAN, JPEG_END = b"\xff\xda", b"\xff\xd9"  # the SOS and EOI markers
GIF_MAGIC = b"GIF8"
BMP_MAGIC = b"BM"
# The formats the `classify_image_bytes` signature decodes, by the bytes their files begin with.
FORMAT_MAGICS = {"PNG": PNG_MAGIC, "JPEG": JPEG_MAGIC, "BMP": BMP_MAGIC}
FORMATS = "PNG, JPEG or BMP"
_TAIL_BYTES = 1024  # where a JPEG's EOI marker is looked for (some files carry bytes after it)
# The most pixels (width × height) an image may declare: 64 MB of RGB once decoded. The exported
# `classify_image_bytes` signature's default, and the image-folder data set's limit.
DEFAULT_MAX_PIXELS = 4096 * 4096
# JPEG's start-of-frame markers (they hold the size): 0xC0–0xCF but DHT, JPG and DAC.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_MAX_SEGMENTS = 256  # segments walked before the frame marker (EXIF, ICC, …)


def image_format(data: bytes) -> Optional[str]:
    """`"PNG"`, `"JPEG"` or `"BMP"`: the format whose signature `data` begins with, one the
    exported model decodes; `None` for anything else (a GIF, a text file, nothing).

    Example:

    >>> image_format(PNG_MAGIC + bytes(100)), image_format(b"GIF89a")
    ('PNG', None)
    """
    return next((name for name, magic in FORMAT_MAGICS.items() if data.startswith(magic)), None)


class NotARegularFile(OSError):
    """The path is a FIFO, a device, a socket or a directory: never read as an image."""


@contextlib.contextmanager
def open_regular_file(path: str) -> Iterator[BinaryIO]:
    """`path` opened for reading, once checked to be a regular file (a link to one is), without
    blocking: opening a FIFO would wait for a writer, and reading `/dev/zero` never ends.

    Raises:
        NotARegularFile: `path` is not a regular file.
        OSError: It cannot be opened.

    Example:

    >>> with open_regular_file("/dev/zero") as file:
    ...     file.read(3)
    Traceback (most recent call last):
    keras_alexnet.utils.image_files.NotARegularFile: /dev/zero is not a regular file
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb", buffering=0) as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise NotARegularFile(f"{path} is not a regular file")
        yield file


def image_file_problem(path: str, max_pixels: Optional[int] = None) -> Optional[str]:
    """Why the file at `path` is not a whole PNG, JPEG or BMP image of at most `max_pixels`
    pixels, from its header and its end only (`"not a regular file"`, `"not a PNG, JPEG or BMP
    image"`, `"cut short"`, `"too large: …"`, `"unreadable: …"`), or `None` when it is one. A PNG
    must end with its IEND chunk, a JPEG hold an EOI marker near its end, a BMP be as long as its
    header says.

    Example:

    >>> image_file_problem(__file__)
    'not a PNG, JPEG or BMP image'
    """
    try:
        with open_regular_file(path) as file:
            head = file.read(64)
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - _TAIL_BYTES))
            tail = file.read(_TAIL_BYTES)
            found = image_format(head)
            declared = declared_size(file, head) if found and max_pixels else None
    except NotARegularFile:
        return "not a regular file"
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if found is None:
        return f"not a {FORMATS} image"
    whole = {"PNG": lambda: tail.endswith(PNG_END),
             "JPEG": lambda: JPEG_END in tail,
             "BMP": lambda: len(head) >= 6 and size >= int.from_bytes(head[2:6], "little")}
    if not whole[found]():
        return "cut short"
    if max_pixels and (declared is None or declared[0] * declared[1] > max_pixels):
        shown = "no size in its header" if declared is None else "{} × {} pixels".format(*declared)
        return f"too large: {shown}, more than the limit of {max_pixels}"
    return None


def declared_size(file: BinaryIO, head: bytes) -> Optional[tuple[int, int]]:
    """`(width, height)` as the header of an open PNG, JPEG or BMP file declares them (`head`:
    its first 64 bytes), read without decoding; `None` when no size is found. A JPEG's is in its
    start-of-frame segment, found by walking the segments before it (`file` is seeked)."""
    if head.startswith(PNG_MAGIC) and len(head) >= 24:
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(BMP_MAGIC) and len(head) >= 26:  # a negative height: a top-down bitmap
        return (abs(int.from_bytes(head[18:22], "little", signed=True)),
                abs(int.from_bytes(head[22:26], "little", signed=True)))
    if head.startswith(JPEG_MAGIC):
        file.seek(2)
        for _ in range(_JPEG_MAX_SEGMENTS):
            segment = file.read(9)
            if len(segment) < 4 or segment[0] != 0xFF:
                return None
            if segment[1] in _JPEG_FRAMES and len(segment) == 9:
                return int.from_bytes(segment[7:9], "big"), int.from_bytes(segment[5:7], "big")
            file.seek(int.from_bytes(segment[2:4], "big") - 7, os.SEEK_CUR)
    return None
