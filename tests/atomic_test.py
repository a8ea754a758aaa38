import os

import pytest

from keras_alexnet.utils.atomic import atomic_path


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with atomic_path(str(target)) as staging:
        assert staging.endswith(".json") and os.path.dirname(staging) == str(tmp_path)
        with open(staging, "w") as file:
            file.write("new")
        assert target.read_text() == "old"  # not visible before the rename
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_failure_midway_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "history.csv"
    target.write_text("epoch\n0\n")
    with pytest.raises(OSError, match="No space left"):
        with atomic_path(str(target)) as staging:
            with open(staging, "w") as file:
                file.write("epoch\n0\n1")
            raise OSError(28, "No space left on device")
    assert target.read_text() == "epoch\n0\n"
    assert os.listdir(tmp_path) == ["history.csv"]
