"""Telling PNG, JPEG and BMP files apart, and whole files from cut-short ones."""

import io

import pytest
from PIL import Image

from keras_alexnet.utils.image_files import image_file_problem, image_format


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
