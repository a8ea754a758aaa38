"""The run directory's files: history rows checked line by line, which config may train into it,
and one run at a time."""

import json
import os
import signal
import subprocess
import sys

import pytest

from keras_alexnet import TrainConfig
from keras_alexnet.errors import ConfigError, RunDirError
from keras_alexnet.run_dir import (
    check_run_dir,
    make_directory,
    read_history,
    run_lock,
    write_history,
)


def test_history_rows_round_trip_and_a_damaged_line_is_named(tmp_path):
    path = str(tmp_path / "history.csv")
    write_history(path, [{"epoch": 0, "loss": 2.5, "val_accuracy": 0.1},
                         {"epoch": 1, "loss": float("nan"), "val_accuracy": 0.2}])
    history = read_history(path)
    assert history["epoch"] == [0, 1] and history["val_accuracy"] == [0.1, 0.2]
    text = (tmp_path / "history.csv").read_text()
    for damaged in (text[:-3], text.replace("0.2", "0.2,9"), text.replace("2.5", "")):
        (tmp_path / "history.csv").write_text(damaged)
        with pytest.raises(RunDirError, match=r"history.csv, line (2|3), is cut short"):
            read_history(path)


def interrupted_run(tmp_path, **values):
    config = TrainConfig(output_dir=str(tmp_path), **values)
    (tmp_path / "backup").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    return config


def test_the_same_training_may_resume_with_other_paths_and_output(tmp_path):
    config = interrupted_run(tmp_path, learning_rate=0.02)
    other_paths = config.replace(data_dir="elsewhere", verbose=0, figures=False, export=False,
                                 eval_batch_size=50, checkpoint_every=3,
                                 compilation_cache_dir=None)
    check_run_dir(other_paths)  # no error: the backup is this training's
    assert (tmp_path / "backup").is_dir()
    with pytest.raises(ConfigError, match="weight_decay"):  # the same check, with one change
        check_run_dir(other_paths.replace(weight_decay=1e-3))  # that is training's own


@pytest.mark.parametrize("change, shown", [
    ({"learning_rate": 0.01}, "learning_rate 0.02→0.01"),
    ({"seed": 3, "epochs": 5}, "epochs 49→5, seed 0→3"),
])
def test_another_training_in_the_directory_is_refused(tmp_path, change, shown):
    config = interrupted_run(tmp_path, learning_rate=0.02)
    with pytest.raises(ConfigError) as raised:
        check_run_dir(config.replace(**change))
    assert shown in str(raised.value)
    assert f"--resume {tmp_path}" in str(raised.value) and "--output-dir" in str(raised.value)


def test_a_directory_without_a_backup_or_with_an_unreadable_config(tmp_path):
    check_run_dir(TrainConfig(output_dir=str(tmp_path)))  # nothing to resume: any config
    config = interrupted_run(tmp_path)
    (tmp_path / "config.json").write_text("{cut")
    with pytest.raises(ConfigError, match="config.json is unreadable"):
        check_run_dir(config)


def finished_run(tmp_path, **values):
    config = TrainConfig(output_dir=str(tmp_path), **values)
    for name, text in (("config.json", json.dumps(config.to_dict())), ("metrics.json", "{}"),
                       ("history.csv", "epoch,loss\n0,2.3\n"), ("best.keras", "zip")):
        (tmp_path / name).write_text(text)
    return config


def test_another_config_into_a_finished_run_is_refused_unless_overwritten(tmp_path):
    config = finished_run(tmp_path, learning_rate=0.02)
    files = {path.name: path.read_text() for path in tmp_path.iterdir()}
    with pytest.raises(ConfigError) as raised:
        check_run_dir(config.replace(learning_rate=0.01))
    assert "holds a run of another config (learning_rate 0.02→0.01)" in str(raised.value)
    assert "--overwrite" in str(raised.value) and "--output-dir" in str(raised.value)
    check_run_dir(config.replace(verbose=0))  # the same training again: allowed, nothing removed
    assert {path.name: path.read_text() for path in tmp_path.iterdir()} == files

    (tmp_path / "backup").mkdir()
    (tmp_path / "figure.png").write_text("kept")
    check_run_dir(config.replace(learning_rate=0.01, overwrite=True))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["figure.png"]


HOLD = """
import sys, time
from keras_alexnet.run_dir import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_held_run_directory_is_refused_naming_its_process_until_that_process_dies(tmp_path):
    run_dir = str(tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, run_dir], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(RunDirError) as raised:
            with run_lock(run_dir):
                pytest.fail("a second holder got in")
        assert f"{run_dir} is in use by another run (process {holder.pid} on " in str(
            raised.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert os.path.exists(os.path.join(run_dir, ".lock"))  # left by the killed holder
    with run_lock(run_dir):  # a dead holder's lock blocks nothing
        with pytest.raises(RunDirError, match=f"process {os.getpid()} on "):
            with run_lock(run_dir):  # nor is it re-entered within a process
                pass
    assert os.listdir(run_dir) == []


def test_holding_a_run_directory_removes_what_killed_writers_left(tmp_path):
    (tmp_path / "backup").mkdir()
    left = [tmp_path / ".best.tmp-0a1b2c3d.keras", tmp_path / ".history.tmp-0a1b2c3d.csv",
            tmp_path / "backup" / ".latest.tmp-0a1b2c3d.weights.h5"]
    kept = [tmp_path / "best.keras", tmp_path / "backup" / "latest.weights.h5",
            tmp_path / ".hidden"]
    for path in left + kept:
        path.write_text("x")
    with run_lock(str(tmp_path)):
        assert [path for path in left if path.exists()] == []
        assert all(path.exists() for path in kept)


def test_a_directory_that_cannot_be_made_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="the run directory .*file is a file, not a directory"):
        make_directory(str(tmp_path / "file"), "run directory")
    with pytest.raises(RunDirError, match="cannot create the model directory .*file/below: Not a"):
        make_directory(str(tmp_path / "file" / "below"), "model directory")
