"""The `keras-alexnet` command in fresh processes: a small run, evaluation, and bad input."""

import dataclasses
import json
import os
import pickle
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_MODEL, TINY_NETWORK, run_cli, with_distinct_weights, write_cifar_dir

from keras_alexnet import AlexNet  # noqa: F401  (registers the package's classes with Keras)
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.models.build import build_model
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
                     *TINY_NETWORK, "--output-dir", root / "run", "--saved-models-dir",
                     root / "saved_models", "--verbose", "0")
    return root, result


@pytest.mark.slow
def test_train_writes_the_run_and_the_export(trained, small_data):
    """The printed accuracy is metrics.json's, which is the exported model's on the test set
    (counted here from the SavedModel's own predictions); the flags reached config.json and the
    learning-rate schedule."""
    root, result = trained
    assert result.returncode == 0, result.stderr
    with open(root / "run" / "metrics.json") as file:
        metrics = json.load(file)
    assert f"test accuracy {metrics['test_accuracy']:.4f}," in result.stdout
    export = root / "saved_models" / "alexnet_cifar10"
    assert f"SavedModel: {export / '1'}" in result.stdout.splitlines()
    data = load_cifar10(small_data)
    exported = model_probabilities(str(export), data.x_test)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(exported.argmax(1) == data.y_test))
    true_class = exported[np.arange(len(data.y_test)), data.y_test]
    assert metrics["test_loss"] == pytest.approx(-np.mean(np.log(true_class)), rel=1e-5)
    assert metrics["epochs_completed"] == 2
    with open(root / "run" / "config.json") as file:
        config = json.load(file)
    assert (config["train_subset"], config["batch_size"], config["lr_decay_epoch"]) == (64, 32, 1)
    history = read_history(str(root / "run" / "history.csv"))
    assert history["epoch"] == [0, 1]
    assert history["learning_rate"] == [pytest.approx(0.01), pytest.approx(0.001)]


def model_probabilities(path, images):
    """Class probabilities of a `.keras` file or SavedModel, loaded here, not by the package."""
    if path.endswith(".keras"):
        logits = keras.saving.load_model(path).predict(images.astype("float32"), verbose=0)
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    versions = sorted(os.listdir(path), key=int)
    serve = tf.saved_model.load(os.path.join(path, versions[-1])).signatures["serving_default"]
    return serve(images=tf.constant(images))["probabilities"].numpy()


@pytest.mark.slow
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


@pytest.mark.slow
def test_evaluate_of_a_runs_checkpoint_uses_the_runs_data_by_default(trained, small_data,
                                                                     run_cli_here):
    root, _ = trained
    result = run_cli_here("evaluate", root / "run" / "best.keras", "--json")
    assert result.returncode == 0, result.stderr
    confusion = np.array(json.loads(result.stdout)["confusion_matrix"])
    assert confusion.sum() == len(load_cifar10(small_data).y_test) == 100  # not the 10,000


@pytest.mark.slow
def test_evaluate_of_the_export_equals_the_final_model(trained, small_data, run_cli_here):
    root, _ = trained
    with open(root / "run" / "metrics.json") as file:
        final = json.load(file)
    result = run_cli_here("evaluate", root / "saved_models" / "alexnet_cifar10", "--data-dir",
                          small_data, "--json")
    assert json.loads(result.stdout)["confusion_matrix"] == final["confusion_matrix"]


@pytest.mark.slow
def test_evaluate_ten_crop_averages_the_ten_padded_crops(small_data, run_cli_here, tmp_path):
    """`--test-time-augmentation ten_crop` gives the metrics of the mean probabilities of the
    ten 32×32 crops (four corners and centre of each image zero-padded by 2, and their mirrors),
    computed here, for a model whose crops get clearly different answers."""
    data = load_cifar10(small_data)
    path = str(tmp_path / "distinct.keras")
    with_distinct_weights(build_model(seed=0, batch_norm=True, **TINY_MODEL), data.x_test).save(
        path)
    ten = json.loads(run_cli_here("evaluate", path, "--data-dir", small_data, "--json",
                                  "--test-time-augmentation", "ten_crop", "--ten-crop-pad",
                                  "2").stdout)
    padded = np.pad(data.x_test, ((0, 0), (2, 2), (2, 2), (0, 0)))
    views = [padded[:, top:top + 32, left:left + 32]
             for top, left in ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2))]
    views += [view[:, :, ::-1] for view in views]
    mean = np.mean([model_probabilities(path, np.ascontiguousarray(view)) for view in views], 0)
    assert ten["test_accuracy"] == pytest.approx(np.mean(mean.argmax(1) == data.y_test))
    true = mean[np.arange(len(data.y_test)), data.y_test]
    assert ten["test_loss"] == pytest.approx(-np.mean(np.log(true)), rel=1e-5)
    corner = np.mean([model_probabilities(path, np.ascontiguousarray(view))
                      for view in views[:4] + views[:1] + views[5:9] + views[5:6]], 0)
    assert np.abs(corner - mean).max() > 0.01  # a crop misplaced would show


@pytest.mark.slow
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


@pytest.mark.slow
def test_train_recipe_with_overrides(small_data, tmp_path):
    result = run_cli("train", "--recipe", "tweaked", "--conv1-stride", "2", "--epochs", "3",
                     "--warmup-epochs", "2", "--data-dir", small_data, "--train-subset", "64",
                     "--validation-size", "100", "--batch-size", "32", *TINY_NETWORK,
                     "--output-dir", tmp_path / "run", "--no-export", "--no-figures", "--verbose",
                     "0")
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


@pytest.mark.slow
def test_a_short_run_of_a_recipe_scales_its_warm_up_and_says_so(small_data, tmp_path):
    result = run_cli("train", "--recipe", "tweaked", "--epochs", "1", "--conv1-stride", "2",
                     "--data-dir", small_data, "--train-subset", "64", "--validation-size", "100",
                     "--batch-size", "32", *TINY_NETWORK, "--output-dir", tmp_path / "run",
                     "--no-export", "--no-figures", "--verbose", "0")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "keras-alexnet: warmup_epochs=0.1, the tweaked recipe's share of the run "
        "(2 of its 20 epochs)"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["warmup_epochs"] == pytest.approx(2 / 20)
    assert read_history(str(tmp_path / "run" / "history.csv"))["epoch"] == [0]


@pytest.mark.slow
def test_a_short_run_of_the_fast_recipe_trains_the_narrow_model_on_its_one_cycle(small_data,
                                                                                 tmp_path):
    result = run_cli("train", "--recipe", "fast", "--epochs", "2", "--data-dir", small_data,
                     "--train-subset", "64", "--validation-size", "100", "--batch-size", "32",
                     "--output-dir", tmp_path / "run", "--no-export", "--no-figures",
                     "--verbose", "0")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # 128 images: too short a run to pay for the precision probe.
    assert metrics["performance"]["mixed_precision"] == "float32"
    assert metrics["test_time_augmentation"] == "flip"
    model = keras.saving.load_model(str(tmp_path / "run" / "best.keras"))
    assert [model.backbone.get_layer(name).filters for name in ("conv1", "conv2", "conv3", "conv4",
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
    (["train", "--recipe", "fastest"], "argument --recipe: invalid choice: 'fastest'"),
    (["train", "--recipe", "fast", "--preset", "fast"],
     "--preset is the old spelling of --recipe: give only --recipe"),
    # without huggingface_hub: "needs huggingface_hub"; with it (the demo's Gradio brings it)
    # and no network: "could not be fetched"
    (["export", "hf://keras/alexnet_missing"], "preset 'hf://keras/alexnet_missing' "),
    (["evaluate", "{tmp}/no_preset"], "no model at"),
    (["train", "--recipe", "tweaked", "--epochs", "1", "--warmup-epochs", "2"],
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


@pytest.mark.slow
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
    (["train", "--recipe", "fast", "--width-multiplier", "0"], "--width-multiplier must be in"),
    (["train", "--batch-size", "0", "--cpu-threads", "2"], "--batch-size must be >= 1, got 0"),
    (["evaluate", "model.keras", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["export", "model.h5"], "the model must be a .keras file"),
    (["predict", "cat.png", "--top-k", "11"], "--top-k must be in 1..10, got 11"),
    (["predict", "cat.png", "--server", "localhost:8501"], "--server must be an http:// or"),
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


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["train", "--output-dir", "{tmp}/notes.txt"], "the run directory {tmp}/notes.txt is a file"),
    (["train", "--output-dir", "/proc/keras_alexnet/run"],
     "cannot create the run directory /proc/keras_alexnet/run: "),
    (["train", "--saved-models-dir", "{tmp}/notes.txt"],
     "cannot create the model directory {tmp}/notes.txt/alexnet_cifar10: Not a directory"),
    (["export", "{tmp}/model.keras", "--saved-models-dir", "{tmp}/notes.txt"],
     "cannot create the model directory {tmp}/notes.txt/alexnet_cifar10: Not a directory"),
    (["export", "{tmp}/model.keras", "--saved-models-dir", "/proc/keras_alexnet"],
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


def test_train_help_describes_every_flag_as_it_is_typed(capsys, monkeypatch):
    """`train --help` has, for every `TrainConfig` field, its flag with the field's description
    (taken from the docstring: one that stopped being found would leave it empty), its default
    as typed (`none`, `true`, `~/…`), and no Markdown backticks."""
    from keras_alexnet import cli
    from keras_alexnet.config import DEFAULT_COMPILATION_CACHE, TrainConfig

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert "`" not in text and os.path.expanduser("~") + os.sep not in text
    # Each option's entry: its invocation, then its help (on the same line or the next ones).
    entries = re.split(r"\n(?=  -)", text.split("options:", 1)[1])
    helps = {}
    for entry in filter(str.strip, entries):
        invocation, _, help_text = entry.strip().partition("  ")
        helps[invocation.split()[0].rstrip(",")] = (invocation.strip(),
                                                    " ".join(help_text.split()))
    for field in dataclasses.fields(TrainConfig):
        invocation, help_text = helps["--" + field.name.replace("_", "-")]
        description = help_text.split(" (default: ")[0]
        assert len(description) > 20 and "(default: " in help_text, field.name
    assert helps["--data-dir"][1].endswith("(default: none)")
    assert helps["--global-clipnorm"][0] == "--global-clipnorm GLOBAL_CLIPNORM"
    assert helps["--jit-compile"][0] == "--jit-compile {auto,true,false}"
    assert helps["--jit-compile"][1].endswith("(default: auto)")
    cache = helps["--compilation-cache-dir"][1]
    assert cache.endswith(f"(default: {cli.shown(DEFAULT_COMPILATION_CACHE)})")
    assert "none turns it off" in cache and "None" not in cache  # as typed
    assert cli.shown(os.path.join(os.path.expanduser("~"), ".cache", "x")) == "~/.cache/x"


def test_choice_flags_take_their_values_as_typed(tmp_path):
    from keras_alexnet import cli

    args = cli.build_parser().parse_args(["train", "--jit-compile", "false", "--verbose", "2",
                                          "--conv1-stride", "1", "--lr-schedule", "cosine"])
    args.check(args)
    assert (args.config.jit_compile, args.config.verbose) == (False, 2)
    assert (args.config.conv1_stride, args.config.lr_schedule) == (1, "cosine")
    with pytest.raises(cli.UserError, match="invalid choice: 'maybe'"):
        cli.build_parser().parse_args(["train", "--jit-compile", "maybe"])


def test_the_old_preset_flag_trains_the_recipe_and_says_the_new_spelling_once(capsys):
    from keras_alexnet import TrainConfig, cli

    args = cli.build_parser().parse_args(["train", "--preset", "fast", "--dropout", "0.3"])
    args.check(args)
    assert args.config == TrainConfig.from_recipe("fast", dropout=0.3)
    assert capsys.readouterr().err.splitlines() == [
        "keras-alexnet: --preset is deprecated: use --recipe fast (a preset is now a trained "
        "model)"]
