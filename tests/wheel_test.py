"""What the wheel ships: every file in it read for a path of the machine that built it, a user's
name or the development folders' layout."""

import getpass
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

# The development machines' folders (their home, the checkouts, the shared data beside them,
# scratch files) and this machine's home directory and user name as path parts.
LOCAL = [b"/root", b"/home/", b"/work/", b"/tmp/", b"../shared",
         os.path.expanduser("~").encode(), f"/{getpass.getuser()}/".encode()]
# What a build of the checkout leaves beside its sources, and what is not part of them.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", ".ci-venvs", "build", "dist", "runs",
                                     "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache")


def local_paths(data: bytes) -> list[bytes]:
    """The local paths in a file's bytes."""
    return sorted(set(re.findall(b"|".join(map(re.escape, LOCAL)), data)))


def test_the_local_path_finder_finds_each_kind():
    text = b'{"cache": "/root/.cache", "data": "../shared/data", "x": "/home/ann/x"}'
    assert local_paths(text) == [b"../shared", b"/home/", b"/root"]
    assert local_paths(b"keras-alexnet train --recipe long --data-dir DIR") == []


# Building a wheel needs pip and setuptools in the environment (the stacks CI builds with uv have
# neither): the main stack, which installs as the README says, runs these.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip wheel` builds from a copy of the checkout's sources (so the build leaves
    nothing in the checkout), without downloading anything."""
    root = tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO, root / "source", ignore=NOT_SOURCES)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(root / "source"), "--no-deps",
                    "--no-build-isolation", "--no-index", "-q", "-w", str(root / "out")],
                   check=True, capture_output=True, timeout=600)
    (path,) = (root / "out").iterdir()
    return path


def test_no_file_in_the_wheel_holds_a_local_path(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        found = {name: local_paths(archive.read(name)) for name in names
                 if not name.endswith(".dist-info/METADATA")}
    assert "keras_alexnet/pretrained/alexnet_long_cifar10/metadata.json" in names
    assert "keras_alexnet/config/frontier.json" in names  # what a time budget plans with
    assert {name: paths for name, paths in found.items() if paths} == {}


@pytest.mark.xfail(strict=True, reason="the README, the wheel's long description, still shows "
                                       "the development machines' ../shared/data")
def test_the_wheels_description_holds_no_local_path(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist()
                       if name.endswith(".dist-info/METADATA")]
        assert local_paths(archive.read(metadata)) == []
