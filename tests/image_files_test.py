"""Telling PNG, JPEG and BMP files apart, and whole files from cut-short ones."""

import io
import os

import pytest
from PIL import Image

from keras_alexnet.utils.image_files import (
    DEFAULT_MAX_PIXELS,
    declared_size,
    image_file_problem,
    image_format,
)


def encoded(image_format_name, size=(9, 7)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, image_format_name)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["PNG", "JPEG", "BMP"])
def test_a_whole_image_passes_and_the_same_file_cut_short_does_not(name, tmp_path):
    data = encoded(name)
    assert image_format(data) == name
    whole, cut = tmp_path / f"whole.{name}", tmp_path / f"cut.{name}"
    whole.write_bytes(data)
    cut.write_bytes(data[:len(data) - 10])
    assert image_file_problem(str(whole)) is None
    assert image_file_problem(str(cut)) == "cut short"


@pytest.mark.parametrize("content", [encoded("GIF"), b"label,pixels\n", b""])
def test_other_files_are_not_images(content, tmp_path):
    path = tmp_path / "file.png"  # the name's extension is not what decides
    path.write_bytes(content)
    assert image_file_problem(str(path)) == "not a PNG, JPEG or BMP image"


def test_an_unreadable_path_says_why(tmp_path):
    assert image_file_problem(str(tmp_path / "missing.png")).startswith("unreadable: ")


@pytest.mark.parametrize("name,size", [("PNG", (9, 7)), ("BMP", (13, 5)), ("JPEG", (31, 17))])
def test_the_declared_size_is_the_one_pillow_reads(name, size, tmp_path):
    path = tmp_path / "image"
    if name == "JPEG":  # an EXIF segment before the frame: the size is found past it
        exif = Image.Exif()
        exif[0x010E] = "x" * 3000  # ImageDescription
        Image.new("RGB", size).save(path, "JPEG", exif=exif.tobytes())
    else:
        Image.new("RGB", size).save(path, name)
    with open(path, "rb") as file:
        declared = declared_size(file, file.read(64))
    assert declared == Image.open(path).size
    assert image_file_problem(str(path), max_pixels=size[0] * size[1]) is None
    assert image_file_problem(str(path), max_pixels=size[0] * size[1] - 1) == (
        f"too large: {size[0]} × {size[1]} pixels, more than the limit of "
        f"{size[0] * size[1] - 1}")


def test_a_fifo_and_a_link_to_a_device_are_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")  # opening it to read would wait for a writer
    (tmp_path / "zero.png").symlink_to("/dev/zero")  # reading it would never end
    assert image_file_problem(str(tmp_path / "pipe.png"), DEFAULT_MAX_PIXELS) == (
        "not a regular file")
    assert image_file_problem(str(tmp_path / "zero.png"), DEFAULT_MAX_PIXELS) == (
        "not a regular file")
    (tmp_path / "image.png").write_bytes(encoded("PNG"))
    (tmp_path / "link.png").symlink_to(tmp_path / "image.png")  # a link to a file is read
    assert image_file_problem(str(tmp_path / "link.png"), DEFAULT_MAX_PIXELS) is None
