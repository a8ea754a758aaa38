"""Nothing lost, nothing trusted: resume after SIGKILL, atomic outputs, divergence, determinism."""

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest
from conftest import TINY_MODEL, TINY_NETWORK, interrupt_at, run_cli, write_cifar_dir

from keras_alexnet import TrainConfig
from keras_alexnet.models.build import build_classifier, build_model
from keras_alexnet.run_dir import read_history
from keras_alexnet.training.callbacks import build_callbacks
from keras_alexnet.training.checkpoints import (
    BestCheckpoint,
    CheckpointSchedule,
    read_best_record,
    resume_epoch,
)
from keras_alexnet.training.optimizer import TorchSGD

pytestmark = pytest.mark.slow  # every test here trains or starts processes


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    write_cifar_dir(str(path), per_batch=300)
    return str(path)


def small_run_args(data_dir, run_dir, *extra):
    return ["train", "--data-dir", data_dir, "--train-subset", "256", "--validation-size", "100",
            "--batch-size", "32", *TINY_NETWORK, "--output-dir", run_dir, "--no-export",
            "--verbose", "2", *extra]


# Runs the command with one more callback that writes a marker file and then waits, to be killed
# there, where $PAUSE_AT says: "E,B" after batch B of epoch E (0-based), "E,begin" as epoch E
# begins (after the last epoch's backup); with $SIGNAL (SIGTERM, SIGINT) it sends itself that
# signal there instead of waiting. With $SIGNAL_IN (a function `train()` calls outside `fit`:
# load_run_data, run_metrics, export_or_save) it sends itself $SIGNAL as that function begins.
# $FINAL_WEIGHTS, when set, receives the trained weights.
HOOKED_CLI = """
import os, signal, sys, time, keras
from keras_alexnet import cli
from keras_alexnet.training import fit_setup, recipe

class PauseAt(keras.callbacks.Callback):
    def __init__(self):
        epoch, where = os.environ["PAUSE_AT"].split(",")
        self.epoch, self.where = int(epoch), where

    def pause(self):
        open(os.environ["MARKER"], "w").close()
        if os.environ.get("SIGNAL"):
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
        else:
            time.sleep(3600)

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if epoch == self.epoch and self.where == "begin":
            self.pause()

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and str(batch) == self.where:
            self.pause()

def train(*args, **kwargs):
    result = trained(*args, **kwargs)
    if os.environ.get("FINAL_WEIGHTS"):
        result.model.save_weights(os.environ["FINAL_WEIGHTS"])
    return result

def signalling(function):
    def call(*args, **kwargs):
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL"]))
        return function(*args, **kwargs)
    return call

if os.environ.get("SIGNAL_IN"):
    name = os.environ["SIGNAL_IN"]
    setattr(recipe, name, signalling(getattr(recipe, name)))
if os.environ.get("PAUSE_AT"):
    build = fit_setup.build_callbacks
    fit_setup.build_callbacks = lambda *args, **kwargs: build(*args, **kwargs) + [PauseAt()]
trained, recipe.train = recipe.train, train
sys.exit(cli.main(sys.argv[1:]))
"""


def start_hooked(args, tmp_path, pause_at=None, final_weights=None, signal_name=None,
                 signal_in=None):
    """Starts the CLI; with `pause_at`, returns once the pause is reached."""
    marker = tmp_path / "paused"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "MARKER": str(marker), "PAUSE_AT": pause_at or "",
           "FINAL_WEIGHTS": str(final_weights or ""), "SIGNAL": signal_name or "",
           "SIGNAL_IN": signal_in or ""}
    process = subprocess.Popen([sys.executable, "-c", HOOKED_CLI, *map(str, args)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while pause_at is not None and not marker.exists():
        assert process.poll() is None and time.time() < deadline, process.communicate()[1]
        time.sleep(0.05)
    return process


def run_hooked(args, tmp_path, pause_at=None, final_weights=None):
    """Runs the CLI; with `pause_at`, SIGKILLs it where the pause is reached."""
    process = start_hooked(args, tmp_path, pause_at, final_weights)
    if pause_at is None:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
        return stdout
    process.send_signal(signal.SIGKILL)
    return process.communicate(timeout=60)[0]


def files_of(run_dir):
    return {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}


def test_one_run_at_a_time_in_a_directory_and_another_config_only_when_overwriting(
        data_dir, tmp_path, run_cli_here):
    """A second run into a live run's directory is refused at once, naming the process, and
    writes nothing; once that process is killed, the same command resumes. A finished run is
    replaced by another config only with --overwrite."""
    run_dir = tmp_path / "run"
    args = small_run_args(data_dir, run_dir, "--epochs", "2", "--checkpoint-every", "1",
                          "--no-figures")
    first = start_hooked(args, tmp_path, pause_at="1,1")  # after epoch 1's backup
    try:
        before = files_of(run_dir)
        for command in (args, ["train", "--resume", run_dir]):
            refused = run_cli_here(*command)
            assert refused.returncode == 2, refused.stderr
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1, lines
            line = lines[0]
            assert line.startswith(f"keras-alexnet: error: {run_dir} is in use by another run "
                                   f"(process {first.pid} on "), line
            assert "--output-dir" in line
            assert files_of(run_dir) == before
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)

    resumed = run_cli_here(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 2/2" in resumed.stdout and "Epoch 1/2" not in resumed.stdout

    finished = files_of(run_dir)
    other = run_cli_here(*args, "--learning-rate", "0.02")
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1, other.stderr
    assert "holds a run of another config (learning_rate 0.01→0.02)" in other.stderr
    assert "--overwrite" in other.stderr and files_of(run_dir) == finished
    replaced = run_cli_here(*args, "--learning-rate", "0.02", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert "Epoch 1/2" in replaced.stdout
    assert json.loads((run_dir / "config.json").read_text())["learning_rate"] == 0.02


def saved_weights(path):
    """The weights in a `FINAL_WEIGHTS` file of the small runs' network."""
    model = build_classifier(seed=0, **TINY_MODEL)
    model.load_weights(path)
    return model.get_weights()


def without_timings(history):
    return {key: values for key, values in history.items()
            if key not in ("epoch_seconds", "validation_seconds")}


def test_a_deterministic_run_killed_three_times_ends_exactly_as_an_uninterrupted_one(
        data_dir, tmp_path):
    """SIGKILL in the middle of epoch 2, as epoch 3 begins, and in the middle of epoch 3 (the LR
    drops after epoch 1): the resumed run's weights, history and metrics are bit-identical."""
    def args(run_dir):
        return small_run_args(data_dir, run_dir, "--epochs", "3", "--lr-decay-epoch", "1",
                              "--deterministic", "--checkpoint-every", "1", "--no-figures")

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_hooked(args(straight), tmp_path, final_weights=tmp_path / "straight.weights.h5")

    run_hooked(args(resumed), tmp_path, pause_at="1,2")
    assert read_history(str(resumed / "history.csv"))["epoch"] == [0]
    assert (resumed / "backup").is_dir()
    output = run_hooked(["train", "--resume", resumed], tmp_path, pause_at="2,begin")
    assert "Epoch 1/3" not in output and "Epoch 2/3" in output
    run_hooked(args(resumed), tmp_path, pause_at="2,5")
    output = run_hooked(args(resumed), tmp_path, final_weights=tmp_path / "resumed.weights.h5")
    assert "Epoch 3/3" in output and "Epoch 2/3" not in output

    histories = [read_history(str(run / "history.csv")) for run in (straight, resumed)]
    assert histories[1]["epoch"] == [0, 1, 2]
    np.testing.assert_allclose(histories[1]["learning_rate"], [0.01, 0.001, 0.001], rtol=1e-6)
    assert without_timings(histories[1]) == without_timings(histories[0])
    weights = [saved_weights(tmp_path / f"{name}.weights.h5") for name in ("straight", "resumed")]
    assert max(np.abs(a - b).max() for a, b in zip(*weights)) == 0
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], build_classifier(
        seed=0, **TINY_MODEL).get_weights()))  # training moved them
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (straight, resumed)]
    for values in metrics:
        for timing in ("train_seconds", "train_images_per_second", "phase_seconds"):
            values.pop(timing)
    assert metrics[1] == metrics[0]
    assert metrics[1]["epochs_completed"] == 3
    assert metrics[1]["best_val_accuracy"] == max(histories[1]["val_accuracy"])
    assert not (resumed / "backup").exists()
    assert not [name for name in os.listdir(resumed) if ".tmp" in name]


def test_sigterm_and_sigint_stop_after_the_step_back_up_and_resume_exactly(data_dir, tmp_path):
    """With the automatic schedule these short epochs write no backup of their own, so a kill
    lost the whole run. SIGTERM in epoch 2, then SIGINT in epoch 3 of the resumed run: each
    stops after its step with one line and its own status, backed up at its epoch's start; the
    run then ends bit for bit as an uninterrupted one."""
    def args(run_dir):
        return small_run_args(data_dir, run_dir, "--epochs", "3", "--lr-decay-epoch", "1",
                              "--deterministic", "--no-figures")

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    run_hooked(args(straight), tmp_path, final_weights=tmp_path / "straight.weights.h5")
    for command, pause_at, name, status, line in [
            (args(stopped), "1,2", "SIGTERM", 75, "stopped by SIGTERM in epoch 2 at step 3 of 8; "
             "backed up to resume at epoch 2"),
            (["train", "--resume", stopped], "2,0", "SIGINT", 130,
             "stopped by SIGINT in epoch 3 at step 1 of 8; backed up to resume at epoch 3")]:
        process = start_hooked(command, tmp_path, pause_at, signal_name=name)
        output, errors = process.communicate(timeout=600)
        assert process.returncode == status, errors
        assert errors.strip().splitlines()[-1] == (
            f"keras-alexnet: {line}: keras-alexnet train --resume {stopped}")
        assert "Traceback" not in errors
        with h5py.File(stopped / "backup" / "latest.weights.h5") as backup:
            assert backup.attrs["keras_alexnet_epochs"] == int(pause_at[0])
        assert read_history(str(stopped / "history.csv"))["epoch"] == list(range(int(
            pause_at[0])))
    output = run_hooked(["train", "--resume", stopped], tmp_path,
                        final_weights=tmp_path / "stopped.weights.h5")
    assert "Epoch 3/3" in output and "Epoch 2/3" not in output

    histories = [read_history(str(run / "history.csv")) for run in (straight, stopped)]
    assert without_timings(histories[1]) == without_timings(histories[0])
    weights = [saved_weights(tmp_path / f"{name}.weights.h5") for name in ("straight", "stopped")]
    assert max(np.abs(a - b).max() for a, b in zip(*weights)) == 0
    assert not (stopped / "backup").exists()


def layer_weights(path):
    """The arrays under a Keras `.weights.h5` file's `layers` group (the optimizer's left out),
    read with h5py."""
    arrays = {}
    with h5py.File(path) as file:
        file["layers"].visititems(lambda name, item: arrays.__setitem__(name, item[()])
                                  if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.large  # four command-line runs in fresh processes
def test_a_signal_outside_fit_stops_in_one_line_and_the_same_command_finishes_the_run(
        data_dir, tmp_path):
    """SIGTERM while the data loads stops a run that trained nothing; SIGTERM in the test after
    `fit`, then SIGINT in the export of the rerun, each stop in one line with their status, and
    the same command then finishes the run from the last epoch's backup without training."""
    run_dir = tmp_path / "run"
    args = small_run_args(data_dir, run_dir, "--epochs", "2", "--no-figures", "--export",
                          "--saved-models-dir", tmp_path / "exports")
    again = "run the same command again to finish it (test, figures, export) without training"
    for signal_name, signal_in, status, line in [
            ("SIGTERM", "load_run_data", 75, "stopped by SIGTERM while loading the data; it "
             "trained nothing: the same command starts (or resumes) the run again"),
            ("SIGTERM", "run_metrics", 75, "stopped by SIGTERM after training, while testing; "
             f"its trained state is backed up: {again} again"),
            ("SIGINT", "export_or_save", 130, "stopped by SIGINT after training, while "
             f"exporting; its trained state is backed up: {again} again")]:
        process = start_hooked(args, tmp_path, signal_name=signal_name, signal_in=signal_in)
        output, errors = process.communicate(timeout=600)
        assert process.returncode == status, errors
        assert errors.strip().splitlines()[-1] == f"keras-alexnet: {line}", errors
        assert "Traceback" not in errors and not (tmp_path / "exports").exists()
        if signal_in == "load_run_data":
            assert not run_dir.exists()  # held for the run, removed again: nothing was written
        elif signal_in == "run_metrics":
            assert "Epoch 2/2" in output and not (run_dir / "metrics.json").exists()
            history = (run_dir / "history.csv").read_bytes()
            trained = layer_weights(run_dir / "backup" / "latest.weights.h5")
        else:
            assert "Epoch" not in output  # nothing trained again
    output = run_hooked(args, tmp_path, final_weights=tmp_path / "final.weights.h5")
    assert "Epoch" not in output
    assert (run_dir / "history.csv").read_bytes() == history
    final = layer_weights(tmp_path / "final.weights.h5")
    assert sorted(final) == sorted(trained)
    assert all(np.array_equal(final[name], trained[name]) for name in trained)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and 0 <= metrics["test_accuracy"] <= 1
    assert os.listdir(tmp_path / "exports" / "alexnet_cifar10") == ["1"]
    assert not (run_dir / "backup").exists()


def test_resume_flag_refuses_what_it_cannot_resume(data_dir, tmp_path, run_cli_here):
    run_dir = tmp_path / "run"
    first = run_cli_here(*small_run_args(data_dir, run_dir, "--epochs", "1", "--train-subset",
                                         "64"))
    assert first.returncode == 0, first.stderr
    finished = run_cli_here("train", "--resume", run_dir)
    assert finished.returncode == 2 and "has no interrupted run to resume" in finished.stderr
    with_flags = run_cli_here("train", "--resume", run_dir, "--epochs", "5")
    assert with_flags.returncode == 2 and "--resume takes no other flags" in with_flags.stderr
    missing = run_cli_here("train", "--resume", tmp_path / "nothing")
    assert missing.returncode == 2 and "is not a run directory" in missing.stderr


def test_resume_of_a_run_killed_before_its_first_backup_starts_it_again(data_dir, tmp_path,
                                                                         run_cli_here):
    """Killed in its first minute, a run has its config.json (and history rows) but, with the
    automatic schedule, no backup yet: `--resume` trains it from the start, and says so."""
    run_dir = tmp_path / "run"
    config = TrainConfig(data_dir=data_dir, train_subset=64, validation_size=100, batch_size=32,
                         epochs=2, **TINY_MODEL, output_dir=str(run_dir), export=False,
                         figures=False, verbose=0)
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    (run_dir / "history.csv").write_text("epoch,loss\n0,2.3\n")
    resumed = run_cli_here("train", "--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert "stopped before its first backup: training starts again from epoch 1" in (
        resumed.stderr)
    assert read_history(str(run_dir / "history.csv"))["epoch"] == [0, 1]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_completed"] == 2
    again = run_cli_here("train", "--resume", run_dir)
    assert again.returncode == 2 and "it finished" in again.stderr


@pytest.fixture(scope="module")
def interrupted_run(data_dir, tmp_path_factory):
    """A 2-epoch CLI training interrupted (Ctrl-C) as its second epoch begins, after the first
    epoch's backup: its run directory."""
    from keras_alexnet import cli
    from keras_alexnet.training import fit_setup

    run_dir = tmp_path_factory.mktemp("interrupted") / "run"
    build = fit_setup.build_callbacks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_setup, "build_callbacks",
                      lambda *a, **k: [*build(*a, **k), interrupt_at(1)])
        assert cli.main([str(arg) for arg in interrupted_args(data_dir, run_dir)]) == 130
    return run_dir


def interrupted_args(data_dir, run_dir):
    return small_run_args(data_dir, run_dir, "--epochs", "2", "--train-subset", "64",
                          "--checkpoint-every", "1", "--no-figures")


def copy_of(interrupted_run, data_dir, tmp_path):
    """A copy of the interrupted run to continue or damage, and its command's arguments."""
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted_run, run_dir)
    return run_dir, interrupted_args(data_dir, run_dir)


def test_a_run_directory_resumes_only_the_config_it_was_started_with(interrupted_run, data_dir,
                                                                     tmp_path, run_cli_here):
    """Interrupted after epoch 1's backup: another learning rate or preset in the same
    `--output-dir` is refused in one line and leaves the backup as it was; the same command with
    other output flags resumes at epoch 2."""
    run_dir, args = copy_of(interrupted_run, data_dir, tmp_path)
    backup = {path: path.read_bytes() for path in (run_dir / "backup").rglob("*")
              if path.is_file()}
    assert backup

    for other in (["--learning-rate", "0.02"], ["--recipe", "tweaked", "--warmup-epochs", "0.2"]):
        refused = run_cli_here(*args, *other)
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("keras-alexnet: error:"), lines
        assert f"--resume {run_dir}" in lines[0] and "--output-dir" in lines[0]
        assert {path: path.read_bytes() for path in (run_dir / "backup").rglob("*")
                if path.is_file()} == backup
    assert "learning_rate 0.01→0.02" in run_cli_here(*args, "--learning-rate", "0.02").stderr

    resumed = run_cli_here(*args, "--verbose", "1", "--eval-batch-size", "50")
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 2/2" in resumed.stdout and "Epoch 1/2" not in resumed.stdout
    assert read_history(str(run_dir / "history.csv"))["epoch"] == [0, 1]


def test_a_linked_backup_or_an_empty_config_is_refused_in_one_line(data_dir, tmp_path,
                                                                    run_cli_here):
    """A `backup` that is a link trained to the end and then crashed without metrics; an empty
    config.json on --resume was filled with defaults. Both are refused before training."""
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    args = small_run_args(data_dir, run_dir, "--epochs", "1")
    run_dir.mkdir()
    elsewhere.mkdir()
    (run_dir / "backup").symlink_to(elsewhere)
    linked = run_cli_here(*args)
    assert linked.returncode == 2
    assert linked.stderr.strip().splitlines() == [
        f"keras-alexnet: error: {run_dir / 'backup'} is not a directory of its own (a link or a "
        f"file); a run keeps its backups there: remove it and run again"]
    assert sorted(os.listdir(run_dir)) == ["backup"] and os.listdir(elsewhere) == []

    (run_dir / "backup").unlink()
    (run_dir / "backup").mkdir()
    (run_dir / "config.json").write_text("{}")
    empty = run_cli_here("train", "--resume", run_dir)
    assert empty.returncode == 2
    assert empty.stderr.strip().splitlines() == [
        f"keras-alexnet: error: {run_dir / 'config.json'} does not hold a TrainConfig"]


# The file-size limit makes every write past it fail with EFBIG, as a full disk fails with ENOSPC.
FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing the process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
from keras_alexnet import cli
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", ["train", "export"])
def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(data_dir, tmp_path, command):
    """Training writes ~190 MB to best.keras, an export ~120 kB: with at most 60 kB per file,
    both fail in one line (before: a traceback of 67 lines)."""
    if command == "train":
        args = small_run_args(data_dir, tmp_path / "run", "--epochs", "1", "--train-subset", "64",
                              "--no-figures", "--verbose", "0")
    else:
        model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                                  keras.layers.Dense(10)])
        model.save(tmp_path / "model.keras")
        args = ["export", tmp_path / "model.keras", "--saved-models-dir",
                tmp_path / "sm"]
    process = subprocess.run([sys.executable, "-c", FULL_DISK, "60000", *map(str, args)],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert process.returncode == 2, process.stderr[-3000:]
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    (line,) = lines
    assert line.startswith("keras-alexnet: error: cannot write (File too large)")
    written = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")
                     if path.name != "model.keras")
    # A failed export removes the model directory it made too (the saved-models base stays only
    # where it was there before).
    assert written == (["run", "run/class_names.txt", "run/config.json"] if command == "train"
                       else [])


@pytest.mark.parametrize("damage", ["cut mid-line", "a value too many", "not a number"])
def test_a_damaged_history_is_named_by_its_line_on_resume(interrupted_run, data_dir, tmp_path,
                                                          run_cli_here, damage):
    """history.csv is only ever replaced whole; one damaged outside (a copy stopped midway) is
    one error line naming the file and line, not a TypeError, before the data is read."""
    run_dir, args = copy_of(interrupted_run, str(tmp_path / "no data"), tmp_path)  # not read
    history = run_dir / "history.csv"
    text = history.read_text()
    header, row = text.splitlines()
    assert header.startswith("epoch,") and row.startswith("0,")
    history.write_text({"cut mid-line": text[:-9], "a value too many": text[:-1] + ",7\n",
                        "not a number": text.replace(row, row + "x")}[damage])
    result = run_cli_here(*args)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == (f"keras-alexnet: error: {history}, line 2, is cut short or not numbers; "
                    f"restore the file or delete that line and the ones after it")


def resumed_fit(model, *args, callbacks, **kwargs):
    """`model.fit` from the epoch the run's backup among `callbacks` restores, as `train()`
    fits."""
    return model.fit(*args, initial_epoch=resume_epoch(model, callbacks), callbacks=callbacks,
                     **kwargs)


def tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=TorchSGD(0.1, momentum=0.9, coupled_weight_decay=1e-3,
                                     global_clipnorm=2.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


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
    config = TrainConfig(output_dir=str(tmp_path), lr_decay_epoch=1, checkpoint_every=1)
    first, before = tiny_model(), Snapshot("end")
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
                  callbacks=[*build_callbacks(config), before, interrupt_at(2)])
    second, after = tiny_model(), Snapshot("begin")
    resumed_fit(second, x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
                callbacks=[*build_callbacks(config), after])
    assert sorted(after.values) == [2, 3]  # epochs 0 and 1 were not run again
    for restored, saved in zip(after.values[2],
                               before.values[1]):  # iterations, lr, momentum buffers
        np.testing.assert_array_equal(restored, saved)
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2, 3]


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def without_layers(path):
    """An HDF5 file whose header is whole but whose layers were never written (an h5 write
    stopped midway): Keras raises ValueError on it, not OSError."""
    with h5py.File(path, "a") as file:
        del file["layers"]


def interrupted_fit(run_dir):
    """4 epochs with a backup after each, interrupted as the 4th begins: the latest backup ends
    3 epochs, the previous one 2. Returns the optimizer state at the end of each epoch."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(run_dir), checkpoint_every=1)

    before = Snapshot("end")
    with pytest.raises(KeyboardInterrupt):
        tiny_model().fit(x, y, batch_size=16, epochs=4, verbose=0,
                         callbacks=[*build_callbacks(config), before, interrupt_at(3)])
    after = Snapshot("begin")
    resume = functools.partial(resumed_fit, tiny_model(), x, y, batch_size=16, epochs=4,
                               verbose=0, callbacks=[*build_callbacks(config), after])
    return before.values, after.values, resume


@pytest.mark.parametrize("tear", [cut_in_half, without_layers])
def test_a_torn_latest_backup_resumes_from_the_one_before(tmp_path, caplog, tear):
    before, after, resume = interrupted_fit(tmp_path)
    tear(tmp_path / "backup" / "latest.weights.h5")
    resume()
    assert sorted(after) == [2, 3]  # the previous backup ends 2 epochs
    for restored, saved in zip(after[2], before[1]):
        np.testing.assert_array_equal(restored, saved)
    assert "latest.weights.h5 cannot be read" in caplog.text
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2, 3]
    with h5py.File(tmp_path / "backup" / "latest.weights.h5") as backup:  # the trained state,
        assert backup.attrs["keras_alexnet_epochs"] == 4  # kept until the run completes


def test_with_every_backup_torn_a_run_starts_again_from_its_first_epoch(tmp_path, caplog):
    before, after, resume = interrupted_fit(tmp_path)
    for name in ("latest.weights.h5", "previous.weights.h5"):
        without_layers(tmp_path / "backup" / name)
    resume()
    assert sorted(after) == [0, 1, 2, 3]
    assert int(after[0][0]) == 0  # the optimizer's step count: nothing of a torn file was kept
    assert "training starts again from epoch 1" in caplog.text


def test_callbacks_without_writes_restore_the_same_backup_and_write_nothing(tmp_path):
    """The other processes of a multi-host run, on their copy of process 0's run directory:
    they resume from the same state and leave the copy as it was."""
    (tmp_path / "run").mkdir()
    before, _, _ = interrupted_fit(tmp_path / "run")
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    listing = {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()}
    callbacks = build_callbacks(TrainConfig(output_dir=str(copy), checkpoint_every=1),
                                writes=False)
    assert [type(callback).__name__ for callback in callbacks] == [
        "EpochTimer", "LearningRateScheduler", "TerminateOnNaN", "ResumeBackup"]
    rng = np.random.default_rng(0)  # interrupted_fit's data
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    resumed = Snapshot("begin")
    resumed_fit(tiny_model(), x, y, batch_size=16, epochs=4, verbose=0,
                callbacks=[*callbacks, resumed])
    assert sorted(resumed.values) == [3]  # the latest backup ends 3 epochs
    for restored, saved in zip(resumed.values[3], before[2]):
        np.testing.assert_array_equal(restored, saved)
    assert {path: path.read_bytes() for path in copy.rglob("*") if path.is_file()} == listing
    no_backup = build_callbacks(TrainConfig(output_dir=str(copy), checkpoint_every=0),
                                writes=False)
    assert [type(callback).__name__ for callback in no_backup] == [
        "EpochTimer", "LearningRateScheduler", "TerminateOnNaN"]


def test_backups_every_second_epoch_resume_after_the_last_one_written(tmp_path):
    """Killed as epoch 3 (index 2) starts: the last backup is after epoch 2 (index 1)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(tmp_path), checkpoint_every=2)

    with pytest.raises(KeyboardInterrupt):
        tiny_model().fit(x, y, batch_size=16, epochs=5, validation_data=(x, y), verbose=0,
                         callbacks=[*build_callbacks(config), interrupt_at(3)])
    after = Snapshot("begin")
    resumed_fit(tiny_model(), x, y, batch_size=16, epochs=5, validation_data=(x, y), verbose=0,
                callbacks=[*build_callbacks(config), after])
    assert sorted(after.values) == [2, 3, 4]  # epoch index 2 had no backup: it ran again
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2, 3, 4]


def test_the_automatic_schedule_backs_up_nothing_in_a_run_shorter_than_a_minute(tmp_path):
    """The default: a few-second run killed as epoch 3 starts has no backup, so it starts over;
    the last epoch still writes `best.keras`, with the model after it, and the backup of the
    trained state (removed when the run completes: `train()` does)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(tmp_path))
    assert config.checkpoint_every is None
    with pytest.raises(KeyboardInterrupt):
        tiny_model().fit(x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
                         callbacks=[*build_callbacks(config), interrupt_at(2)])
    assert sorted(os.listdir(tmp_path)) == ["history.csv"]
    model, after = tiny_model(), Snapshot("begin")
    resumed_fit(model, x, y, batch_size=16, epochs=4, validation_data=(x, y), verbose=0,
                callbacks=[*build_callbacks(config), after])
    assert sorted(after.values) == [0, 1, 2, 3]
    assert sorted(os.listdir(tmp_path)) == ["backup", "best.keras", "history.csv"]
    best = keras.saving.load_model(str(tmp_path / "best.keras"))
    for saved, trained in zip(best.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(saved, trained)


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("epoch_seconds, write_seconds, epochs, expected", [
    (110.0, 2.0, 5, [0, 1, 2, 3, 4]),  # a CPU: every epoch
    (0.5, 1.0, 49, [48]),  # a fast GPU, 25 s in all: only the last epoch
    (10.0, 1.0, 20, [5, 11, 17, 19]),  # a minute between writes
    (10.0, 5.0, 40, [5, 30, 39]),  # a slow disk: 50 × 5 s = 250 s between writes
])
def test_the_automatic_schedule_spaces_writes_by_a_minute_and_50_times_their_length(
        epoch_seconds, write_seconds, epochs, expected):
    clock = FakeClock()
    schedule = CheckpointSchedule(None, clock=clock)
    schedule.set_params({"epochs": epochs})
    schedule.on_train_begin()
    written = []
    for epoch in range(epochs):
        clock.now += epoch_seconds
        schedule.on_epoch_end(epoch)
        if schedule.due:
            written.append(epoch)
            with schedule.writing():
                clock.now += write_seconds
    assert written == expected
    assert schedule.write_seconds == len(expected) * write_seconds


@pytest.mark.parametrize("every", [0, 1])
def test_checkpoint_every_zero_writes_no_checkpoint_and_no_backup(tmp_path, every):
    """A 3-epoch fit with the run's callbacks: with 0, only history.csv is written (no
    best.keras, no backup written at any epoch end); with 1, both are (the control)."""
    config = TrainConfig(output_dir=str(tmp_path), checkpoint_every=every, lr_schedule="cosine")
    model = tiny_model()
    written = set()

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            written.update(path.name for path in tmp_path.rglob("*") if path.is_file())

    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = np.arange(32) % 3
    model.fit(x, y, validation_data=(x, y), epochs=3, verbose=0,
              callbacks=[*build_callbacks(config, model), Watch()])
    assert read_history(str(tmp_path / "history.csv"))["epoch"] == [0, 1, 2]
    backups = {"latest.weights.h5", "previous.weights.h5"}
    if every == 0:
        assert written == {"history.csv"}
    else:
        assert {"best.keras", "history.csv"} | backups <= written


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
                     "--global-clipnorm", "none", "--output-dir", run_dir, "--saved-models-dir",
                     tmp_path / "sm", "--verbose", "0")
    # TensorFlow's own runtime log lines may precede it (training ran); ours is the one error line.
    ours = [line for line in result.stderr.splitlines() if line.startswith("keras-alexnet:")]
    assert result.returncode == 3 and len(ours) == 1, result.stderr  # not 2: not bad input
    assert result.stderr.strip().endswith(ours[0])
    assert "the loss became NaN or infinite in epoch 1" in ours[0]
    assert not (run_dir / "metrics.json").exists() and not (tmp_path / "sm").exists()
    assert not (run_dir / "backup").exists()


def test_checkpoints_load_in_safe_mode_so_lambda_code_is_refused(tmp_path, cifar_dir):
    from keras_alexnet.evaluation.evaluate import evaluate

    assert "Lambda" not in build_model(seed=0).to_json()
    inputs = keras.Input((32, 32, 3))
    hostile = keras.Model(inputs, keras.layers.Lambda(lambda x: x[:, 0, 0, :] * 0.0)(inputs))
    hostile.save(tmp_path / "hostile.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        evaluate(str(tmp_path / "hostile.keras"), data_dir=cifar_dir)


class ScriptedAccuracy(keras.callbacks.Callback):
    """Sets each epoch's `val_accuracy` to the given value (before the run's callbacks see it)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_accuracy"] = self.values[epoch]


def test_a_resumed_run_saves_a_better_epoch_than_the_one_best_keras_holds(tmp_path):
    """Checkpoints every 2nd epoch: epoch 1 (0.6) is saved, epoch 2 (0.95) only logged, then the
    run is interrupted. Resumed at epoch 2, its epoch 3 (0.7) beats the saved 0.6 and is saved,
    though history.csv had held the unsaved 0.95."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=str(tmp_path), checkpoint_every=2)

    with pytest.raises(KeyboardInterrupt):
        tiny_model().fit(x, y, batch_size=16, epochs=6, verbose=0,
                         callbacks=[ScriptedAccuracy({0: 0.5, 1: 0.6, 2: 0.95}),
                                    *build_callbacks(config), interrupt_at(3)])
    assert read_history(str(tmp_path / "history.csv"))["val_accuracy"] == [0.5, 0.6, 0.95]
    assert read_best_record(str(tmp_path / "best.keras")) == {"epoch": 1, "val_accuracy": 0.6}

    weights_after = {}

    class WeightsAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights_after[epoch] = self.model.get_weights()

    resumed_fit(tiny_model(), x, y, batch_size=16, epochs=6, verbose=0,
                callbacks=[ScriptedAccuracy({2: 0.5, 3: 0.7, 4: 0.4, 5: 0.65}),
                           WeightsAtEpochEnd(), *build_callbacks(config)])
    assert read_best_record(str(tmp_path / "best.keras")) == {"epoch": 3, "val_accuracy": 0.7}
    best = keras.saving.load_model(str(tmp_path / "best.keras"))
    for saved, at_epoch_3 in zip(best.get_weights(), weights_after[3]):
        np.testing.assert_array_equal(saved, at_epoch_3)


def test_a_fresh_run_in_an_old_run_directory_does_not_inherit_its_best(tmp_path):
    """Only a resumed run starts from the value `best.keras` records; a fresh one overwrites it
    with its own first epoch, and a file without a record counts as no best."""
    model = tiny_model()
    model.build((None, 4))
    path = str(tmp_path / "best.keras")
    first = BestCheckpoint(path)
    first.set_model(model)
    first.on_train_begin()
    first.on_epoch_end(4, {"loss": 1.0, "val_accuracy": 0.9})
    assert read_best_record(path) == {"epoch": 4, "val_accuracy": 0.9}
    for resume, expected_best in [(True, 0.9), (False, 0.3)]:
        checkpoint = BestCheckpoint(path, resume=resume)
        checkpoint.set_model(model)
        checkpoint.on_train_begin()
        checkpoint.on_epoch_end(0, {"loss": 1.0, "val_accuracy": 0.3})
        assert checkpoint.best == expected_best
    assert read_best_record(path) == {"epoch": 0, "val_accuracy": 0.3}
    (tmp_path / "best.keras").write_bytes(b"written by something else")
    checkpoint = BestCheckpoint(path, resume=True)
    checkpoint.on_train_begin()
    assert checkpoint.best == -np.inf
