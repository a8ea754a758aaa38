"""Decoding encoded images with bounded memory: the size is read from the file's header first.

A PNG of about a megabyte can declare 20,000 × 20,000 pixels; decoding it would allocate 1.2 GB.
`checked_pixels` (TensorFlow ops) checks the format and that the file is whole, reads the width
and height from the header, and refuses an image over `max_pixels` with an `InvalidArgument` error
that names the element and the limit, all without decoding. The exported `classify_image_bytes`
signature runs `bound_request` (those checks on every image of a request, and a bound on their
pixels together) before it decodes any.

| format | width and height read from | whole when |
|---|---|---|
| PNG | the IHDR chunk: 4 bytes big-endian each at 16, 20 | it holds the IEND chunk |
| JPEG | the SOF marker (`tf.io.extract_jpeg_shape`) | an EOI marker follows its first SOS |
| BMP | the info header: 4 bytes little-endian each at 18, 22 | its length = pixel offset + rows |

GIF is refused: each of its frames declares its own size, which may exceed the size in its
header, and finding them means walking the whole file. Anything else (WebP, TIFF, garbage) is
refused as not one of these formats.
"""

from __future__ import annotations

import re
from typing import Optional

from keras_alexnet.errors import ExportError
from keras_alexnet.utils.image_files import (
    BMP_MAGIC,
    DEFAULT_MAX_PIXELS,
    FORMATS,
    GIF_MAGIC,
    JPEG_END,
    JPEG_MAGIC,
    JPEG_SCAN,
    PNG_END,
    PNG_MAGIC,
)

DEFAULT_MAX_REQUEST_PIXELS = 4 * DEFAULT_MAX_PIXELS
MAX_IMAGE_FILE_BYTES = 64 * 2 ** 20  # the most bytes a client reads from one image file
MAX_PIXEL_LIMIT = 2 ** 63 - 1  # the signature holds its pixel limits as int64


def check_pixel_limit(limit, name: str) -> None:
    """`ExportError` unless the pixel limit `limit` (named `name`) is an integer in
    1..`MAX_PIXEL_LIMIT`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PIXEL_LIMIT:
        raise ExportError(f"{name} must be an integer >= 1 and <= {MAX_PIXEL_LIMIT} (int64), "
                          f"got {limit!r}")


def checked_pixels(data, index, max_pixels: int):
    """The pixels an encoded image declares (a float64 scalar), once checked, without decoding
    it, in this order: not a GIF, a PNG, JPEG or BMP, whole (`is_whole`), at most `max_pixels`.

    Raises:
        tf.errors.InvalidArgumentError: (when run) the first check that fails, naming
            `image_bytes[index]`.
    """
    import tensorflow as tf

    def check(ok, message, *values):
        return tf.debugging.Assert(ok, [tf.strings.format(message, (index, *values))])

    gif = check(~_starts_with(data, GIF_MAGIC), "image_bytes[{}] is a GIF, which is refused "
                "(its frames may be larger than its header says): send PNG or JPEG")
    with tf.control_dependencies([gif]):
        known = check(_starts_with(data, PNG_MAGIC) | _starts_with(data, JPEG_MAGIC)
                      | _starts_with(data, BMP_MAGIC), "image_bytes[{}] is not a " + FORMATS
                      + " image")
    with tf.control_dependencies([known]):
        whole = check(is_whole(data), "image_bytes[{}] does not end where its format says (cut "
                                      "short?)")
    with tf.control_dependencies([whole]):
        height, width = declared_size(data)
        pixels = _pixels(height, width)
        small = check(pixels <= max_pixels,
                      "image_bytes[{}] declares {} × {} pixels, more than the limit of {}",
                      width, height, max_pixels)
    with tf.control_dependencies([small]):
        return tf.identity(pixels)


def bound_request(image_bytes, max_pixels: int, max_request_pixels: int):
    """The pixels a request's encoded images (a string vector) declare in all (a float64
    scalar), once each has passed `checked_pixels` and together they are at most
    `max_request_pixels`; no image is decoded. Make the decoding depend on it.

    Raises:
        tf.errors.InvalidArgumentError: (when run) a check failed; the message names the image,
            or the request's total and limit.
    """
    import tensorflow as tf

    pixels = tf.map_fn(lambda pair: checked_pixels(pair[1], pair[0], max_pixels),
                       (tf.range(tf.shape(image_bytes)[0]), image_bytes),
                       fn_output_signature=tf.float64)
    total = tf.reduce_sum(pixels)
    bounded = tf.debugging.Assert(total <= max_request_pixels, [tf.strings.format(
        "image_bytes declare {} pixels in all, more than the limit of {} per request",
        (tf.cast(total, tf.int64), max_request_pixels))])
    with tf.control_dependencies([bounded]):
        return tf.identity(total)


def _pixels(height, width):
    """Width × height as float64, which no header's numbers overflow."""
    import tensorflow as tf

    return tf.cast(height, tf.float64) * tf.cast(width, tf.float64)


def is_whole(data):
    """Whether an encoded image ends where its format says (a bool scalar): a PNG holds its IEND
    chunk, a JPEG has an EOI marker after its first SOS marker, a BMP is as long as its pixel
    offset and rows. Only meaningful for these formats."""
    import tensorflow as tf

    def png():
        return tf.size(_find(data, PNG_END)) > 0

    def jpeg():
        scans, ends = _find(data, JPEG_SCAN), _find(data, JPEG_END)
        return (tf.size(scans) > 0) & (tf.reduce_max(tf.concat([ends, [-1]], 0))
                                       > tf.reduce_min(tf.concat([scans, [2 ** 62]], 0)))

    def bmp():  # rows of bits_per_pixel × width bits, padded to 4 bytes
        height, width = declared_size(data)
        row_bytes = (_number(data, 28, 2, big_endian=False) * width + 31) // 32 * 4
        return tf.equal(tf.cast(tf.strings.length(data), tf.int64),
                        _number(data, 10, 4, big_endian=False) + row_bytes * height)

    return tf.case([(_starts_with(data, PNG_MAGIC), png), (_starts_with(data, JPEG_MAGIC), jpeg),
                    (_starts_with(data, BMP_MAGIC), bmp)],
                   default=lambda: tf.constant(False), exclusive=False)


def _find(data, marker: bytes):
    """The int64 positions where `marker` (no zero bytes) starts in the string scalar `data`."""
    import tensorflow as tf

    padded = tf.io.decode_raw(tf.strings.join([data, tf.constant(b"\x00" * len(marker))]),
                              tf.uint8)
    starts = tf.size(padded) - len(marker) + 1
    found = tf.ones([starts], tf.bool)
    for offset, value in enumerate(marker):
        found &= tf.equal(padded[offset:offset + starts], value)
    return tf.reshape(tf.where(found), [-1])


def _starts_with(data, magic: bytes):
    import tensorflow as tf

    return tf.equal(tf.strings.substr(data, 0, len(magic)), magic)


def _number(data, start: int, length: int, big_endian: bool):
    """The unsigned int64 in `length` bytes of `data` at `start` (bytes past its end read 0)."""
    import tensorflow as tf

    padded = tf.strings.join([data, tf.constant(b"\x00" * (start + length))])
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8),
                     tf.int64)
    powers = [256 ** k for k in range(length)]
    return tf.reduce_sum(digits * tf.constant(powers[::-1] if big_endian else powers, tf.int64))


def refusal(message: str) -> Optional[str]:
    """The reason in the message of an `InvalidArgumentError` that `checked_pixels` or
    `bound_request` raised (e.g. `image_bytes[0] declares 20000 × 20000 pixels, …`), or `None`
    for another error."""
    match = re.search(r"assertion failed: \[(image_bytes(?:\[\d+\])? [^\n]*)\]\s*(?:\n|$)",
                      message)
    return match.group(1) if match else None


def declared_size(data):
    """`(height, width)` int64 scalars read from an encoded image's header; `(-1, -1)` when it is
    not PNG, JPEG or BMP."""
    import tensorflow as tf

    def jpeg():
        shape = tf.cast(tf.io.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    def bmp():  # a negative height means a top-down bitmap
        height = _number(data, 22, 4, big_endian=False)
        height = tf.where(height >= 2 ** 31, 2 ** 32 - height, height)
        return height, _number(data, 18, 4, big_endian=False)

    unknown = (tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))
    return tf.case([
        (_starts_with(data, PNG_MAGIC),
         lambda: (_number(data, 20, 4, True), _number(data, 16, 4, True))),
        (_starts_with(data, JPEG_MAGIC), jpeg),
        (_starts_with(data, BMP_MAGIC), bmp),
    ], default=lambda: unknown, exclusive=False)
