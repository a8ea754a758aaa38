"""The JAX backend. Without TensorFlow: train() with on-device augmentation imports nothing from
TensorFlow, saves final.keras instead of exporting, and `keras-alexnet export` turns that
file into a SavedModel that predicts what JAX predicted. With TensorFlow: train() exports itself
(through a TensorFlow-backend process), the same way."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_cli

from keras_alexnet.run_dir import read_history

# Every test here trains or starts processes, each importing a backend of its own.
pytestmark = [pytest.mark.slow, pytest.mark.large]

pytest.importorskip("jax")

# Runs in a fresh process with KERAS_BACKEND=jax, TensorFlow made unimportable (as on the GPU
# machine, which has none), and reports what it saw.
SCRIPT = r"""
import importlib.abc, importlib.util, json, sys
import numpy as np

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
            raise ImportError(f"No module named {name!r} (hidden by the test)")

if sys.argv[5] == "hide-tensorflow":
    sys.meta_path.insert(0, NoTensorFlow())
    find_spec = importlib.util.find_spec
    hidden = ("tensorflow", "tensorflow_datasets")
    importlib.util.find_spec = lambda name, *a, **k: (
        None if name.split(".")[0] in hidden else find_spec(name, *a, **k))

import jax
import keras
import keras_alexnet
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.evaluation.metrics import predict_probabilities
from keras_alexnet.models.build import build_model

compilations, cache_hits = [], []  # programs XLA compiled or loaded from the cache
jax.monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kwargs: compilations.append(seconds)
    if event == "/jax/core/compile/backend_compile_duration" else None)
jax.monitoring.register_event_listener(
    lambda event, **kwargs: cache_hits.append(1)
    if event == "/jax/compilation_cache/cache_hits" else None)
build_model(seed=0, conv1_stride=1)
built = len(compilations)

data_dir, run_dir, saved_models_dir, out = sys.argv[1:5]
if len(sys.argv) > 8:  # killed as epoch argv[8] begins, after the backup of the one before
    import os
    from keras_alexnet.training import fit_setup, recipe

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == int(sys.argv[8]):
                os._exit(9)

    build = fit_setup.build_callbacks
    fit_setup.build_callbacks = lambda *args, **kwargs: [*build(*args, **kwargs), Kill()]
result = keras_alexnet.train(data_dir=data_dir, epochs=int(sys.argv[6]), train_subset=64,
                             validation_size=100, batch_size=32, output_dir=run_dir,
                             saved_models_dir=saved_models_dir, figures=False, verbose=0,
                             **json.loads(sys.argv[7]))
np.save(out + ".npy", predict_probabilities(result.model, load_cifar10(data_dir).x_test[:16]))
with open(out + ".json", "w") as file:
    json.dump({"backend": keras.backend.backend(),
               "tensorflow_modules": sorted(m for m in sys.modules if m.startswith("tensorflow")),
               "export_dir": result.export_dir, "performance": result.metrics["performance"],
               "epochs": result.history["epoch"], "build_compilations": built,
               "train_compilations": len(compilations) - built,
               "compile_seconds": sum(compilations), "cache_hits": len(cache_hits)}, file)
"""


def train_with_jax(root, data_dir, tensorflow: str, epochs: int, killed_at=None, **config):
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir), str(root / "run"), str(root / "sm"),
         str(root / "report"), tensorflow, str(epochs), json.dumps(config),
         *([] if killed_at is None else [str(killed_at)])],
        env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True, timeout=900)
    if killed_at is not None:
        assert process.returncode == 9, process.stderr[-3000:]
        return None, process.stderr
    assert process.returncode == 0, process.stderr[-3000:]
    with open(root / "report.json") as file:
        return json.load(file), process.stderr


@pytest.fixture(scope="module")
def cifar_files(tmp_path_factory):
    from conftest import write_cifar_dir

    data_dir = tmp_path_factory.mktemp("data") / "cifar-10-batches-py"
    write_cifar_dir(str(data_dir))
    return data_dir


@pytest.fixture(scope="module")
def jax_run(tmp_path_factory, cifar_files):
    root = tmp_path_factory.mktemp("jax")
    report, stderr = train_with_jax(root, cifar_files, "hide-tensorflow", epochs=2,
                                    compilation_cache_dir=str(root / "cache"))
    return root, cifar_files, report, stderr


def test_jax_training_imports_no_tensorflow_and_runs_on_the_device(jax_run):
    _, _, report, _ = jax_run
    assert report["backend"] == "jax"
    assert report["tensorflow_modules"] == []
    assert report["performance"]["augmentation"] == "device"
    assert report["epochs"] == [0, 1]


def test_jax_builds_without_compiling_per_weight_and_a_run_compiles_a_bounded_number(jax_run):
    """Counted with `jax.monitoring`: building the model used to compile a program per weight
    (17) and the optimizer one per momentum buffer (16); the steps are compiled once each."""
    _, _, report, _ = jax_run
    assert report["build_compilations"] <= 3
    # Measured: train, validation (one program: 100 images in one batch of 1,000), predict, and
    # seven one-off set-up programs inside Keras (seed and optimizer variables, metric results),
    # 10 in all; the bound leaves room for two more.
    assert report["train_compilations"] <= 12


def test_the_same_run_again_loads_its_programs_from_the_compilation_cache(jax_run, tmp_path):
    root, data_dir, first, _ = jax_run
    assert len(os.listdir(root / "cache")) >= 3  # the steps are in the cache
    again, _ = train_with_jax(tmp_path, data_dir, "hide-tensorflow", epochs=2,
                              compilation_cache_dir=str(root / "cache"))
    print("programs, loaded from the cache, seconds: first run", first["train_compilations"],
          first["cache_hits"], first["compile_seconds"], "; again", again["train_compilations"],
          again["cache_hits"], again["compile_seconds"])
    assert first["cache_hits"] == 0
    assert again["cache_hits"] == again["train_compilations"]  # every program of train()


def test_without_tensorflow_the_run_saves_final_keras_and_says_how_to_export(jax_run):
    root, _, report, stderr = jax_run
    assert report["export_dir"] is None and not (root / "sm").exists()
    assert os.path.isfile(root / "run" / "final.keras")
    assert f"run: keras-alexnet export {root / 'run' / 'final.keras'}" in stderr


def test_export_of_the_jax_model_serves_what_jax_predicted(jax_run):
    root, data_dir, _, _ = jax_run
    result = run_cli("export", root / "run" / "final.keras", "--saved-models-dir",
                     root / "exported")
    assert result.returncode == 0, result.stderr
    version = root / "exported" / "alexnet_cifar10" / "1"
    assert f"SavedModel: {version}" in result.stdout
    np.testing.assert_allclose(served_probabilities(version, data_dir),
                               np.load(root / "report.npy"),
                               atol=1e-5)


def served_probabilities(version_dir, data_dir):
    import tensorflow as tf

    from keras_alexnet.data.cifar10 import load_cifar10

    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    images = tf.constant(load_cifar10(str(data_dir)).x_test[:16])
    return serve(images=images)["probabilities"].numpy()


# The recipe techniques on the JAX backend's on-device path: batch norm, Cutout, label smoothing,
# Nesterov momentum, the cosine schedule; the export must serve the moving statistics.
TWEAKED = {"batch_norm": True, "cutout": 8, "label_smoothing": 0.1, "nesterov": True,
           "lr_schedule": "cosine", "dropout": 0.25, "global_clipnorm": None}


def test_jax_run_with_tensorflow_installed_exports_through_the_tensorflow_backend(
        tmp_path, cifar_files):
    report, _ = train_with_jax(tmp_path, cifar_files, "keep-tensorflow", epochs=1,
                               compilation_cache_dir=None, **TWEAKED)
    assert report["performance"]["augmentation"] == "device"
    assert report["export_dir"] == str(tmp_path / "sm" / "alexnet_cifar10" / "1")
    np.testing.assert_allclose(served_probabilities(report["export_dir"], cifar_files),
                               np.load(tmp_path / "report.npy"), atol=1e-5)


def test_the_input_pipeline_on_jax_is_refused_in_one_line(tmp_path, cifar_files):
    """The tf.data pipeline runs the augmentation layers on graph tensors, which the JAX backend's
    ops cannot take: a clear error before anything is written, not a traceback mid-run."""
    result = run_cli("train", "--augmentation", "pipeline", "--data-dir", cifar_files,
                     "--validation-size", "100",
                     "--output-dir", tmp_path / "run", "--saved-models-dir", tmp_path / "sm",
                     env={"KERAS_BACKEND": "jax"})
    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert line == ("keras-alexnet: error: TrainConfig.augmentation='pipeline' needs the "
                    "TensorFlow backend; on JAX the augmentation runs on the device ('device' "
                    "or 'auto')")
    assert not (tmp_path / "run").exists() and not (tmp_path / "sm").exists()


def test_a_killed_run_resumes_on_the_device_path_as_if_never_killed(jax_run, tmp_path):
    """JAX, on-device augmentation: killed as epoch 2 begins (after epoch 1's backup), the same
    command resumes at epoch 2 and ends with the predictions of the uninterrupted run."""
    root, data_dir, uninterrupted, _ = jax_run
    settings = {"compilation_cache_dir": str(root / "cache"), "checkpoint_every": 1}
    train_with_jax(tmp_path, data_dir, "hide-tensorflow", epochs=2, killed_at=1, **settings)
    assert (tmp_path / "run" / "backup" / "latest.weights.h5").is_file()
    assert read_history(str(tmp_path / "run" / "history.csv"))["epoch"] == [0]
    resumed, _ = train_with_jax(tmp_path, data_dir, "hide-tensorflow", epochs=2, **settings)
    assert resumed["epochs"] == [0, 1] and resumed["performance"]["augmentation"] == "device"
    np.testing.assert_allclose(np.load(tmp_path / "report.npy"), np.load(root / "report.npy"),
                               atol=1e-6)
