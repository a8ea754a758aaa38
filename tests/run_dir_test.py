"""The run directory's files: history rows checked line by line, and which config may resume."""

import json

import pytest

from keras_alexnet import TrainConfig
from keras_alexnet.errors import ConfigError, RunDirError
from keras_alexnet.run_dir import check_resumable, read_history, write_history


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
    check_resumable(config.replace(data_dir="elsewhere", verbose=0, figures=False, export=False,
                                   eval_batch_size=50, checkpoint_every=3,
                                   compilation_cache_dir=None))


@pytest.mark.parametrize("change, shown", [
    ({"learning_rate": 0.01}, "learning_rate 0.02→0.01"),
    ({"seed": 3, "epochs": 5}, "epochs 49→5, seed 0→3"),
])
def test_another_training_in_the_directory_is_refused(tmp_path, change, shown):
    config = interrupted_run(tmp_path, learning_rate=0.02)
    with pytest.raises(ConfigError) as raised:
        check_resumable(config.replace(**change))
    assert shown in str(raised.value)
    assert f"--resume {tmp_path}" in str(raised.value) and "--output-dir" in str(raised.value)


def test_a_directory_without_a_backup_or_with_an_unreadable_config(tmp_path):
    check_resumable(TrainConfig(output_dir=str(tmp_path)))  # nothing to resume: any config
    config = interrupted_run(tmp_path)
    (tmp_path / "config.json").write_text("{cut")
    with pytest.raises(ConfigError, match="config.json is unreadable"):
        check_resumable(config)
