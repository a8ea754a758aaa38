"""`AlexNetImageClassifier`: the seed's and the paper's networks as its argument sets (the same
parameters and logits as the one-model classes), `compile()`'s defaults and `fit` on a tf.data
set, `predict` on raw images of any size, its config, and its files: a saved task loading in a
fresh process after `import keras_alexnet` (either import first), and `save_to_preset`."""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY_MODEL

from keras_alexnet.config import TrainConfig
from keras_alexnet.errors import ImageError
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.architectures import ArgumentSet, seed_network
from keras_alexnet.models.image_classifier import AlexNetImageClassifier
from keras_alexnet.models.paper_alexnet import PaperAlexNet
from keras_alexnet.training.optimizer import TorchSGD

# The seed network's parameter count as the seed blog's PyTorch model has it.
SEED_NETWORK_PARAMETERS = 23_272_266


def raw_images(count: int, side: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, side, side, 3)).astype("uint8")


def perturbed(model: keras.Model, seed: int = 5) -> keras.Model:
    """`model` with noise added to every weight: weights no fresh build has."""
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


def old_network(cls, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return cls(**kwargs)


def test_the_seed_network_is_an_argument_set_with_the_old_classs_parameters_and_logits():
    task = AlexNetImageClassifier.from_arguments("cifar", seed=0)
    old = old_network(AlexNet, seed=0)
    assert task.count_params() == old.count_params() == SEED_NETWORK_PARAMETERS
    images = raw_images(4)
    np.testing.assert_allclose(task.predict(images, verbose=0), old.predict(images, verbose=0),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("arguments", [dict(batch_norm=True, conv1_stride=1, **TINY_MODEL),
                                       dict(init="paper", dropout=0.1, **TINY_MODEL)])
def test_each_recipes_network_gives_the_old_classs_logits(arguments):
    task = AlexNetImageClassifier.from_arguments("cifar", seed=3, **arguments)
    old = old_network(AlexNet, seed=3, **arguments)
    images = raw_images(4, seed=1)
    assert task.count_params() == old.count_params()
    np.testing.assert_allclose(task.predict(images, verbose=0), old.predict(images, verbose=0),
                               rtol=0, atol=1e-6)


def test_the_paper_network_is_an_argument_set_with_the_old_classs_logits():
    arguments = dict(num_classes=7, groups=2, lrn=True)
    task = AlexNetImageClassifier.from_arguments("paper", image_shape=(67, 67, 3), seed=2,
                                                 **arguments)
    old = old_network(PaperAlexNet, input_shape=(67, 67, 3), seed=2, **arguments)
    images = raw_images(2, side=67)
    # the paper's layers by hand: 67 → conv1 11/4 padded 2 → 16 → pool 3/2 → 7 → pool → 3
    # → pool → 1
    convs = [(11, 3, 96, 1), (5, 96, 256, 2), (3, 256, 384, 1), (3, 384, 384, 2),
             (3, 384, 256, 2)]
    dense = [(256 * 1 * 1, 4096), (4096, 4096), (4096, 7)]
    wanted = (sum(k * k * inputs // groups * outputs + outputs
                  for k, inputs, outputs, groups in convs)
              + sum(inputs * outputs + outputs for inputs, outputs in dense))
    assert task.count_params() == old.count_params() == wanted
    np.testing.assert_allclose(task.predict(images, verbose=0), old.predict(images, verbose=0),
                               rtol=0, atol=1e-6)


def test_compile_sets_the_seed_recipes_optimizer_and_loss_and_fit_trains():
    keras.utils.set_random_seed(0)
    task = AlexNetImageClassifier.from_arguments("cifar", **TINY_MODEL)
    recipe = TrainConfig()
    assert isinstance(task.optimizer, TorchSGD)
    assert float(task.optimizer.learning_rate) == pytest.approx(recipe.learning_rate)
    assert task.optimizer.momentum == recipe.momentum
    images, labels = raw_images(32, seed=2), np.arange(32) % 10
    logits = task.predict(images, verbose=0)
    wanted = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=recipe.label_smoothing)(np.eye(10)[labels], logits)
    assert task.evaluate(images, labels, verbose=0)[0] == pytest.approx(float(wanted), rel=1e-4)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    before = task.get_layer("fc8").kernel.numpy()
    history = task.fit(dataset, epochs=8, verbose=0, shuffle=False)
    assert not np.array_equal(before, task.get_layer("fc8").kernel.numpy())
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_predict_takes_raw_images_of_any_size_through_the_test_view():
    base = seed_network(**TINY_MODEL)
    arguments = ArgumentSet(base.backbone, {**base.preprocessor, "test_crop_fraction": 0.5},
                            base.head)
    task = AlexNetImageClassifier.from_arguments(arguments, seed=0)
    large = raw_images(3, side=64)
    np.testing.assert_allclose(task.predict(large, verbose=0),
                               task.predict(large[:, 16:48, 16:48], verbose=0), atol=1e-6)
    np.testing.assert_allclose(task.predict(large[:, :32, :32], verbose=0),
                               task(large[:, :32, :32].astype("float32")), atol=1e-5)
    np.testing.assert_allclose(task.predict(tf.constant(large), verbose=0),
                               task.predict(large[:, 16:48, 16:48], verbose=0), atol=1e-6)


@pytest.mark.parametrize("images", [
    np.zeros((1, 32, 32, 4), "uint8"), np.zeros((1, 32, 32, 1), "uint8"),
    np.zeros((32, 32, 3), "uint8"), np.zeros((1, 1, 32, 32, 3), "uint8"),
    np.array([[["a"] * 3] * 32] * 32)[None],
], ids=["4 channels", "1 channel", "one image unbatched", "5 dimensions", "strings"])
def test_predict_refuses_an_array_that_is_no_batch_of_images_in_one_line(images):
    """Another channel count, rank or dtype is one `ImageError`: not Keras' shape errors, and
    not a grey image broadcast silently through the three channels' statistics."""
    classifier = AlexNetImageClassifier.from_arguments(
        "cifar", width_multiplier=0.25, dense_units=16, seed=0)
    with pytest.raises(ImageError, match=r"predict takes images as an array of shape \(images, "
                                         r"height, width, 3\) of numbers, got "):
        classifier.predict(images, verbose=0)


@pytest.mark.parametrize("side", [32, 48])
def test_predict_of_no_images_gives_no_rows(side):
    classifier = AlexNetImageClassifier.from_arguments(
        "cifar", width_multiplier=0.25, dense_units=16, num_classes=7, seed=0)
    assert classifier.predict(np.zeros((0, side, side, 3), "uint8"), verbose=0).shape == (0, 7)


def test_the_config_holds_every_argument_but_the_seed_and_rebuilds_the_task():
    task = AlexNetImageClassifier.from_arguments("cifar", seed=0, dropout=0.2, **TINY_MODEL)
    config = task.get_config()
    assert {"backbone", "preprocessor", "num_classes", "dense_units", "dropout",
            "dropout_before", "init"} <= set(config) and "seed" not in config
    rebuilt = AlexNetImageClassifier.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.preprocessor.mean == task.preprocessor.mean


def save_task(tmp_path) -> tuple[str, np.ndarray, np.ndarray]:
    task = perturbed(AlexNetImageClassifier.from_arguments("cifar", seed=0, **TINY_MODEL))
    path = str(tmp_path / "task.keras")
    task.save(path)
    images = raw_images(3, seed=4)
    np.save(tmp_path / "images.npy", images)
    return path, images, task.predict(images, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("imports", ["import keras_alexnet; import keras",
                                     "import keras; import keras_alexnet"])
def test_a_saved_task_loads_in_a_fresh_process_after_a_plain_import(tmp_path, imports):
    path, _, logits = save_task(tmp_path)
    code = (f"{imports}; import numpy as np; model = keras.saving.load_model({path!r}); "
            f"print(type(model).__name__); np.save({str(tmp_path / 'out.npy')!r}, "
            f"model.predict(np.load({str(tmp_path / 'images.npy')!r}), verbose=0))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "AlexNetImageClassifier"
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), logits, atol=1e-6)


def test_save_to_preset_writes_a_preset_that_loads_its_weights(tmp_path):
    task = perturbed(AlexNetImageClassifier.from_arguments("cifar", seed=0, **TINY_MODEL))
    images = raw_images(3, seed=6)
    assert task.save_to_preset(str(tmp_path / "preset")) == str(tmp_path / "preset")
    loaded = AlexNetImageClassifier.from_preset(str(tmp_path / "preset"))
    fresh = AlexNetImageClassifier.from_arguments("cifar", seed=0, **TINY_MODEL)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               task.predict(images, verbose=0), atol=1e-6)
    assert np.abs(fresh.predict(images, verbose=0) - task.predict(images, verbose=0)).max() > 1e-3


def test_build_classifier_builds_the_task_by_name_and_refuses_an_argument_it_does_not_take():
    from keras_alexnet.models.build import build_classifier

    images = raw_images(2)
    built = build_classifier("cifar", seed=1, **TINY_MODEL)
    assert type(built) is AlexNetImageClassifier
    np.testing.assert_array_equal(
        built.predict(images, verbose=0),
        AlexNetImageClassifier.from_arguments("cifar", seed=1, **TINY_MODEL).predict(images,
                                                                                     verbose=0))
    paper = build_classifier("paper", input_shape=(67, 67, 3), num_classes=3, seed=0)
    assert paper.input_shape == (None, 67, 67, 3) and paper.preprocessor.shorter_side == 77
    with pytest.raises(ValueError, match="the cifar network .* does not take groups"):
        build_classifier("cifar", groups=2)


def test_a_run_trains_the_task_with_its_data_sets_statistics(cifar_dir):
    from keras_alexnet.data.image_sets import load_run_data
    from keras_alexnet.training.fit_setup import build_trainer
    from keras_alexnet.training.performance import resolve

    config = TrainConfig(data_dir=cifar_dir, train_subset=64, validation_size=100, seed=4,
                         augmentation="pipeline", **TINY_MODEL)
    data = load_run_data(config)
    model, trainer = build_trainer(config, resolve(config), data, None)
    assert type(model) is AlexNetImageClassifier and trainer is model
    assert model.preprocessor.mean == [float(m) for m in data.stats.mean]
