"""Bounded decoding: sizes read from headers (checked against Pillow), and a decompression bomb
refused before it is decoded."""

import io
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_alexnet.image_bytes import declared_size, decode_bounded, refusal


def png_bomb(width, height):
    """A PNG of `width` × `height` grey zeros: a few hundred kB that decode to width × height bytes
    (× 3 as RGB), built here with zlib, one row at a time."""
    def chunk(kind, data):
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def encoded(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def sample_images():
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (13, 21, 3), dtype=np.uint8))
    grey16 = Image.fromarray(rng.integers(0, 65535, (9, 5), dtype=np.uint16))
    return {"png": encoded(rgb, "PNG"), "jpeg": encoded(rgb, "JPEG"), "gif": encoded(rgb, "GIF"),
            "bmp": encoded(rgb, "BMP"), "grey16_png": encoded(grey16, "PNG"),
            "progressive_jpeg": encoded(rgb, "JPEG", progressive=True)}


@pytest.mark.parametrize("name", sorted(sample_images()))
def test_declared_size_matches_pillow_and_decoding(name):
    data = sample_images()[name]
    width, height = Image.open(io.BytesIO(data)).size
    assert [int(v) for v in declared_size(tf.constant(data))] == [height, width]
    decoded = tf.function(lambda d: decode_bounded(d, 0, 10_000))(tf.constant(data))
    assert decoded.shape == (height, width, 3) and decoded.dtype == tf.uint8


@pytest.mark.parametrize("data", [b"", b"junk", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x89PN"])
def test_other_bytes_are_refused_by_name(data):
    assert [int(v) for v in declared_size(tf.constant(data))] == [-1, -1]
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        tf.function(lambda d: decode_bounded(d, 7, 10_000))(tf.constant(data))
    assert refusal(raised.value.message) == "image_bytes[7] is not a PNG, JPEG, GIF or BMP image"


def test_the_limit_counts_declared_pixels():
    data = sample_images()["png"]  # 21 × 13 = 273 pixels
    decode = tf.function(lambda d, limit: decode_bounded(d, 2, limit))
    assert decode(tf.constant(data), 273).shape == (13, 21, 3)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        decode(tf.constant(data), 272)
    assert refusal(raised.value.message) == (
        "image_bytes[2] declares 21 × 13 pixels, more than the limit of 272")
    assert refusal("some other error") is None


# In a fresh process, so that its peak memory is this check's alone.
BOMB = r"""
import json, resource, sys, time
import tensorflow as tf
from keras_alexnet.image_bytes import decode_bounded, refusal
sys.path.insert(0, sys.argv[1])
from image_bytes_test import png_bomb

bomb = png_bomb(20000, 20000)
decode = tf.function(lambda d: decode_bounded(d, 0, 4096 * 4096))
small = tf.io.encode_png(tf.zeros((4, 4, 3), tf.uint8))
decode(small)  # traced and warmed up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    decode(tf.constant(bomb))
    message = None
except tf.errors.InvalidArgumentError as error:
    message = refusal(error.message)
seconds = time.perf_counter() - start
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"bytes": len(bomb), "seconds": seconds, "message": message,
                  "peak_growth_mb": growth}))
"""


def test_a_decompression_bomb_is_refused_at_once_without_allocating_it():
    process = subprocess.run([sys.executable, "-c", BOMB, os.path.dirname(__file__)],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    seen = json.loads(process.stdout.strip().splitlines()[-1])
    assert seen["bytes"] < 2_000_000  # 20,000 × 20,000 pixels in well under 2 MB
    assert seen["message"] == ("image_bytes[0] declares 20000 × 20000 pixels, more than the limit "
                               "of 16777216")
    assert seen["seconds"] < 1.0
    assert seen["peak_growth_mb"] < 100  # decoding it would take 1,200 MB
