"""What the C++ side writes to file descriptor 2 inside the block goes nowhere; Python's errors
still reach the user."""

import os

import pytest

from keras_alexnet.utils.native_stderr import native_stderr_silenced


def test_writes_to_descriptor_2_inside_the_block_are_dropped_and_the_descriptor_restored(capfd):
    os.write(2, b"before\n")
    with native_stderr_silenced():
        os.write(2, b"native log line\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


def test_an_error_raised_inside_still_propagates_and_stderr_works_after(capfd):
    with pytest.raises(OSError, match="disk full"), native_stderr_silenced():
        os.write(2, b"native log line\n")
        raise OSError("disk full")
    os.write(2, b"reported\n")
    assert capfd.readouterr().err == "reported\n"
