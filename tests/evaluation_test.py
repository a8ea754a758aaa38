"""Evaluation: test metrics and the paper's 10-crop averaging, for the CIFAR and any model."""

import json
import re
import zipfile

import keras
import numpy as np
import pytest
from conftest import with_distinct_weights

from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.errors import ModelError

# Modules, not names: pytest would collect `test_metrics` and `test_time_augmented` as tests.
from keras_alexnet.evaluation import metrics as evaluation_metrics
from keras_alexnet.evaluation import test_time
from keras_alexnet.evaluation.evaluate import evaluate, evaluate_dataset
from keras_alexnet.evaluation.metrics import predict_probabilities
from keras_alexnet.evaluation.test_time import ten_crop_probabilities, ten_crops
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.build import build_model
from keras_alexnet.models.model_files import load_keras_model


def test_test_metrics_counts_and_averages():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    metrics = evaluation_metrics.test_metrics(probabilities, np.array([0, 1, 1, 2]),
                                              ["a", "b", "c"])
    assert metrics["test_accuracy"] == 0.75
    assert metrics["test_loss"] == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.4, 0.6])))
    assert metrics["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert metrics["per_class_accuracy"] == {"a": 1.0, "b": 0.5, "c": 1.0}


def test_top5_accuracy_is_whether_the_true_class_is_among_the_five_most_probable():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(12), size=500)
    labels = rng.integers(0, 12, size=500)
    metrics = evaluation_metrics.test_metrics(probabilities, labels, [str(i) for i in range(12)])
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    expected = np.mean([label in row for label, row in zip(labels, top5)])
    assert 0.3 < expected < 0.6  # neither always nor never: the check can fail
    assert metrics["test_top5_accuracy"] == pytest.approx(expected)
    assert metrics["test_top5_error"] == pytest.approx(1 - expected)
    assert metrics["test_error"] == pytest.approx(1 - metrics["test_accuracy"])
    five = evaluation_metrics.test_metrics(probabilities[:, :5], labels % 5, list("abcde"))
    assert "test_top5_accuracy" not in five  # always 1 with five classes: not reported


def test_ten_crop_test_time_augmentation_is_the_ten_crops_of_the_padded_image():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 8, 8, 3)).astype("float32")
    weights = rng.normal(size=(8 * 8 * 3, 4))

    def probabilities_of(batch):  # a model that sees every pixel where it is
        logits = batch.reshape(len(batch), -1) @ weights / 500
        return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)

    padded = np.zeros((3, 12, 12, 3), "float32")
    padded[:, 2:10, 2:10] = images
    crops = [padded[:, top:top + 8, left:left + 8]
             for top, left in ((0, 0), (0, 4), (4, 0), (4, 4), (2, 2))]
    expected = np.mean([probabilities_of(c) for c in crops + [c[:, :, ::-1] for c in crops]], 0)
    augmented = test_time.test_time_augmented(probabilities_of, "ten_crop", pad=2)
    np.testing.assert_allclose(augmented(images), expected, rtol=1e-5)


def test_probabilities_do_not_depend_on_the_inference_batch_size():
    """The run's validation and test batches (`eval_batch_size`, 1,000) give what the training
    batch, 128, gives: inference has no batch statistics."""
    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3)).astype(np.uint8)
    model = with_distinct_weights(build_model(seed=0, batch_norm=True), images)
    big = predict_probabilities(model, images, batch_size=1000)
    logits = np.concatenate([keras.ops.convert_to_numpy(model(images[i:i + 128].astype("float32")))
                             for i in range(0, 300, 128)]).astype(np.float64)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    # The CPU's convolution kernels sum in a batch-size-dependent order: float32 rounding only
    # (up to ~1e-4 here; batch statistics would move the probabilities by ~1e-1).
    np.testing.assert_allclose(big, softmax, atol=5e-4)
    np.testing.assert_array_equal(big.argmax(1), softmax.argmax(1))
    assert big.max(1).min() < 0.5 < big.max(1).max()  # distinct predictions, not all ≈ 0.1


def test_ten_crops_are_the_corners_the_centre_and_their_mirrors():
    images = np.arange(2 * 7 * 9 * 1).reshape(2, 7, 9, 1)
    crops = list(ten_crops(images, 4))
    expected = [images[:, :4, :4], images[:, :4, 5:], images[:, 3:, :4], images[:, 3:, 5:],
                images[:, 1:5, 2:6]]
    expected += [patch[:, :, ::-1] for patch in expected]
    assert len(crops) == 10
    for got, want in zip(crops, expected):
        np.testing.assert_array_equal(got, want)


def test_ten_crops_refuses_a_crop_larger_than_the_image():
    with pytest.raises(ValueError, match="larger than the 7×9 images"):
        next(ten_crops(np.zeros((1, 7, 9, 3)), 8))


@pytest.mark.slow
def test_ten_crop_evaluate_is_the_mean_of_the_ten_single_crop_predictions(cifar_dir):
    x_test, y_test = load_cifar10(cifar_dir).x_test, load_cifar10(cifar_dir).y_test
    model = with_distinct_weights(build_model(seed=0, batch_norm=True), x_test)
    padded = np.pad(x_test, [(0, 0), (4, 4), (4, 4), (0, 0)])
    single = []
    for top, left in ((0, 0), (0, 8), (8, 0), (8, 8), (4, 4)):
        crop = padded[:, top:top + 32, left:left + 32]
        single += [predict_probabilities(model, crop),
                   predict_probabilities(model, crop[:, :, ::-1])]
    mean = np.mean(single, axis=0)
    np.testing.assert_allclose(predict_probabilities(model, padded[:, 4:36, 4:36]),
                               predict_probabilities(model, x_test), rtol=1e-6)  # centre = image
    got = ten_crop_probabilities(lambda x: predict_probabilities(model, x), padded, 32)
    np.testing.assert_allclose(got, mean, rtol=1e-5, atol=1e-7)
    assert np.abs(got - single[8]).max() > 0.05  # the crops disagree: the mean is a real mean
    metrics = evaluate(model, data_dir=cifar_dir, test_time_augmentation="ten_crop")
    wanted = evaluation_metrics.test_metrics(got, y_test)
    assert metrics["confusion_matrix"] == wanted["confusion_matrix"]
    assert metrics["test_loss"] == pytest.approx(wanted["test_loss"], rel=1e-6)
    assert metrics != evaluate(model, data_dir=cifar_dir)  # the crops do change the answer


def test_evaluate_dataset_ten_crop_on_batches():
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    rng = np.random.default_rng(0)
    batches = [(rng.uniform(0, 1, (3, 8, 8, 3)).astype(np.float32), np.array([0, 1, 1])),
               (rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32), np.array([1, 0]))]
    metrics = evaluate_dataset(model, batches, ["a", "b"], ten_crop=True, crop_size=6)
    expected = np.concatenate([
        np.mean([predict_probabilities(model, crop) for crop in ten_crops(images, 6)], axis=0)
        for images, _ in batches])
    wanted = evaluation_metrics.test_metrics(expected, np.array([0, 1, 1, 1, 0]), ["a", "b"])
    assert metrics["confusion_matrix"] == wanted["confusion_matrix"]
    assert metrics["test_loss"] == pytest.approx(wanted["test_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="needs crop_size"):
        evaluate_dataset(model, batches, ["a", "b"], ten_crop=True)


def test_flip_test_time_augmentation_averages_each_image_and_its_mirror():
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    model = with_distinct_weights(build_model(seed=0, batch_norm=True), images)
    single = test_time.test_time_augmented(lambda x: predict_probabilities(model, x), "none")
    flipped = test_time.test_time_augmented(lambda x: predict_probabilities(model, x), "flip")
    mirrored = np.stack([np.fliplr(image) for image in images])
    logits = [keras.ops.convert_to_numpy(model(x.astype("float32"), training=False))
              for x in (images, mirrored)]
    exponentials = [np.exp(z - z.max(1, keepdims=True)) for z in logits]
    softmax = [e / e.sum(1, keepdims=True) for e in exponentials]
    np.testing.assert_allclose(flipped(images), (softmax[0] + softmax[1]) / 2, atol=1e-6)
    np.testing.assert_allclose(single(images), softmax[0], atol=1e-6)
    assert np.abs(softmax[0] - softmax[1]).max() > 0.05  # a mirror changes the answer
    with pytest.raises(ValueError, match="test-time augmentation must be one of none, flip"):
        test_time.test_time_augmented(single, "rotate")


def rewritten(path, new_path, change):
    """A copy of the `.keras` archive at `path` whose `config.json` went through `change`."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(new_path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            target.writestr(item, data)
    return str(new_path)


@pytest.fixture(scope="module")
def small_keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "small.keras"
    build_model(width_multiplier=0.25, dense_units=64, seed=0).save(path)
    return str(path)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["config"].update(num_classes=100_000),
     "declares a network larger than the weights it stores"),
    (lambda c: c["config"].update(dense_units=10**6), "declares a network larger than the weights"),
    (lambda c: c["config"].update(dense_units="many"),
     "declares a network that cannot be built: dense_units must be an integer >= 1"),
    (lambda c: c.update(registered_name="keras_alexnet>Nothing", class_name="Nothing"),
     "is not a readable .keras model: "),
    (lambda c: c["config"].update(mean=5), "declares a network that cannot be built"),
    (lambda c: c["config"].update(conv1_stride=3), "conv1_stride must be 1 or 2, got 3"),
])
def test_a_keras_file_declaring_what_it_does_not_hold_is_refused_before_it_is_built(
        small_keras_file, tmp_path, change, message):
    """No model is built for a small file that declares a huge one (100,000 classes took 5.8 GB
    before), and a known class given bad arguments is one `ModelError`, not a `TypeError`."""
    path = rewritten(small_keras_file, tmp_path / "changed.keras", change)
    built = []
    original = AlexNet.__init__
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AlexNet, "__init__", lambda self, *a, **k: (built.append(k),
                                                                 original(self, *a, **k))[1])
        with pytest.raises(ModelError, match=re.escape(message)):
            load_keras_model(path)
    assert built == [] or "declares" not in message
    assert load_keras_model(small_keras_file).count_params() == build_model(
        width_multiplier=0.25, dense_units=64).count_params()


def test_a_keras_file_that_is_not_a_zip_archive_is_named_as_such(tmp_path):
    (tmp_path / "text.keras").write_text("not a zip")
    with pytest.raises(ModelError, match=r"text.keras is not a .keras model \(not a zip archive"):
        load_keras_model(str(tmp_path / "text.keras"))
