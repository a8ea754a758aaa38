"""The deprecated spellings: one `FutureWarning` naming the replacement when user code builds
`AlexNet` or `PaperAlexNet` or loads a preset through them, none when a saved one is loaded;
`evaluate(ten_crop=)` warns and means `test_time_augmentation="ten_crop"`."""

import warnings

import numpy as np
import pytest
from conftest import TINY_MODEL

from keras_alexnet.evaluation import evaluate as evaluate_module
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.image_classifier import AlexNetImageClassifier
from keras_alexnet.models.paper_alexnet import PaperAlexNet


def future_warnings(build) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = build()
    return result, [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]


@pytest.mark.parametrize("build", [lambda: AlexNet(seed=0, **TINY_MODEL),
                                   lambda: PaperAlexNet(input_shape=(67, 67, 3), num_classes=3,
                                                        seed=0)])
def test_building_an_old_network_warns_once_naming_the_task(build):
    model, messages = future_warnings(build)
    assert len(messages) == 1
    assert messages[0].startswith(f"{type(model).__name__}(...) is deprecated: use "
                                  f"AlexNetImageClassifier.from_arguments(...)")


def test_an_old_network_rebuilt_from_its_config_does_not_warn():
    model, _ = future_warnings(lambda: AlexNet(seed=0, **TINY_MODEL))
    rebuilt, messages = future_warnings(lambda: AlexNet.from_config(model.get_config()))
    assert messages == [] and rebuilt.count_params() == model.count_params()


def test_an_old_classs_from_preset_warns_once_naming_the_tasks():
    model, messages = future_warnings(lambda: AlexNet.from_preset("alexnet_fast_cifar10"))
    assert messages == ["AlexNet.from_preset(...) is deprecated: use "
                        "AlexNetImageClassifier.from_preset(...); a preset is now a trained model"]
    assert type(model) is AlexNet


def test_evaluate_ten_crop_warns_and_means_the_ten_crop_augmentation(monkeypatch, cifar_dir):
    modes = []
    original = evaluate_module.test_time_augmented
    monkeypatch.setattr(evaluate_module, "test_time_augmented",
                        lambda function, mode, pad: modes.append(mode) or original(
                            function, mode, pad=pad))
    model = AlexNetImageClassifier.from_arguments("cifar", seed=0, **TINY_MODEL)
    _, messages = future_warnings(lambda: evaluate_module.evaluate(
        model, data_dir=cifar_dir, ten_crop=True))
    assert messages == ['evaluate(ten_crop=...) is deprecated: use '
                        'evaluate(test_time_augmentation="ten_crop"); a preset is now a trained '
                        'model']
    _, messages = future_warnings(lambda: evaluate_module.evaluate(
        model, data_dir=cifar_dir, test_time_augmentation="ten_crop"))
    assert messages == [] and modes == ["ten_crop", "ten_crop"]
    assert np.isfinite(evaluate_module.evaluate(model, data_dir=cifar_dir)["test_loss"])


def test_the_module_level_save_to_preset_warns_naming_the_method_and_still_saves(tmp_path):
    import keras_alexnet

    model = AlexNetImageClassifier.from_arguments("cifar", seed=0, **TINY_MODEL)
    model.set_weights([w * 1.5 for w in model.get_weights()])  # not a fresh build's weights
    path, messages = future_warnings(lambda: keras_alexnet.save_to_preset(
        model, str(tmp_path / "preset")))
    assert messages == ["keras_alexnet.save_to_preset(...) is deprecated: use "
                        "AlexNetImageClassifier.save_to_preset(...), a method of the model; a "
                        "preset is now a trained model"]
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    np.testing.assert_allclose(AlexNetImageClassifier.from_preset(path).predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)
