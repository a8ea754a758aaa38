"""End to end: train one epoch, test, export, reload in a fresh process, same predictions."""

import json
import os
import subprocess
import sys

import keras
import matplotlib.image
import numpy as np
import pytest
from conftest import TINY_MODEL

from keras_alexnet import TrainConfig, plots, train
from keras_alexnet.data.cifar10 import PixelStats, load_cifar10, split_train_validation
from keras_alexnet.evaluation.evaluate import evaluate
from keras_alexnet.evaluation.metrics import predict_probabilities
from keras_alexnet.models.build import build_classifier
from keras_alexnet.models.preset_mapping import as_one_model
from keras_alexnet.run_dir import read_history
from keras_alexnet.training import performance
from keras_alexnet.training.performance import Accelerator

pytestmark = pytest.mark.slow  # every test here trains or starts processes

METRIC_KEYS = {"test_accuracy", "test_accuracy_single_view", "test_time_augmentation", "test_loss",
               "test_error", "test_top5_accuracy", "test_top5_error",
               "test_top5_accuracy_single_view", "test_split", "test_size",
               "per_class_accuracy", "confusion_matrix",
               "best_val_accuracy", "epochs_completed", "train_seconds", "train_images_per_second",
               "phase_seconds", "performance"}


@pytest.fixture(scope="module")
def run(e2e_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as patch:  # the same expectations on any machine
        patch.setattr(performance, "find_accelerator", lambda: Accelerator("cpu", "CPU"))
        result = train(data_dir=e2e_data_dir, epochs=1, train_subset=512, validation_size=500,
                       **TINY_MODEL, output_dir=str(root / "run"),
                       saved_models_dir=str(root / "saved_models"), verbose=0)
    return result, load_cifar10(e2e_data_dir)


def test_run_directory_holds_metrics_history_and_checkpoint(run, tmp_path):
    result, data = run
    with open(os.path.join(result.run_dir, "metrics.json")) as file:
        metrics = json.load(file)
    assert set(metrics) == METRIC_KEYS and metrics == result.metrics
    assert metrics["test_time_augmentation"] == "none"
    assert metrics["test_accuracy_single_view"] == metrics["test_accuracy"]
    # The test metrics are those of the trained model's own predictions, counted here.
    logits = result.model.predict(data.x_test.astype("float32"), batch_size=1000, verbose=0)
    predicted = np.argmax(logits, axis=1)
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (data.y_test, predicted), 1)
    assert metrics["confusion_matrix"] == confusion.tolist()
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == data.y_test))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert metrics["test_top5_accuracy"] == pytest.approx(
        np.mean((top5 == data.y_test[:, None]).any(axis=1)))
    assert metrics["test_top5_accuracy_single_view"] == metrics["test_top5_accuracy"]
    assert (metrics["test_split"], metrics["test_size"]) == ("test", len(data.y_test))
    logits = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert metrics["test_loss"] == pytest.approx(
        -log_probabilities[np.arange(len(data.y_test)), data.y_test].mean(), rel=1e-5)
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
    assert not os.path.exists(os.path.join(result.run_dir, "backup"))  # removed after a full run
    phases = result.phase_seconds
    assert list(phases) == ["data", "build", "fit", "test", "checkpoint_writes", "figures",
                            "export"]
    assert metrics["phase_seconds"] == {name: phases[name] for name in
                                        ("data", "build", "fit", "test", "checkpoint_writes")}
    with open(os.path.join(result.run_dir, "config.json")) as file:
        saved = TrainConfig.from_dict(json.load(file))
    given = {"epochs": 1, "train_subset": 512, "validation_size": 500, "verbose": 0,
             "output_dir": result.run_dir, **TINY_MODEL}
    assert {name: getattr(saved, name) for name in given} == given
    assert saved.replace(**{name: getattr(TrainConfig(), name) for name in given},
                         data_dir=None, saved_models_dir="saved_models") == TrainConfig()
    # The figures show this run: its training images, its history, its confusion matrix (what
    # each figure shows of its data, tests/plots_test.py reads from the pixels).
    split = split_train_validation(data, 500, 0, 512)
    expected = {"samples": plots.sample_grid(split.x_train, split.y_train),
                "curves": plots.training_curves(history, TrainConfig().lr_schedule),
                "confusion": plots.confusion_matrix_figure(metrics["confusion_matrix"])}
    for name, figure in expected.items():
        path = plots.save_figure(figure, str(tmp_path / plots.FIGURE_FILES[name]))
        np.testing.assert_array_equal(
            matplotlib.image.imread(os.path.join(result.run_dir, plots.FIGURE_FILES[name])),
            matplotlib.image.imread(path), err_msg=name)


def test_training_moved_the_weights_and_checkpoint_is_the_model(run):
    result, data = run
    stats = PixelStats.from_images(split_train_validation(data, 500, 0, 512).x_train)
    initial = as_one_model(build_classifier(  # train()'s initialisation, its layers in one graph
        seed=0, mean=stats.mean, std=stats.std, **TINY_MODEL))
    trained = as_one_model(result.model)
    for name in ("conv1", "conv3", "fc6", "fc8"):
        before = initial.get_layer(name).kernel.numpy()
        after = trained.get_layer(name).kernel.numpy()
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


def test_train_takes_a_config_or_a_recipe_not_both(tmp_path):
    from keras_alexnet import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="either a TrainConfig or a recipe"):
        train(TrainConfig(), recipe="tweaked", output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


class BestIsTheFirstEpoch(keras.callbacks.Callback):
    """Makes epoch 0 the best by validation accuracy (0.9, then 0.1), before the callbacks that
    read it."""

    def on_epoch_end(self, epoch, logs=None):
        logs["val_accuracy"] = 0.9 if epoch == 0 else 0.1


def test_when_the_best_epoch_is_not_the_last_metrics_and_export_hold_the_last(cifar_dir, tmp_path,
                                                                              monkeypatch):
    """best.keras keeps the best epoch (0); metrics.json and the SavedModel are the model after
    the last epoch (as the seed reports it). TensorBoard's logs hold the epochs' losses."""
    from keras_alexnet.training import fit_setup
    from keras_alexnet.training.checkpoints import read_best_record

    build = fit_setup.build_callbacks
    monkeypatch.setattr(fit_setup, "build_callbacks",
                        lambda *args, **kwargs: [BestIsTheFirstEpoch(), *build(*args, **kwargs)])
    result = train(data_dir=cifar_dir, epochs=2, train_subset=64, validation_size=100,
                   batch_size=32, learning_rate=0.05, checkpoint_every=1, tensorboard=True,
                   **TINY_MODEL, figures=False, output_dir=str(tmp_path / "run"),
                   saved_models_dir=str(tmp_path / "sm"), verbose=0)
    best_path = str(tmp_path / "run" / "best.keras")
    assert read_best_record(best_path) == {"epoch": 0, "val_accuracy": 0.9}
    x_test, y_test = load_cifar10(cifar_dir).x_test, load_cifar10(cifar_dir).y_test
    last = predict_probabilities(result.model, x_test)
    best = predict_probabilities(keras.saving.load_model(best_path), x_test)
    assert np.abs(best - last).max() > 1e-4  # two different models
    served = evaluate(result.export_dir, data_dir=cifar_dir)
    assert result.metrics["test_loss"] == pytest.approx(served["test_loss"], rel=1e-5)
    assert result.metrics["test_accuracy"] == np.mean(last.argmax(1) == y_test)
    assert result.metrics["test_loss"] != pytest.approx(
        evaluate(best_path, data_dir=cifar_dir)["test_loss"], rel=1e-5)
    logged = tensorboard_scalars(tmp_path / "run" / "logs" / "train", "epoch_loss")
    assert logged == pytest.approx(result.history["loss"], rel=1e-5)


def tensorboard_scalars(folder, tag):
    """The values of scalar `tag`, in step order, from the TensorBoard event files in `folder`."""
    import tensorflow as tf

    values = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return [values[step] for step in sorted(values)]


@pytest.mark.filterwarnings("ignore:deterministic=True. TensorFlow had already started")
def test_train_leaves_the_process_as_it_found_it(cifar_dir, tmp_path):
    """A deterministic bfloat16 run sets op determinism, a dtype policy and the random seeds
    while it trains; after it, the process has its own settings again."""
    from tensorflow.python.framework import config as tensorflow_config

    numpy_state = np.random.get_state()
    train(data_dir=cifar_dir, epochs=1, train_subset=32, validation_size=100, batch_size=32,
          deterministic=True, mixed_precision="mixed_bfloat16", seed=5, **TINY_MODEL,
          figures=False, export=False, output_dir=str(tmp_path / "run"), verbose=0)
    assert keras.config.dtype_policy().name == "float32"
    assert not tensorflow_config.is_op_determinism_enabled()
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
