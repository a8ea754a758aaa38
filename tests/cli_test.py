"""The `keras-alexnet` command in fresh processes: a small run, evaluation, and bad input."""

import json
import os
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli, write_cifar_dir

from keras_alexnet import AlexNet  # noqa: F401  (registers the package's classes with Keras)
from keras_alexnet.data import load_cifar10
from keras_alexnet.run_dir import read_history


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    write_cifar_dir(str(path))
    return str(path)


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    result = run_cli("train", "--data-dir", small_data, "--epochs", "2", "--train-subset", "64",
                     "--validation-size", "100", "--batch-size", "32", "--lr-decay-epoch", "1",
                     "--output-dir", root / "run", "--saved-models-dir", root / "saved_models",
                     "--verbose", "0")
    return root, result


def test_train_writes_the_run_and_the_export(trained):
    root, result = trained
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and "SavedModel:" in result.stdout
    with open(root / "run" / "metrics.json") as file:
        metrics = json.load(file)
    assert metrics["epochs_completed"] == 2
    with open(root / "run" / "config.json") as file:
        config = json.load(file)
    assert (config["train_subset"], config["batch_size"], config["lr_decay_epoch"]) == (64, 32, 1)
    history = (root / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs
    assert os.path.isfile(root / "saved_models" / "alexnet_cifar10" / "1" / "saved_model.pb")


def model_probabilities(path, images):
    """Class probabilities of a `.keras` file or SavedModel, loaded here, not by the package."""
    if path.endswith(".keras"):
        logits = keras.saving.load_model(path).predict(images.astype("float32"), verbose=0)
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    versions = sorted(os.listdir(path), key=int)
    serve = tf.saved_model.load(os.path.join(path, versions[-1])).signatures["serving_default"]
    return serve(images=tf.constant(images))["probabilities"].numpy()


@pytest.mark.parametrize("target", ["saved_models/alexnet_cifar10", "run/best.keras"])
def test_evaluate_reports_the_models_test_metrics(trained, small_data, target, run_cli_here):
    root, _ = trained
    result = run_cli_here("evaluate", root / target, "--data-dir", small_data, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    data = load_cifar10(small_data)
    probabilities = model_probabilities(str(root / target), data.x_test).astype(np.float64)
    predicted = probabilities.argmax(1)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == data.y_test))
    true_class = probabilities[np.arange(len(data.y_test)), data.y_test]
    assert metrics["test_loss"] == pytest.approx(-np.mean(np.log(true_class)), rel=1e-4)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (data.y_test, probabilities.argmax(1)), 1)
    assert metrics["confusion_matrix"] == confusion.tolist()
    lines = [line.rstrip(",") for line in result.stdout.splitlines()]
    for row in confusion.tolist():  # a row a line, not a number a line
        assert f"    {json.dumps(row)}" in lines


def test_evaluate_of_a_runs_checkpoint_uses_the_runs_data_by_default(trained, small_data,
                                                                     run_cli_here):
    root, _ = trained
    result = run_cli_here("evaluate", root / "run" / "best.keras", "--json")
    assert result.returncode == 0, result.stderr
    confusion = np.array(json.loads(result.stdout)["confusion_matrix"])
    assert confusion.sum() == len(load_cifar10(small_data).y_test) == 100  # not the 10,000


def test_evaluate_of_the_export_equals_the_final_model(trained, small_data, run_cli_here):
    root, _ = trained
    with open(root / "run" / "metrics.json") as file:
        final = json.load(file)
    result = run_cli_here("evaluate", root / "saved_models" / "alexnet_cifar10", "--data-dir",
                          small_data, "--json")
    assert json.loads(result.stdout)["confusion_matrix"] == final["confusion_matrix"]


def test_evaluate_ten_crop_changes_the_answer_but_not_the_count(trained, small_data, run_cli_here):
    root, _ = trained
    single, ten = (json.loads(run_cli_here("evaluate", root / "run" / "best.keras", "--data-dir",
                                           small_data, "--json", *extra).stdout)
                   for extra in ([], ["--ten-crop"]))
    assert sum(map(sum, ten["confusion_matrix"])) == 100
    assert ten["test_loss"] != single["test_loss"]


def test_evaluate_with_flip_tta_matches_the_mean_of_both_views(trained, small_data, run_cli_here):
    root, _ = trained
    result = run_cli_here("evaluate", root / "run" / "best.keras", "--data-dir", small_data,
                          "--json", "--test-time-augmentation", "flip")
    data = load_cifar10(small_data)
    path = str(root / "run" / "best.keras")
    mean = (model_probabilities(path, data.x_test)
            + model_probabilities(path, data.x_test[:, :, ::-1].copy())) / 2
    assert json.loads(result.stdout)["test_accuracy"] == pytest.approx(
        np.mean(mean.argmax(1) == data.y_test))


def test_train_preset_with_overrides(small_data, tmp_path):
    result = run_cli("train", "--preset", "tweaked", "--conv1-stride", "2", "--epochs", "3",
                     "--warmup-epochs", "2", "--data-dir", small_data, "--train-subset", "64",
                     "--validation-size", "100", "--batch-size", "32", "--output-dir",
                     tmp_path / "run", "--no-export", "--no-figures", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["conv1_stride"], config["epochs"], config["batch_norm"]) == (2, 3, True)
    assert (config["lr_schedule"], config["test_time_augmentation"]) == ("cosine", "flip")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_time_augmentation"] == "flip"
    rates = read_history(str(tmp_path / "run" / "history.csv"))["learning_rate"]
    # Warm-up over 2 of 3 epochs (2 steps each) to 0.05, then the cosine reaches 0 at the end.
    assert rates == pytest.approx([0.025, 0.05, 0.0], abs=1e-6)
    assert "warmup_epochs" not in result.stderr  # given, so not scaled


def test_a_short_run_of_a_preset_scales_its_warm_up_and_says_so(small_data, tmp_path):
    result = run_cli("train", "--preset", "tweaked", "--epochs", "1", "--conv1-stride", "2",
                     "--data-dir", small_data, "--train-subset", "64", "--validation-size", "100",
                     "--batch-size", "32", "--output-dir", tmp_path / "run", "--no-export",
                     "--no-figures", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "keras_alexnet: warmup_epochs=0.1, the tweaked preset's share of the run "
        "(2 of its 20 epochs)"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["warmup_epochs"] == pytest.approx(2 / 20)
    assert read_history(str(tmp_path / "run" / "history.csv"))["epoch"] == [0]


def test_a_short_run_of_the_fast_preset_trains_the_narrow_model_on_its_one_cycle(small_data,
                                                                                 tmp_path):
    result = run_cli("train", "--preset", "fast", "--epochs", "2", "--data-dir", small_data,
                     "--train-subset", "64", "--validation-size", "100", "--batch-size", "32",
                     "--output-dir", tmp_path / "run", "--no-export", "--no-figures",
                     "--verbose", "0")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["performance"]["mixed_precision"] == "mixed_bfloat16"
    assert metrics["test_time_augmentation"] == "flip"
    model = keras.saving.load_model(str(tmp_path / "run" / "best.keras"))
    assert [model.get_layer(name).filters for name in ("conv1", "conv2", "conv3", "conv4",
                                                        "conv5")] == [32, 96, 192, 128, 128]
    assert model.get_layer("fc6").units == 512
    # 2 steps an epoch; the warm-up keeps 1.2 of 6 epochs' share: 0.4 epochs, 1 step of 4. The
    # logged rate is the schedule's after each epoch's last step: 0.2·(4 − 2)/(4 − 1), then 0.
    rates = read_history(str(tmp_path / "run" / "history.csv"))["learning_rate"]
    assert rates == pytest.approx([0.2 * 2 / 3, 0.0], abs=1e-6)


def corrupt_batch(path):
    with open(os.path.join(path, "data_batch_1"), "wb") as file:
        pickle.dump({b"data": b"not pixels", b"labels": [1]}, file, protocol=2)


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "-1"], "--epochs must be >= 1, got -1"),
    (["train", "--epochs", "many"], "argument --epochs: invalid int value: 'many'"),
    (["train", "--learning-rate", "0"], "--learning-rate must be > 0"),
    (["train", "--init", "xavier"], "argument --init: invalid choice: 'xavier'"),
    (["train", "--preset", "fastest"], "argument --preset: invalid choice: 'fastest'"),
    (["train", "--preset", "tweaked", "--epochs", "1", "--warmup-epochs", "2"],
     "--warmup-epochs must be in"),
    (["train", "--colour", "red"], "unrecognized arguments: --colour red"),
    (["train", "--data-dir", "{tmp}/missing"], "does not exist"),
    (["train", "--data-dir", "{tmp}"], "is not a CIFAR-10 copy"),
    (["train", "--data-dir", "{corrupt}"], "data_batch_1: data must be uint8"),
    (["evaluate", "{tmp}/nothing.keras"], "no model at"),
    (["evaluate", "{tmp}/notes.txt", "--data-dir", "{corrupt_ok}"], "neither a .keras checkpoint"),
    (["evaluate", "{tmp}", "--data-dir", "{corrupt_ok}"], "no SavedModel at"),
    (["evaluate", "{tmp}/nothing.keras", "--ten-crop", "--ten-crop-pad", "-1"],
     "--ten-crop-pad must be in 0..16, got -1"),
    (["evaluate", "{tmp}/nothing.keras", "--ten-crop", "--ten-crop-pad", "1000"],
     "--ten-crop-pad must be in 0..16, got 1000"),
    ([], "the following arguments are required: command"),
])
def test_bad_input_gives_one_line_exit_2_and_writes_nothing(args, message, tmp_path, small_data,
                                                            run_cli_here):
    corrupt = tmp_path / "corrupt" / "cifar-10-batches-py"
    write_cifar_dir(str(corrupt))
    corrupt_batch(str(corrupt))
    (tmp_path / "notes.txt").write_text("hello")
    values = {"tmp": tmp_path, "corrupt": corrupt, "corrupt_ok": small_data}
    args = [a.format(**values) for a in args]
    if args and args[0] == "train":
        args += ["--output-dir", str(tmp_path / "run"), "--saved-models-dir", str(tmp_path / "sm")]
    result = run_cli_here(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keras-alexnet: error: ") and message in lines[0]
    assert not (tmp_path / "run").exists() and not (tmp_path / "sm").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "-1"], "--epochs must be >= 1, got -1"),
    (["evaluate", "nothing.keras"], "no model at"),
])
def test_a_fresh_process_prints_only_the_one_line_for_bad_input(args, message, tmp_path):
    """As above, in a new interpreter: TensorFlow's start-up messages stay out of stderr."""
    result = run_cli(*args, cwd=tmp_path)
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert line.startswith("keras-alexnet: error: ") and message in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "--epochs must be >= 1, got 0"),
    (["train", "--preset", "fast", "--width-multiplier", "0"], "--width-multiplier must be in"),
    (["train", "--batch-size", "0", "--cpu-threads", "2"], "--batch-size must be >= 1, got 0"),
    (["evaluate", "model.keras", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["export", "--weights", "model.h5"], "--weights must be a .keras file"),
    (["predict", "cat.png", "--top-k", "11"], "--top-k must be in 1..10, got 11"),
])
def test_a_bad_flag_is_named_as_typed_before_tensorflow_is_imported(args, message, tmp_path):
    probe = ("import sys\nfrom keras_alexnet import cli\n"
             f"status = cli.main({args!r})\n"
             "print(status, 'tensorflow' in sys.modules, 'jax' in sys.modules, "
             "'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.split() == ["2", "False", "False", "False"], result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("keras-alexnet: error: ") and message in line
    assert "TrainConfig" not in line
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["train", "--output-dir", "{tmp}/notes.txt"], "the run directory {tmp}/notes.txt is a file"),
    (["train", "--output-dir", "/proc/keras_alexnet/run"],
     "cannot create the run directory /proc/keras_alexnet/run: "),
    (["train", "--saved-models-dir", "{tmp}/notes.txt"],
     "cannot create the model directory {tmp}/notes.txt/alexnet_cifar10: Not a directory"),
    (["export", "--weights", "{tmp}/model.keras", "--saved-models-dir", "{tmp}/notes.txt"],
     "cannot create the model directory {tmp}/notes.txt/alexnet_cifar10: Not a directory"),
    (["export", "--weights", "{tmp}/model.keras", "--saved-models-dir", "/proc/keras_alexnet"],
     "cannot create the model directory /proc/keras_alexnet/alexnet_cifar10: "),
])
def test_a_place_that_cannot_be_written_is_named_before_anything_is_loaded(args, message,
                                                                           tmp_path):
    """In a fresh process, before TensorFlow is imported or the data read (the data directory
    named does not exist, and the model file is not one): one line, nothing written."""
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "model.keras").write_text("not a model")
    args = [a.format(tmp=tmp_path) for a in args]
    if args[0] == "train":
        args += ["--data-dir", str(tmp_path / "missing")]
        args += [] if "--output-dir" in args else ["--output-dir", str(tmp_path / "run")]
    before = sorted(os.listdir(tmp_path))
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("keras-alexnet: error: ") and message.format(tmp=tmp_path) in line
    assert sorted(os.listdir(tmp_path)) == before
