"""What `fit` trains and is fed: the compiled model or its on-device wrapper, and the data."""

import numpy as np
import pytest

from keras_alexnet import TrainConfig
from keras_alexnet.data.augment import build_augmentation
from keras_alexnet.data.cifar10 import prepare
from keras_alexnet.data.device_pipeline import DeviceAugmentedModel
from keras_alexnet.training.fit_setup import build_trainer, fit_data
from keras_alexnet.training.optimizer import TorchSGD
from keras_alexnet.training.performance import resolve


def prepared(cifar_dir, augmentation):
    config = TrainConfig(data_dir=cifar_dir, validation_size=40, train_subset=64, batch_size=16,
                         eval_batch_size=25, augmentation=augmentation, verbose=0)
    data = prepare(config)
    layer = build_augmentation(data.stats.eigenvalues, data.stats.eigenvectors, seed=0)
    return config, resolve(config), data, layer


def test_on_the_device_fit_trains_a_wrapper_whose_validation_indices_are_the_validation_images(
        cifar_dir):
    config, performance, data, layer = prepared(cifar_dir, "device")
    model, trainer = build_trainer(config, performance, data, layer)
    assert isinstance(trainer, DeviceAugmentedModel) and trainer.network is model
    assert model.optimizer is trainer.optimizer  # best.keras carries the optimizer being trained

    data_args, pass_counter = fit_data(data, layer, config, performance)
    assert pass_counter is None
    np.testing.assert_array_equal(data_args["x"], np.arange(64))
    val_ids, val_labels = data_args["validation_data"]
    np.testing.assert_array_equal(val_labels, data.split.y_val)
    np.testing.assert_allclose(trainer.predict(val_ids, verbose=0),
                               model.predict(data.split.x_val.astype("float32"), verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert data_args["validation_batch_size"] == 25


def test_in_the_pipeline_fit_gets_datasets_and_a_pass_counter_from_zero(cifar_dir):
    config, performance, data, layer = prepared(cifar_dir, "pipeline")
    model, trainer = build_trainer(config, performance, data, layer)
    assert trainer is model and isinstance(model.optimizer, TorchSGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(config.learning_rate)  # 0.01

    data_args, pass_counter = fit_data(data, layer, config, performance)
    assert int(pass_counter.numpy()) == 0 and data_args["shuffle"] is False
    batches = list(data_args["validation_data"].as_numpy_iterator())
    assert [len(labels) for _, labels in batches] == [25, 15]
    np.testing.assert_array_equal(np.concatenate([images for images, _ in batches]),
                                  data.split.x_val)
    images, labels = next(iter(data_args["x"].as_numpy_iterator()))
    assert images.shape == (16, 32, 32, 3) and labels.shape == (16,)


@pytest.mark.parametrize("augmentation", ["device", "pipeline"])
def test_the_learning_rate_schedule_counts_steps_of_the_training_subset(cifar_dir, augmentation):
    """The cosine schedule's length is the run's steps: ceil(64 / 16) per epoch."""
    config, performance, data, layer = prepared(cifar_dir, augmentation)
    config = config.replace(lr_schedule="cosine", epochs=2, learning_rate=0.1)
    _, trainer = build_trainer(config, performance, data, layer)
    optimizer = trainer.optimizer
    for step, expected in [(0, 0.1), (4, 0.05), (8, 0.0)]:  # 2 epochs × ceil(64 / 16) steps
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(expected, abs=1e-6)
