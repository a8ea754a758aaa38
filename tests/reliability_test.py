"""Nothing lost, nothing trusted: resume after SIGKILL, atomic outputs, divergence, determinism."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import run_cli, write_cifar_dir

from keras_alexnet import TrainConfig
from keras_alexnet.callbacks import BestCheckpoint, build_callbacks
from keras_alexnet.optimizer import TorchSGD
from keras_alexnet.run_dir import read_history


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    write_cifar_dir(str(path), per_batch=300)
    return str(path)


def small_run_args(data_dir, run_dir, *extra):
    return ["train", "--data-dir", data_dir, "--train-subset", "800", "--validation-size", "100",
            "--batch-size", "32", "--output-dir", run_dir, "--no-export", "--verbose", "2", *extra]


# Runs the command with one more callback that, in the second epoch's third batch, writes a
# marker file and then waits: the test kills the process there, in the middle of epoch 2.
PAUSE_IN_EPOCH_2 = """
import os, sys, time, keras
from keras_alexnet import cli, training

class PauseInEpoch2(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 2:
            open(os.environ["MARKER"], "w").close()
            time.sleep(3600)

build = training.build_callbacks
training.build_callbacks = lambda *args, **kwargs: build(*args, **kwargs) + [PauseInEpoch2()]
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("how", ["same command", "--resume"])
def test_sigkill_mid_epoch_then_the_run_resumes_across_the_lr_drop(data_dir, tmp_path, how):
    run_dir = tmp_path / "run"
    marker = tmp_path / "in-epoch-2"
    args = small_run_args(data_dir, run_dir, "--epochs", "3", "--lr-decay-epoch", "1")
    process = subprocess.Popen([sys.executable, "-c", PAUSE_IN_EPOCH_2, *map(str, args)],
                               env={**os.environ, "MARKER": str(marker)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not marker.exists():
        assert process.poll() is None and time.time() < deadline, "epoch 2 never started"
        time.sleep(0.05)
    history = run_dir / "history.csv"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(read_history(str(history))["epoch"]) == 1 and (run_dir / "backup").is_dir()

    resumed = run_cli(*args) if how == "same command" else run_cli("train", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 2/3" in resumed.stdout
    rows = read_history(str(history))
    assert rows["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(rows["learning_rate"], [0.01, 0.001, 0.001], rtol=1e-6)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 3
    assert metrics["best_val_accuracy"] == max(rows["val_accuracy"])
    assert not (run_dir / "backup").exists()
    assert not [name for name in os.listdir(run_dir) if ".tmp" in name]


def test_resume_flag_refuses_what_it_cannot_resume(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli(*small_run_args(data_dir, run_dir, "--epochs", "1"))
    assert first.returncode == 0, first.stderr
    finished = run_cli("train", "--resume", run_dir)
    assert finished.returncode == 2 and "has no interrupted run to resume" in finished.stderr
    with_flags = run_cli("train", "--resume", run_dir, "--epochs", "5")
    assert with_flags.returncode == 2 and "--resume takes no other flags" in with_flags.stderr
    missing = run_cli("train", "--resume", tmp_path / "nothing")
    assert missing.returncode == 2 and "is not a run directory" in missing.stderr


def tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=TorchSGD(0.1, momentum=0.9, weight_decay=1e-3, global_clipnorm=2.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


class Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


class Snapshot(keras.callbacks.Callback):
    def __init__(self, when):
        super().__init__()
        self.when, self.values = when, {}

    def on_epoch_begin(self, epoch, logs=None):
        if self.when == "begin":
            self.values[epoch] = [v.numpy().copy() for v in self.model.optimizer.variables]

    def on_epoch_end(self, epoch, logs=None):
        if self.when == "end":
            self.values[epoch] = [v.numpy().copy() for v in self.model.optimizer.variables]


def test_resumed_fit_gets_back_optimizer_state_and_history_without_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(tmp_path), lr_decay_epoch=1)
    first, before = tiny_model(), Snapshot("end")
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
                  callbacks=[*build_callbacks(config), before, Interrupt()])
    second, after = tiny_model(), Snapshot("begin")
    second.fit(x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
               callbacks=[*build_callbacks(config), after])
    assert sorted(after.values) == [2, 3]  # epochs 0 and 1 were not run again
    for restored, saved in zip(after.values[2],
                               before.values[1]):  # iterations, lr, momentum buffers
        np.testing.assert_array_equal(restored, saved)
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2, 3]


def test_backups_every_second_epoch_resume_after_the_last_one_written(tmp_path):
    """Killed as epoch 3 (index 2) starts: the last backup is after epoch 2 (index 1)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(tmp_path), checkpoint_every=2)

    class InterruptLater(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_model().fit(x, y, batch_size=16, epochs=5, validation_data=(x, y), verbose=0,
                         callbacks=[*build_callbacks(config), InterruptLater()])
    after = Snapshot("begin")
    tiny_model().fit(x, y, batch_size=16, epochs=5, validation_data=(x, y), verbose=0,
                     callbacks=[*build_callbacks(config), after])
    assert sorted(after.values) == [2, 3, 4]  # epoch index 2 had no backup: it ran again
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2, 3, 4]


def test_checkpoint_every_zero_writes_no_checkpoint_and_no_backup(tmp_path):
    config = TrainConfig(output_dir=str(tmp_path), checkpoint_every=0)
    names = [type(callback).__name__ for callback in build_callbacks(config)]
    assert "BestCheckpoint" not in names and "PeriodicBackupAndRestore" not in names
    assert "HistoryWriter" in names


def test_a_failed_checkpoint_write_keeps_the_previous_best(tmp_path, monkeypatch):
    model = tiny_model()
    model.build((None, 4))
    checkpoint = BestCheckpoint(str(tmp_path / "best.keras"))
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.3})
    before = (tmp_path / "best.keras").read_bytes()

    def write_half_then_fail(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as file:
            file.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.on_epoch_end(1, {"loss": 0.9, "val_accuracy": 0.5})
    assert (tmp_path / "best.keras").read_bytes() == before
    assert os.listdir(tmp_path) == ["best.keras"]
    checkpoint.on_epoch_end(2, {"loss": float("nan"), "val_accuracy": 0.9})  # diverged: not saved
    assert (tmp_path / "best.keras").read_bytes() == before


def test_a_failed_metrics_write_keeps_the_old_file(tmp_path, monkeypatch):
    from keras_alexnet import run_dir

    path = tmp_path / "metrics.json"
    run_dir.write_json(str(path), {"test_accuracy": 0.5})

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(json, "dump", fail)
    with pytest.raises(OSError):
        run_dir.write_json(str(path), {"test_accuracy": 0.9})
    assert json.loads(path.read_text()) == {"test_accuracy": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_nan_loss_stops_the_run_says_so_and_exports_nothing(data_dir, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("train", "--data-dir", data_dir, "--train-subset", "64", "--validation-size",
                     "100", "--batch-size", "32", "--epochs", "3", "--learning-rate", "1e30",
                     "--clip-norm", "none", "--output-dir", run_dir, "--saved-models-dir",
                     tmp_path / "sm", "--verbose", "0")
    # TensorFlow's own runtime log lines may precede it (training ran); ours is the one error line.
    ours = [line for line in result.stderr.splitlines() if line.startswith("keras-alexnet:")]
    assert result.returncode == 2 and len(ours) == 1, result.stderr
    assert result.stderr.strip().endswith(ours[0])
    assert "the loss became NaN or infinite in epoch 1" in ours[0]
    assert not (run_dir / "metrics.json").exists() and not (tmp_path / "sm").exists()
    assert not (run_dir / "backup").exists()


def test_deterministic_runs_give_identical_histories(data_dir, tmp_path):
    histories = []
    for name in ("a", "b"):
        result = run_cli("train", "--data-dir", data_dir, "--train-subset", "128",
                         "--validation-size",
                         "100", "--batch-size", "32", "--epochs", "2", "--deterministic",
                         "--output-dir", tmp_path / name, "--no-export", "--verbose", "0")
        assert result.returncode == 0, result.stderr
        history = read_history(str(tmp_path / name / "history.csv"))
        for timing in ("epoch_seconds", "validation_seconds"):
            history.pop(timing)
        histories.append(history)
    assert histories[0] == histories[1]
    assert histories[0]["loss"][0] != histories[0]["loss"][1]


def test_checkpoints_load_in_safe_mode_so_lambda_code_is_refused(tmp_path, cifar_dir):
    from keras_alexnet.evaluation import evaluate
    from keras_alexnet.model import build_model

    assert "Lambda" not in build_model(seed=0).to_json()
    inputs = keras.Input((32, 32, 3))
    hostile = keras.Model(inputs, keras.layers.Lambda(lambda x: x[:, 0, 0, :] * 0.0)(inputs))
    hostile.save(tmp_path / "hostile.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        evaluate(str(tmp_path / "hostile.keras"), data_dir=cifar_dir)


def test_a_fresh_run_in_an_old_run_directory_does_not_inherit_its_best(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_accuracy\n0,1.0,0.9\n")
    (tmp_path / "best.keras").write_bytes(b"old run")
    model = tiny_model()
    model.build((None, 4))
    for resume, expected_best in [(True, 0.9), (False, 0.3)]:
        checkpoint = BestCheckpoint(str(tmp_path / "best.keras"), resume=resume)
        checkpoint.set_model(model)
        checkpoint.on_train_begin()
        checkpoint.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.3})
        assert checkpoint.best == expected_best
    assert (tmp_path / "best.keras").read_bytes() != b"old run"
