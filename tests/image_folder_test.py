"""A directory of class folders as a data set: what is listed, what is skipped, what is refused."""

import io
import logging
import os
import struct

import numpy as np
import pytest
from PIL import Image

from keras_alexnet.data.image_folder import read_image_folder
from keras_alexnet.errors import DataError


def save_png(path, value=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((6, 5, 3), value, np.uint8)).save(path)


def test_classes_are_the_sorted_sub_folders_and_files_are_found_at_any_depth(tmp_path):
    for path in ("zebra/b.png", "zebra/a.png", "ant/x/deep.png", "ant/top.png", "moth/1.png"):
        save_png(str(tmp_path / path))
    folder = read_image_folder(str(tmp_path))
    assert folder.class_names == ("ant", "moth", "zebra")
    listed = [os.path.relpath(path, tmp_path) for path in folder.paths]
    assert listed == ["ant/top.png", "ant/x/deep.png", "moth/1.png", "zebra/a.png", "zebra/b.png"]
    assert folder.labels.tolist() == [0, 0, 1, 2, 2] and folder.skipped == {}


def test_non_images_and_cut_short_images_are_skipped_and_counted(tmp_path, caplog):
    save_png(str(tmp_path / "cat" / "good.png"))
    save_png(str(tmp_path / "dog" / "good.png"))
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    whole = (tmp_path / "cat" / "good.png").read_bytes()
    (tmp_path / "cat" / "cut.png").write_bytes(whole[:-12])
    (tmp_path / "cat" / "other.png").write_bytes(whole[:-12])
    with caplog.at_level(logging.WARNING):
        folder = read_image_folder(str(tmp_path))
    assert [os.path.basename(path) for path in folder.paths] == ["good.png", "good.png"]
    assert folder.skipped == {"cut short": 2, "not a PNG, JPEG or BMP image": 1}
    assert "skipped 3 file(s)" in caplog.text and "2 cut short" in caplog.text


@pytest.mark.parametrize("layout,message", [
    ({"cat/a.png"}, "holds 1 class folder"),
    ({"cat/a.png", "dog/readme.txt"}, r"class folder .*dog holds no PNG, JPEG or BMP image"),
    (set(), "holds 0 class folder"),
])
def test_a_folder_that_is_not_a_classification_set_is_one_data_error(tmp_path, layout, message):
    for path in layout:
        if path.endswith(".png"):
            save_png(str(tmp_path / path))
        else:
            os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
            (tmp_path / path).write_text("text")
    with pytest.raises(DataError, match=message):
        read_image_folder(str(tmp_path))


def test_a_missing_directory_is_one_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(str(tmp_path / "nowhere"))


def png_declaring(width, height):
    """A whole 1 × 1 PNG whose header says `width` × `height` (what the check reads)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


def test_devices_fifos_and_images_over_the_pixel_limit_are_skipped_and_counted(tmp_path, caplog):
    save_png(str(tmp_path / "cat" / "good.png"))
    save_png(str(tmp_path / "dog" / "good.png"))
    (tmp_path / "cat" / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "dog" / "pipe.png")
    (tmp_path / "dog" / "bomb.png").write_bytes(png_declaring(20_000, 20_000))
    (tmp_path / "dog" / "limit.png").write_bytes(png_declaring(4096, 4096))  # at the limit
    with caplog.at_level(logging.WARNING):
        folder = read_image_folder(str(tmp_path))
    assert sorted(os.path.relpath(path, tmp_path) for path in folder.paths) == [
        "cat/good.png", "dog/good.png", "dog/limit.png"]
    assert folder.skipped == {"not a regular file": 2, "too large": 1}
    assert "skipped 3 file(s)" in caplog.text and "1 too large" in caplog.text


@pytest.mark.parametrize("name,message", [
    ("two\nlines", "has a line break in its name"),
    (b"caf\xe9", "is not named in UTF-8"),
])
def test_a_class_folder_name_that_cannot_be_one_line_of_class_names_is_refused(
        tmp_path, name, message):
    save_png(str(tmp_path / "cat" / "a.png"))
    folder = os.path.join(os.fsencode(tmp_path), name) if isinstance(name, bytes) else (
        str(tmp_path / name))
    os.makedirs(folder)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(os.path.join(os.fsdecode(folder),
                                                                     "a.png"))
    with pytest.raises(DataError, match=message):
        read_image_folder(str(tmp_path))
