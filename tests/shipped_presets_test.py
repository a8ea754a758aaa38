"""The trained models that ship in the package: listed with their numbers, loaded by name,
deterministic, saved again bit for bit; with CIFAR-10 at hand, their test accuracy recomputed
over all 10,000 test images; and the command line without training."""

import hashlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import SHARED_CIFAR, assert_holds_stored_weights, run_cli, softmax
from PIL import Image

from keras_alexnet import AlexNet, AlexNetImageClassifier, PaperAlexNet
from keras_alexnet.models.catalogue import DEFAULT_PRESET, SHIPPED_DIR

SHIPPED = sorted(os.listdir(SHIPPED_DIR))
IMAGES = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("uint8")
needs_cifar = pytest.mark.skipif(not os.path.isdir(SHARED_CIFAR),
                                 reason="the real CIFAR-10 copy is not at ../shared")


def metadata_of(name):
    with open(os.path.join(SHIPPED_DIR, name, "metadata.json")) as file:
        return json.load(file)


def test_the_catalogue_lists_every_shipped_directory_with_its_numbers():
    assert len(SHIPPED) >= 2 and DEFAULT_PRESET in SHIPPED
    assert sorted(AlexNetImageClassifier.presets) == SHIPPED and PaperAlexNet.presets == {}
    for name in SHIPPED:
        listed = AlexNetImageClassifier.presets[name]
        assert listed == metadata_of(name)
        assert listed["description"] and 0.89 <= listed["test_accuracy"] <= 1.0
        assert listed["test_accuracy_single_view"] <= listed["test_accuracy"]
        weights = open(os.path.join(SHIPPED_DIR, name, "model.weights.h5"), "rb").read()
        assert hashlib.sha256(weights).hexdigest() == listed["weights_sha256"]


def test_the_default_preset_is_the_most_accurate():
    best = max(SHIPPED, key=lambda name: metadata_of(name)["test_accuracy"])
    assert DEFAULT_PRESET == best


def test_the_shipped_presets_fit_in_16_mb():
    total = sum(os.path.getsize(os.path.join(root, name))
                for root, _, names in os.walk(SHIPPED_DIR) for name in names)
    assert total <= 16 * 2 ** 20


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_preset_loads_predicts_deterministically_and_saves_again_bit_for_bit(
        name, tmp_path):
    model = AlexNetImageClassifier.from_preset(name)
    assert model.count_params() == metadata_of(name)["parameter_count"]
    assert_holds_stored_weights(model, os.path.join(SHIPPED_DIR, name, "model.weights.h5"))
    first = model.predict(IMAGES, verbose=0)
    again = AlexNetImageClassifier.from_preset(name)
    np.testing.assert_array_equal(again.predict(IMAGES, verbose=0), first)
    model.save_to_preset(str(tmp_path / "again"), class_names=metadata_of(name)["class_names"])
    again = AlexNetImageClassifier.from_preset(str(tmp_path / "again"))
    for ours, theirs in zip(model.weights, again.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert json.load(open(tmp_path / "again" / "metadata.json"))["class_names"] == \
        metadata_of(name)["class_names"]


def flip_averaged_accuracy(model, x, y):
    """Accuracy of the argmax of each image's and its mirror image's mean softmax, in NumPy."""
    single = softmax(model.predict(x, batch_size=1000, verbose=0))
    mirrored = softmax(model.predict(x[:, :, ::-1], batch_size=1000, verbose=0))
    return (single.argmax(1) == y).mean(), (((single + mirrored) / 2).argmax(1) == y).mean()


@needs_cifar
@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_presets_test_accuracy_is_its_metadatas(name):
    from keras_alexnet.data.cifar10 import load_cifar10

    data = load_cifar10(SHARED_CIFAR)
    assert len(data.x_test) == 10_000
    metadata = metadata_of(name)
    assert metadata["test_time_augmentation"] == "flip"
    classifier = AlexNetImageClassifier.from_preset(name)
    single, flipped = flip_averaged_accuracy(classifier, data.x_test, data.y_test)
    assert single == pytest.approx(metadata["test_accuracy_single_view"], abs=0.0005)
    assert flipped == pytest.approx(metadata["test_accuracy"], abs=0.0005)


def png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_predict_without_a_model_uses_the_default_preset_and_says_so(tmp_path):
    paths = []
    for index, image in enumerate(IMAGES[:3]):
        paths.append(tmp_path / f"image{index}.png")
        paths[-1].write_bytes(png(image))
    result = run_cli("predict", *paths, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count(f"no --model: using the shipped preset {DEFAULT_PRESET}") == 1
    classifier = AlexNetImageClassifier.from_preset(DEFAULT_PRESET)
    probabilities = softmax(classifier.predict(IMAGES[:3], verbose=0))
    names = metadata_of(DEFAULT_PRESET)["class_names"]
    for answer, expected in zip(json.loads(result.stdout), probabilities):
        (top,) = answer["top"]
        assert top["class_name"] == names[int(expected.argmax())]
        assert top["probability"] == pytest.approx(expected.max(), abs=1e-4)


@pytest.mark.slow
def test_export_of_a_preset_serves_its_probabilities(tmp_path):
    import tensorflow as tf

    name = SHIPPED[0]
    result = run_cli("export", name, "--saved-models-dir", tmp_path / "saved_models")
    assert result.returncode == 0, result.stderr
    exported = result.stdout.strip().rsplit(" ", 1)[-1]
    serve = tf.saved_model.load(exported).signatures["serving_default"]
    outputs = serve(images=tf.constant(IMAGES))
    expected = softmax(AlexNetImageClassifier.from_preset(name).predict(IMAGES, verbose=0))
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    names = metadata_of(name)["class_names"]
    assert [value.decode() for value in outputs["class_name"].numpy()] == \
        [names[i] for i in expected.argmax(axis=1)]


@needs_cifar
@pytest.mark.slow
def test_evaluate_a_preset_by_name_prints_its_metadatas_accuracy():
    name = SHIPPED[0]
    result = run_cli("evaluate", name, "--data-dir", SHARED_CIFAR, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["test_accuracy"] == pytest.approx(
        metadata_of(name)["test_accuracy_single_view"], abs=0.0005)


@pytest.mark.slow
def test_import_keras_alexnet_alone_lets_keras_load_an_earlier_releases_saved_network(tmp_path):
    path = str(tmp_path / "model.keras")
    AlexNet(width_multiplier=0.25, dense_units=16, seed=0).save(path)
    for imports in ("import keras_alexnet, keras", "import keras, keras_alexnet",
                    "import keras_alexnet, tensorflow, keras"):
        code = f"{imports}; print(type(keras.saving.load_model({path!r})).__name__)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0 and result.stdout.strip() == "AlexNet", (imports,
                                                                                result.stderr)
