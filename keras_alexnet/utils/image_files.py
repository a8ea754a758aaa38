"""The encoded image formats the package reads — PNG, JPEG and BMP — told apart by the bytes their
files begin with, and whether a file is whole: the one list the exported signature, the client,
the CLI and the image-folder data set all check against."""

from __future__ import annotations

import os
from typing import Optional

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


def image_format(data: bytes) -> Optional[str]:
    """`"PNG"`, `"JPEG"` or `"BMP"`: the format whose signature `data` begins with, one the
    exported model decodes; `None` for anything else (a GIF, a text file, nothing).

    Example:

    >>> image_format(PNG_MAGIC + bytes(100)), image_format(b"GIF89a")
    ('PNG', None)
    """
    return next((name for name, magic in FORMAT_MAGICS.items() if data.startswith(magic)), None)


def image_file_problem(path: str) -> Optional[str]:
    """Why the file at `path` is not a whole PNG, JPEG or BMP image, from its first bytes and
    its end only (`"not a PNG, JPEG or BMP image"`, `"cut short"`, `"unreadable: …"`), or `None`
    when it is one. A PNG must end with its IEND chunk, a JPEG hold an EOI marker near its end,
    a BMP be as long as its header says.

    Example:

    >>> image_file_problem(__file__)
    'not a PNG, JPEG or BMP image'
    """
    try:
        with open(path, "rb") as file:
            head = file.read(64)
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - _TAIL_BYTES))
            tail = file.read()
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    found = image_format(head)
    if found is None:
        return f"not a {FORMATS} image"
    whole = {"PNG": lambda: tail.endswith(PNG_END),
             "JPEG": lambda: JPEG_END in tail,
             "BMP": lambda: len(head) >= 6 and size >= int.from_bytes(head[2:6], "little")}
    return None if whole[found]() else "cut short"
