"""What `fit` trains and feeds: the model in the run's precision and devices, compiled, and the
training and validation data, as tf.data pipelines or as indices into the device's store."""

from __future__ import annotations

import logging
import math
from typing import Any

import keras
import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import PreparedData, Split
from keras_alexnet.data.device_pipeline import DeviceAugmentedModel
from keras_alexnet.data.pipeline import eval_dataset, train_dataset
from keras_alexnet.models.build import build_model
from keras_alexnet.training.devices import place
from keras_alexnet.training.losses import build_loss
from keras_alexnet.training.optimizer import build_optimizer
from keras_alexnet.training.performance import Performance, dtype_policy

logger = logging.getLogger(__name__)


def build_trainer(config: TrainConfig, performance: Performance, data: PreparedData,
                  augmentation: keras.layers.Layer) -> tuple[keras.Model, keras.Model]:
    """The model and what `fit` trains: the model itself, or, with on-device augmentation, a
    `DeviceAugmentedModel` around it; both compiled, in the run's precision and devices."""
    placement = place(config.distribution)
    if config.verbose:
        replicas = ("one replica" if placement.num_replicas == 1
                    else f"{placement.num_replicas} replicas ({placement.name})")
        steps = performance.steps_per_execution
        logger.info("training on the %s, %s, global batch %d, %s, XLA %s, %d step%s per "
                    "execution, augmentation on the %s", performance.accelerator.name, replicas,
                    config.batch_size, performance.mixed_precision, performance.jit_compile,
                    steps, "" if steps == 1 else "s", performance.augmentation)
    split = data.split
    with dtype_policy(performance.mixed_precision), placement.scope:
        model = build_model(init=config.init, dropout=config.dropout, mean=data.stats.mean,
                            std=data.stats.std, seed=config.seed, conv1_stride=config.conv1_stride,
                            batch_norm=config.batch_norm,
                            width_multiplier=config.width_multiplier,
                            dense_units=config.dense_units)
        trainer = (DeviceAugmentedModel(model, np.concatenate([split.x_train, split.x_val]),
                                        augmentation)
                   if performance.augmentation == "device" else model)
        compile_for_training(trainer, config, performance,
                             steps_per_epoch=math.ceil(len(split.x_train) / config.batch_size))
        if trainer is not model:  # best.keras then carries the optimizer state too
            model.compile(optimizer=trainer.optimizer, loss=trainer.loss, metrics=["accuracy"])
    return model, trainer


def compile_for_training(model: keras.Model, config: TrainConfig, performance: Performance,
                         steps_per_epoch: int) -> None:
    """Compiles with the run's optimizer and loss, XLA and steps per execution."""
    model.compile(optimizer=build_optimizer(config, steps_per_epoch), loss=build_loss(config),
                  metrics=["accuracy"], jit_compile=performance.jit_compile,
                  steps_per_execution=performance.steps_per_execution)


def fit_data(split: Split, augmentation: keras.layers.Layer, config: TrainConfig,
             performance: Performance) -> tuple[dict, Any]:
    """`fit`'s data arguments, and the training dataset's pass counter (`None` on the device).

    The data is tf.data datasets (pipeline), or indices into the device store that holds the
    training images followed by the validation images (device).
    """
    if performance.augmentation == "device":
        train_size = len(split.x_train)
        return {"x": np.arange(train_size, dtype=np.int32), "y": split.y_train,
                "batch_size": config.batch_size, "shuffle": True,
                "validation_data": (np.arange(train_size, train_size + len(split.x_val),
                                              dtype=np.int32), split.y_val),
                "validation_batch_size": config.eval_batch_size}, None
    import tensorflow as tf

    next_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    return {"x": train_dataset(split.x_train, split.y_train, config.batch_size, augmentation,
                               config.seed, deterministic=config.deterministic,
                               jit_compile=not config.deterministic, next_epoch=next_epoch),
            "validation_data": eval_dataset(split.x_val, split.y_val, config.eval_batch_size),
            "shuffle": False}, next_epoch  # The training dataset shuffles itself every epoch.
