"""Decoding encoded images with bounded memory: the size is read from the file's header first.

A PNG of about a megabyte can declare 20,000 × 20,000 pixels; decoding it would allocate 1.2 GB.
`decode_bounded` (TensorFlow ops, used inside the exported `classify_image_bytes` signature) reads
the width and height from the header, refuses an image over `max_pixels` with an
`InvalidArgument` error that names the element and the limit, and only then decodes it.

| format | where the size is read |
|---|---|
| PNG | the IHDR chunk: width and height, 4 bytes big-endian each, at bytes 16 and 20 |
| JPEG | `tf.io.extract_jpeg_shape` (the SOF marker, without decoding) |
| GIF | the logical screen: width and height, 2 bytes little-endian each, at bytes 6 and 8 |
| BMP | the info header: width and height, 4 bytes little-endian each, at bytes 18 and 22 |

Anything else (WebP, TIFF, garbage) is refused as not one of these formats.
"""

from __future__ import annotations

import re
from typing import Optional

DEFAULT_MAX_PIXELS = 4096 * 4096
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
GIF_MAGIC = b"GIF8"
BMP_MAGIC = b"BM"
FORMATS = "PNG, JPEG, GIF or BMP"


def decode_bounded(data, index, max_pixels: int, channels: int = 3):
    """Decodes one encoded image (a scalar string tensor) to uint8 `[height, width, channels]`
    after checking its format and its declared size against `max_pixels`.

    Args:
        data: The encoded image.
        index: Its position in the request (int32 scalar), named in errors.
        max_pixels: The most pixels (width × height) an image may declare.
        channels: Colour channels of the decoded image.

    Raises:
        tf.errors.InvalidArgumentError: (when run) the bytes are not PNG, JPEG, GIF or BMP, or
            the image declares more than `max_pixels` pixels.
    """
    import tensorflow as tf

    height, width = declared_size(data)
    known = tf.debugging.Assert(height >= 0, [tf.strings.format(
        "image_bytes[{}] is not a " + FORMATS + " image", [index])])
    with tf.control_dependencies([known]):
        small = tf.debugging.Assert(height * width <= max_pixels, [tf.strings.format(
            "image_bytes[{}] declares {} × {} pixels, more than the limit of {}",
            (index, width, height, max_pixels))])
    with tf.control_dependencies([small]):
        return tf.io.decode_image(data, channels=channels, expand_animations=False)


def refusal(message: str) -> Optional[str]:
    """The reason in the message of an `InvalidArgumentError` that `decode_bounded` raised
    (e.g. `image_bytes[0] declares 20000 × 20000 pixels, …`), or `None` for another error."""
    match = re.search(r"assertion failed: \[(image_bytes\[\d+\] [^\n]*)\]\s*(?:\n|$)", message)
    return match.group(1) if match else None


def declared_size(data):
    """`(height, width)` int64 scalars read from an encoded image's header; `(-1, -1)` when it is
    not PNG, JPEG, GIF or BMP."""
    import tensorflow as tf

    padded = tf.strings.join([data, tf.constant(b"\x00" * 32)])  # short files read zeros

    def starts_with(magic: bytes):
        return tf.equal(tf.strings.substr(padded, 0, len(magic)), magic)

    def number(start: int, length: int, big_endian: bool):
        digits = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8),
                         tf.int64)
        powers = [256 ** k for k in range(length)]
        weights = tf.constant(powers[::-1] if big_endian else powers, tf.int64)
        return tf.reduce_sum(digits * weights)

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    def bmp():  # a negative height means a top-down bitmap
        height = number(22, 4, big_endian=False)
        height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)
        return height, number(18, 4, big_endian=False)

    unknown = (tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))
    return tf.case([
        (starts_with(PNG_MAGIC), lambda: (number(20, 4, True), number(16, 4, True))),
        (starts_with(JPEG_MAGIC), jpeg),
        (starts_with(GIF_MAGIC), lambda: (number(8, 2, False), number(6, 2, False))),
        (starts_with(BMP_MAGIC), bmp),
    ], default=lambda: unknown, exclusive=False)
