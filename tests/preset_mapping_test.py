"""The shipped presets (the one-model layout) through the task, the backbone and the
preprocessor: the old class's logits and features from the mapped weights, the statistics of
the preset's own config, the list on each class, and a preset of another model refused."""

import json
import os
import warnings

import h5py
import keras
import numpy as np
import pytest
from conftest import assert_holds_stored_weights

from keras_alexnet.errors import ModelError
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.backbone import AlexNetBackbone
from keras_alexnet.models.catalogue import SHIPPED_DIR
from keras_alexnet.models.image_classifier import AlexNetImageClassifier
from keras_alexnet.models.preprocessor import AlexNetImageClassifierPreprocessor

SHIPPED = ["alexnet_fast_cifar10", "alexnet_long_cifar10"]


def cifar_like_images(count: int = 6) -> np.ndarray:
    """Smooth random 32×32 images (blobs of colour, as photographs are, not noise)."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (count, 4, 4, 3)).astype("float32")
    return np.clip(np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)
                   + rng.normal(0, 8, (count, 32, 32, 3)), 0, 255).astype("uint8")


def old_preset(name: str) -> keras.Model:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return AlexNet.from_preset(name)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_preset_gives_the_old_classs_logits_through_the_task(name):
    images = cifar_like_images()
    task = AlexNetImageClassifier.from_preset(name)
    old = old_preset(name)
    assert task.count_params() == old.count_params()
    assert_holds_stored_weights(task, os.path.join(SHIPPED_DIR, name, "model.weights.h5"))
    np.testing.assert_allclose(task.predict(images, verbose=0), old.predict(images, verbose=0),
                               rtol=0, atol=1e-5)


def test_the_backbone_of_a_shipped_preset_gives_the_old_networks_features():
    images = cifar_like_images()
    old = old_preset("alexnet_fast_cifar10")
    wanted = keras.Model(old.input, old.get_layer("conv5_pool").output).predict(images,
                                                                                verbose=0)
    backbone = AlexNetBackbone.from_preset("alexnet_fast_cifar10")
    preprocessor = AlexNetImageClassifierPreprocessor.from_preset("alexnet_fast_cifar10")
    np.testing.assert_allclose(backbone.predict(np.asarray(preprocessor(images)), verbose=0),
                               wanted, rtol=0, atol=1e-5)
    assert np.abs(wanted).max() > 0  # features, not a dead network
    stored = []  # the preset's arrays, read with h5py: each convolution's is one of them
    with h5py.File(os.path.join(SHIPPED_DIR, "alexnet_fast_cifar10", "model.weights.h5")) as file:
        file.visititems(lambda name, item: stored.append(item[()].astype("float32"))
                        if isinstance(item, h5py.Dataset) else None)
    for weight in backbone.weights:
        values = keras.ops.convert_to_numpy(weight)
        assert any(array.shape == values.shape and np.array_equal(array, values)
                   for array in stored), weight.path


def test_the_preprocessor_of_a_shipped_preset_has_its_configs_statistics():
    with open(os.path.join(SHIPPED_DIR, "alexnet_long_cifar10", "config.json")) as file:
        config = json.load(file)["config"]
    preprocessor = AlexNetImageClassifierPreprocessor.from_preset("alexnet_long_cifar10")
    assert preprocessor.mean == config["mean"] and preprocessor.std == config["std"]
    assert preprocessor.image_shape == (32, 32, 3) and preprocessor.test_crop_fraction is None


def test_each_class_lists_the_shipped_presets():
    on_disk = sorted(os.listdir(SHIPPED_DIR))
    assert on_disk == SHIPPED
    for cls in (AlexNetImageClassifier, AlexNetBackbone, AlexNetImageClassifierPreprocessor):
        assert sorted(cls.presets) == on_disk
        assert cls.presets["alexnet_fast_cifar10"]["parameter_count"] == 1_882_218


def test_a_preset_of_another_model_is_refused_in_one_line(tmp_path):
    AlexNetImageClassifier.from_arguments("cifar", width_multiplier=0.25, dense_units=16,
                                          seed=0).save_to_preset(str(tmp_path / "other"))
    with open(tmp_path / "other" / "config.json", "w") as file:  # every file there but this
        json.dump({"class_name": "ResNet", "registered_name": "somewhere>ResNet",
                   "config": {}}, file)
    for load in (AlexNetImageClassifier.from_preset, AlexNetBackbone.from_preset,
                 AlexNetImageClassifierPreprocessor.from_preset):
        with pytest.raises(ModelError, match="'ResNet', not an AlexNet classifier"):
            load(str(tmp_path / "other"))


def test_a_task_as_one_model_computes_the_same_and_exports_the_same_probabilities():
    from conftest import TINY_MODEL

    from keras_alexnet.models.preset_mapping import as_one_model
    from keras_alexnet.serving.pixel_model import pixel_model

    task = AlexNetImageClassifier.from_arguments("cifar", seed=0, batch_norm=True, **TINY_MODEL)
    rng = np.random.default_rng(3)
    task.set_weights([w + rng.normal(0, 0.05, w.shape).astype(w.dtype)
                      for w in task.get_weights()])  # weights no fresh build has
    images = cifar_like_images()
    logits = task.predict(images, verbose=0)
    one = as_one_model(task)
    np.testing.assert_allclose(one.predict(images, verbose=0), logits, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(one.get_layer("conv1").kernel.numpy(),
                                  task.backbone.get_layer("conv1").kernel.numpy())
    wanted = np.exp(logits - logits.max(axis=1, keepdims=True))
    wanted /= wanted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(pixel_model(task).predict(images, verbose=0), wanted, atol=1e-5)
