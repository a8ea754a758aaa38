"""On-device augmentation: the image store, the training wrapper, and train() with it."""

import json
import os

import keras
import numpy as np
import pytest
from conftest import TINY_MODEL

from keras_alexnet import train
from keras_alexnet.data.augment import build_augmentation
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.data.device_pipeline import DeviceAugmentedModel, ImageStore
from keras_alexnet.evaluation.metrics import predict_probabilities
from keras_alexnet.models.build import build_model
from keras_alexnet.serving.export import load_saved_model

EIGENVALUES, EIGENVECTORS = [100.0, 400.0, 9000.0], np.eye(3)


def images(count=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)


def test_store_looks_images_up_by_index_as_float32():
    stored = images()
    store = ImageStore(stored)
    got = keras.ops.convert_to_numpy(store(np.array([3, 0, 3, 23])))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, stored[[3, 0, 3, 23]].astype(np.float32))
    assert store.images.dtype == "uint8" and not store.trainable_weights


def test_store_refuses_non_uint8_images():
    with pytest.raises(ValueError, match="images must be uint8"):
        ImageStore(images().astype(np.float32))


def test_wrapper_weights_file_holds_the_model_but_not_the_images(tmp_path):
    model = build_model(seed=0)
    augmentation = build_augmentation(EIGENVALUES, EIGENVECTORS)
    trainer = DeviceAugmentedModel(model, images(2000), augmentation)
    trainer.save_weights(str(tmp_path / "trainer.weights.h5"))
    model.save_weights(str(tmp_path / "model.weights.h5"))
    sizes = [os.path.getsize(tmp_path / name)
             for name in ("trainer.weights.h5", "model.weights.h5")]
    assert sizes[0] - sizes[1] < 100_000  # 2000 images would be 6 MB
    other = DeviceAugmentedModel(build_model(seed=1), images(2000, seed=1),
                                 build_augmentation(EIGENVALUES, EIGENVECTORS))
    other.load_weights(str(tmp_path / "trainer.weights.h5"))
    for a, b in zip(model.weights, other.network.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_wrapper_augments_only_in_training():
    stored = images()
    model = build_model(dropout=0.0, seed=0)
    augmentation = build_augmentation(EIGENVALUES, EIGENVECTORS, seed=0)
    trainer = DeviceAugmentedModel(model, stored, augmentation)
    indices = np.arange(8)
    plain = keras.ops.convert_to_numpy(model(stored[:8].astype(np.float32), training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trainer(indices, training=False)), plain,
                               rtol=1e-5, atol=1e-6)
    augmented = keras.ops.convert_to_numpy(trainer(indices, training=True))
    assert np.abs(augmented - plain).max() > 1e-3


@pytest.mark.slow
def test_train_step_with_augmentation_compiles_under_xla():
    """Under XLA the step with the augmentation inside trains, and the augmentation is part of
    it: without it the same step gives other weights. (XLA draws other random numbers than
    TensorFlow's kernels, so the two are not compared.)"""
    stored = images(64)

    def trained(jit_compile, augmentation):
        trainer = DeviceAugmentedModel(build_model(dropout=0.0, seed=0, **TINY_MODEL), stored,
                                       augmentation)
        trainer.compile(optimizer="sgd", jit_compile=jit_compile,
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        trainer.fit(np.arange(64), np.arange(64) % 10, batch_size=32, epochs=1, shuffle=False,
                    verbose=0)
        assert trainer.jit_compile is jit_compile
        return keras.ops.convert_to_numpy(trainer.network.get_layer("fc8").kernel)

    initial = keras.ops.convert_to_numpy(
        build_model(dropout=0.0, seed=0, **TINY_MODEL).get_layer("fc8").kernel)
    augment = lambda: build_augmentation(EIGENVALUES, EIGENVECTORS, seed=0)  # noqa: E731
    xla = trained(True, augment())
    step = np.abs(xla - initial).max()
    assert np.isfinite(xla).all() and step > 0
    unaugmented = trained(True, keras.layers.Identity())
    assert np.abs(unaugmented - xla).max() > 0.05 * step


@pytest.mark.slow
def test_train_with_device_augmentation_checkpoints_and_exports_the_bare_model(cifar_dir, tmp_path):
    result = train(data_dir=cifar_dir, epochs=1, train_subset=64, validation_size=100,
                   batch_size=32, augmentation="device", **TINY_MODEL,
                   output_dir=str(tmp_path / "run"),
                   saved_models_dir=str(tmp_path / "sm"), figures=False, verbose=0)
    assert result.metrics["performance"]["augmentation"] == "device"
    checkpoint = keras.saving.load_model(str(tmp_path / "run" / "best.keras"), safe_mode=True)
    assert type(checkpoint).__name__ == "AlexNetImageClassifier"
    assert checkpoint.optimizer.iterations.numpy() == 2  # 64 images / batch 32
    assert not any("augment" in layer.name or "store" in layer.name for layer in checkpoint.layers)
    images = load_cifar10(cifar_dir).x_test[:8]
    served = load_saved_model(result.export_dir)(images=images)["probabilities"].numpy()
    np.testing.assert_allclose(served, predict_probabilities(result.model, images), atol=1e-5)
    assert not os.path.exists(tmp_path / "run" / "figure1_samples.png")  # figures=False
    with open(tmp_path / "run" / "history.csv") as file:
        assert len(file.read().splitlines()) == 2


@pytest.mark.slow
def test_mixed_precision_run_restores_the_global_policy(cifar_dir, tmp_path):
    result = train(data_dir=cifar_dir, epochs=1, train_subset=32, validation_size=100,
                   batch_size=32, mixed_precision="mixed_bfloat16", **TINY_MODEL, export=False,
                   figures=False,
                   output_dir=str(tmp_path / "run"), verbose=0)
    assert result.model.backbone.get_layer("conv2").compute_dtype == "bfloat16"
    assert result.model.get_layer("fc8").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    with open(tmp_path / "run" / "metrics.json") as file:
        assert json.load(file)["performance"]["mixed_precision"] == "mixed_bfloat16"


@pytest.mark.slow
def test_the_recipe_techniques_train_on_the_device_path():
    """Batch norm, Cutout, label smoothing, Nesterov and the cosine schedule in one
    `DeviceAugmentedModel` step: the weights and the moving statistics move."""
    from keras_alexnet import TrainConfig
    from keras_alexnet.training.losses import build_loss
    from keras_alexnet.training.optimizer import build_optimizer

    config = TrainConfig(batch_norm=True, cutout=8, label_smoothing=0.1, nesterov=True,
                         lr_schedule="cosine", epochs=2, global_clipnorm=None)
    model = build_model(batch_norm=True, seed=0, **TINY_MODEL)
    augmentation = build_augmentation(EIGENVALUES, EIGENVECTORS, seed=0, cutout=8,
                                      cutout_fill=(125.0, 123.0, 114.0))
    trainer = DeviceAugmentedModel(model, images(32), augmentation)
    trainer.compile(optimizer=build_optimizer(config, steps_per_epoch=2), loss=build_loss(config))
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.weights]
    trainer.fit(np.arange(32), np.arange(32) % 10, batch_size=16, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(w) for w in model.weights]
    moved = {w.path: not np.array_equal(a, b) for w, a, b in zip(model.weights, before, after)}
    assert moved["conv1/kernel"] and moved["fc8/kernel"]
    assert moved["conv1_bn/moving_mean"] and moved["conv5_bn/moving_variance"]
