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

from keras_alexnet.serving.image_bytes import (
    bound_request,
    checked_pixels,
    declared_size,
    refusal,
)
from keras_alexnet.utils.image_files import image_format


def decode_bounded(data, index, max_pixels):
    """One encoded image decoded once `checked_pixels` has passed it (as the export's signature
    does for each image of a request)."""
    with tf.control_dependencies([checked_pixels(data, index, max_pixels)]):
        return tf.io.decode_image(data, channels=3, expand_animations=False)


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
    return {"png": encoded(rgb, "PNG"), "jpeg": encoded(rgb, "JPEG"),
            "bmp": encoded(rgb, "BMP"), "grey16_png": encoded(grey16, "PNG"),
            "progressive_jpeg": encoded(rgb, "JPEG", progressive=True)}


def gif_frame_bomb(side=4096):
    """A GIF whose header declares a 1 × 1 screen and whose one frame is side × side pixels
    (14 kB at 4096: LZW-compressed zeros), written by Pillow with the screen set to 1 × 1 after."""
    frame = Image.new("P", (side, side), 0)
    data = bytearray(encoded(frame, "GIF"))
    data[6:10] = struct.pack("<HH", 1, 1)
    return bytes(data)


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
    assert refusal(raised.value.message) == "image_bytes[7] is not a PNG, JPEG or BMP image"


def test_the_limit_counts_declared_pixels():
    data = sample_images()["png"]  # 21 × 13 = 273 pixels
    decode = tf.function(lambda d, limit: decode_bounded(d, 2, limit))
    assert decode(tf.constant(data), 273).shape == (13, 21, 3)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        decode(tf.constant(data), 272)
    assert refusal(raised.value.message) == (
        "image_bytes[2] declares 21 × 13 pixels, more than the limit of 272")
    assert refusal("some other error") is None


def test_a_gif_is_refused_whatever_its_header_says():
    """Its frames declare their own sizes, which may exceed its screen's: a 1 × 1 screen with a
    4096² frame decoded to 4096 × 4096 × 3 bytes before, through a limit of 64 pixels (and a
    32768² frame to 4.2 GB)."""
    decode = tf.function(lambda d: decode_bounded(d, 4, 64))
    rgb = Image.fromarray(np.zeros((8, 8, 3), np.uint8))
    for data in (gif_frame_bomb(), encoded(rgb, "GIF")):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            decode(tf.constant(data))
        assert refusal(raised.value.message) == (
            "image_bytes[4] is a GIF, which is refused (its frames may be larger than its header "
            "says): send PNG or JPEG")


@pytest.mark.parametrize("name", sorted(sample_images()))
def test_an_image_cut_short_is_refused_by_name_and_trailing_bytes_are_not(name):
    """Before, a cut PNG or JPEG failed with the decoder's message, naming no element."""
    data = sample_images()[name]
    decode = tf.function(lambda d: decode_bounded(d, 5, 10_000))
    for cut in (len(data) - 1, len(data) // 2):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            decode(tf.constant(data[:cut]))
        assert refusal(raised.value.message) == (
            "image_bytes[5] does not end where its format says (cut short?)")
    if "bmp" not in name:  # a BMP's length is exact; PNG and JPEG may carry bytes after the end
        width, height = Image.open(io.BytesIO(data)).size
        assert decode(tf.constant(data + b"\x00trailer" * 8)).shape == (height, width, 3)


def test_a_header_whose_product_overflows_64_bits_is_refused():
    """4,294,967,295² overflows int64: read as float64, the product stays over the limit."""
    data = png_bomb(1, 1)
    huge = data[:16] + struct.pack(">II", 2 ** 32 - 1, 2 ** 32 - 1) + data[24:]
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        tf.function(lambda d: decode_bounded(d, 0, 4096 * 4096))(tf.constant(huge))
    assert refusal(raised.value.message).startswith("image_bytes[0] declares 4294967295 × ")


def test_a_request_is_bounded_by_the_pixels_its_images_declare_in_all():
    images = tf.constant([png_bomb(300, 200), png_bomb(100, 100)])  # 60,000 + 10,000 pixels
    check = tf.function(lambda batch, limit: bound_request(batch, 60_000, limit))
    check(images, 70_000)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        check(images, 69_999)
    assert refusal(raised.value.message) == (
        "image_bytes declare 70000 pixels in all, more than the limit of 69999 per request")
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:  # each image's own limit first
        check(tf.constant([png_bomb(100, 100), png_bomb(301, 200)]), 10 ** 9)
    assert refusal(raised.value.message) == (
        "image_bytes[1] declares 301 × 200 pixels, more than the limit of 60000")


# In a fresh process, so that its peak memory is this check's alone.
BOMB = r"""
import json, resource, sys
import tensorflow as tf
from keras_alexnet.serving.image_bytes import refusal
sys.path.insert(0, sys.argv[1])
from image_bytes_test import decode_bounded, png_bomb

bomb = png_bomb(20000, 20000)
decode = tf.function(lambda d: decode_bounded(d, 0, 4096 * 4096))
small = tf.io.encode_png(tf.zeros((4, 4, 3), tf.uint8))
decode(small)  # traced and warmed up
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode(tf.constant(bomb))
    message = None
except tf.errors.InvalidArgumentError as error:
    message = refusal(error.message)
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({"bytes": len(bomb), "message": message, "peak_growth_mb": growth}))
"""


@pytest.mark.slow
def test_a_decompression_bomb_is_refused_from_its_header_without_allocating_it():
    process = subprocess.run([sys.executable, "-c", BOMB, os.path.dirname(__file__)],
                             capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    seen = json.loads(process.stdout.strip().splitlines()[-1])
    assert seen["bytes"] < 2_000_000  # 20,000 × 20,000 pixels in well under 2 MB
    assert seen["message"] == ("image_bytes[0] declares 20000 × 20000 pixels, more than the limit "
                               "of 16777216")
    assert seen["peak_growth_mb"] < 100  # decoding it would take 1,200 MB


@pytest.mark.parametrize("image_format_name", ["PNG", "JPEG", "BMP"])
def test_the_client_check_accepts_every_format_the_signature_decodes(image_format_name):
    """One list of formats: each file Pillow writes in a format the signature decodes is
    accepted by the client's check and decoded by the signature's checks; a GIF is refused by
    both."""
    from keras_alexnet.serving.client import check_encoded_image

    buffer = io.BytesIO()
    Image.fromarray(np.full((5, 7, 3), 200, np.uint8)).save(buffer, image_format_name)
    data = buffer.getvalue()
    assert image_format(data) == image_format_name
    check_encoded_image(data, "image.file")
    assert decode_bounded(tf.constant(data), 0, 100).shape == (5, 7, 3)
    gif = io.BytesIO()
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(gif, "GIF")
    assert image_format(gif.getvalue()) is None
    with pytest.raises(ValueError, match="image.gif is not a PNG, JPEG or BMP image"):
        check_encoded_image(gif.getvalue(), "image.gif")
