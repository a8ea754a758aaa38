"""End to end: train one epoch, test, export, reload in a fresh process, same predictions."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_alexnet import performance, plots, train
from keras_alexnet.data import PixelStats, load_cifar10, split_train_validation
from keras_alexnet.evaluation import evaluate, predict_probabilities
from keras_alexnet.model import build_model
from keras_alexnet.performance import Accelerator
from keras_alexnet.run_dir import read_history

METRIC_KEYS = {"test_accuracy", "test_accuracy_single_view", "test_time_augmentation", "test_loss",
               "per_class_accuracy", "confusion_matrix",
               "best_val_accuracy", "epochs_completed", "train_seconds", "train_images_per_second",
               "phase_seconds", "performance"}


@pytest.fixture(scope="module")
def run(e2e_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as patch:  # the same expectations on any machine
        patch.setattr(performance, "find_accelerator", lambda: Accelerator("cpu", "CPU"))
        start = time.perf_counter()
        result = train(data_dir=e2e_data_dir, epochs=1, train_subset=512, validation_size=500,
                       output_dir=str(root / "run"), saved_models_dir=str(root / "saved_models"),
                       verbose=0)
        result.wall_seconds = time.perf_counter() - start
    return result, load_cifar10(e2e_data_dir)


def test_run_directory_holds_metrics_history_and_checkpoint(run):
    result, data = run
    with open(os.path.join(result.run_dir, "metrics.json")) as file:
        metrics = json.load(file)
    assert set(metrics) == METRIC_KEYS and metrics == result.metrics
    assert metrics["test_time_augmentation"] == "none"
    assert metrics["test_accuracy_single_view"] == metrics["test_accuracy"]
    confusion = np.array(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == len(data.x_test)
    assert metrics["test_accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert list(metrics["per_class_accuracy"])[:2] == ["airplane", "automobile"]
    assert metrics["epochs_completed"] == 1 and metrics["train_images_per_second"] > 0
    assert metrics["performance"] == {"mixed_precision": "float32", "jit_compile": "auto",
                                      "steps_per_execution": 1, "augmentation": "pipeline",
                                      "backend": "tensorflow", "device": "CPU"}
    history = read_history(os.path.join(result.run_dir, "history.csv"))
    assert history == result.history and history["epoch"] == [0]
    assert history["learning_rate"] == [pytest.approx(0.01)]
    assert metrics["best_val_accuracy"] == history["val_accuracy"][0]
    assert metrics["train_seconds"] == pytest.approx(history["epoch_seconds"][0])
    assert 0 < history["validation_seconds"][0] < history["epoch_seconds"][0]
    assert not os.path.exists(os.path.join(result.run_dir, "backup"))  # removed after a full run
    phases = result.phase_seconds
    assert list(phases) == ["data", "build", "fit", "test", "checkpoint_writes", "figures",
                            "export"]
    assert metrics["phase_seconds"] == {name: phases[name] for name in
                                        ("data", "build", "fit", "test", "checkpoint_writes")}
    whole = sum(seconds for name, seconds in phases.items() if name != "checkpoint_writes")
    assert whole == pytest.approx(result.wall_seconds, abs=0.1)  # the phases cover the call
    inside_fit = history["epoch_seconds"][0] + history["validation_seconds"][0]
    assert 0 < phases["checkpoint_writes"] < phases["fit"] - inside_fit  # best.keras: last epoch
    assert min(phases.values()) > 0
    with open(os.path.join(result.run_dir, "config.json")) as file:
        assert json.load(file)["train_subset"] == 512
    for name in plots.FIGURE_FILES.values():
        assert os.path.getsize(os.path.join(result.run_dir, name)) > 10_000


def test_training_moved_the_weights_and_checkpoint_is_the_model(run):
    result, data = run
    stats = PixelStats.from_images(split_train_validation(data, 500, 0, 512).x_train)
    initial = build_model(seed=0, mean=stats.mean, std=stats.std)  # train()'s own initialisation
    for name in ("conv1", "conv3", "fc6", "fc8"):
        before = initial.get_layer(name).kernel.numpy()
        after = result.model.get_layer(name).kernel.numpy()
        change = np.abs(after - before)
        # Four SGD steps at learning rate 0.01: every layer moved, none by more than a step size.
        assert 0 < change.max() < 0.1 * np.abs(before).max() + 0.05, name
        assert np.mean(change > 0) > 0.5, name
    checkpoint = keras.saving.load_model(os.path.join(result.run_dir, "best.keras"), safe_mode=True)
    images = data.x_test[:32]
    np.testing.assert_allclose(predict_probabilities(checkpoint, images),
                               predict_probabilities(result.model, images), atol=1e-6)
    assert checkpoint.optimizer.iterations.numpy() == 4  # 512 images / batch 128


def test_saved_model_predicts_like_keras_in_a_fresh_process(run, tmp_path):
    result, data = run
    assert result.export_dir.endswith(os.path.join("saved_models", "alexnet_cifar10", "1"))
    np.save(tmp_path / "images.npy", data.x_test[:64])
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "out = serve(images=tf.constant(np.load(sys.argv[2])))\n"
        "np.save(sys.argv[3], out['probabilities'].numpy())\n"
    )
    subprocess.run([sys.executable, "-c", script, result.export_dir, str(tmp_path / "images.npy"),
                    str(tmp_path / "out.npy")], check=True, capture_output=True, timeout=300)
    served = np.load(tmp_path / "out.npy")
    expected = predict_probabilities(result.model, data.x_test[:64])
    assert np.abs(served - expected).max() <= 1e-5


def test_evaluate_agrees_with_the_run_for_checkpoint_and_saved_model(run, e2e_data_dir):
    result, _ = run
    from_saved_model = evaluate(os.path.dirname(result.export_dir), data_dir=e2e_data_dir)
    assert from_saved_model["confusion_matrix"] == result.metrics["confusion_matrix"]
    assert from_saved_model["test_loss"] == pytest.approx(result.metrics["test_loss"], abs=1e-4)
    from_checkpoint = evaluate(os.path.join(result.run_dir, "best.keras"), data_dir=e2e_data_dir)
    assert from_checkpoint["confusion_matrix"] == result.metrics["confusion_matrix"]


def test_train_takes_a_config_or_a_preset_not_both(tmp_path):
    from keras_alexnet import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="either a TrainConfig or a preset"):
        train(TrainConfig(), preset="tweaked", output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
