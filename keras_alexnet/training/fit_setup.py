"""What `fit` trains and feeds — the model in the run's precision and devices, compiled, and the
training and validation data, as tf.data pipelines or as indices into the device's store — and
`fit` itself in the run directory, with its callbacks, backups and stop on a signal."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import math
import os
import sys
from typing import Any, Optional, Union

import keras
import numpy as np

from keras_alexnet.config import TrainConfig
from keras_alexnet.data import imagenet
from keras_alexnet.data.device_pipeline import DeviceAugmentedModel, IndexBatches
from keras_alexnet.data.image_sets import ImageSet, RunData
from keras_alexnet.data.passes import pass_counter
from keras_alexnet.data.pipeline import eval_dataset, train_dataset
from keras_alexnet.data.process_shard import ONE_PROCESS, ProcessShard
from keras_alexnet.evaluation.metrics import TOP_K
from keras_alexnet.models.build import build_classifier, network_class
from keras_alexnet.run_dir import (
    CLASS_NAMES_FILE,
    CONFIG,
    RESUME_FILES,
    write_class_names,
    write_json,
)
from keras_alexnet.training.callbacks import EpochKeyedDraws, build_callbacks
from keras_alexnet.training.checkpoints import CheckpointSchedule, find_resume_backup, resume_epoch
from keras_alexnet.training.devices import Placement, place
from keras_alexnet.training.host_probe import train_step_rate
from keras_alexnet.training.interruption import StopOnSignal, StopRequest
from keras_alexnet.training.losses import build_loss
from keras_alexnet.training.multi_host import peers_watched, shared_run_files
from keras_alexnet.training.optimizer import build_optimizer
from keras_alexnet.training.performance import Performance, PrecisionProbe, dtype_policy

logger = logging.getLogger(__name__)


def build_trainer(config: TrainConfig, performance: Performance, data: RunData,
                  augmentation: Optional[keras.layers.Layer],
                  placement: Optional[Placement] = None) -> tuple[keras.Model, keras.Model]:
    """The model and what `fit` trains: the model itself, or, with on-device augmentation, a
    `DeviceAugmentedModel` around it; both compiled, in the run's precision and devices
    (`placement`, default `devices.place(config.distribution)`: on JAX, place them before the
    augmentation is built, whose variables the train step then holds on the same devices)."""
    placement = placement or place(config.distribution)
    if config.verbose:
        replicas = ("one replica" if placement.num_replicas == 1
                    else f"{placement.num_replicas} replicas ({placement.name})")
        steps = performance.steps_per_execution
        logger.info("training on the %s, %s, global batch %d, %s, XLA %s, %d step%s per "
                    "execution, augmentation on the %s", performance.accelerator.name, replicas,
                    config.batch_size, performance.mixed_precision, performance.jit_compile,
                    steps, "" if steps == 1 else "s", performance.augmentation)
    with dtype_policy(performance.mixed_precision), placement.scope:
        model = build_classifier(config.network, **network_arguments(config, data))
        trainer = (DeviceAugmentedModel(model, np.concatenate([data.split.x_train,
                                                               data.split.x_val]), augmentation)
                   if performance.augmentation == "device" else model)
        compile_for_training(trainer, config, performance,
                             steps_per_epoch=math.ceil(data.train_size / config.batch_size),
                             num_classes=data.num_classes)
        if trainer is not model:  # best.keras then carries the optimizer state too
            model.compile(optimizer=trainer.optimizer, loss=trainer.loss,
                          metrics=training_metrics(config, data.num_classes))
    return model, trainer


def network_arguments(config: TrainConfig, data: RunData) -> dict[str, Any]:
    """The arguments of `config.network`'s constructor for a run on `data`: the data set's class
    count and pixel statistics, and each `TrainConfig` field the constructor takes by name."""
    return {**network_fields(config), "num_classes": data.num_classes, "mean": data.stats.mean,
            "std": data.stats.std}


def network_fields(config: TrainConfig) -> dict[str, Any]:
    """Each `TrainConfig` field that `config.network`'s constructor takes by name."""
    taken = inspect.signature(network_class(config.network)).parameters
    fields = {field.name for field in dataclasses.fields(config)}
    return {name: getattr(config, name) for name in taken if name in fields}


def precision_probe(config: TrainConfig, num_classes: int, train_images: int) -> PrecisionProbe:
    """What `mixed_precision="auto"` measures on a CPU: the run's own network at its batch
    size, trained a few steps in each precision (on `num_classes` classes; `train_images`: the
    images the run will train, which decide whether it is worth a probe)."""
    arguments = {**network_fields(config), "num_classes": num_classes}

    def measure(precision: str) -> float:
        with dtype_policy(precision):
            model = build_classifier(config.network, **arguments)
        return train_step_rate(model, config.batch_size, num_classes)

    subject = {"network": config.network, "batch_size": config.batch_size,
               **{name: value for name, value in arguments.items() if name != "seed"}}
    return PrecisionProbe(subject, measure, train_images)


def training_metrics(config: TrainConfig, num_classes: int) -> list:
    """Accuracy, and on streamed data sets of more than `TOP_K` classes the top-5 accuracy."""
    if not config.streams_images or num_classes <= TOP_K:
        return ["accuracy"]
    return ["accuracy",
            keras.metrics.SparseTopKCategoricalAccuracy(TOP_K, name=f"top{TOP_K}_accuracy")]


def compile_for_training(model: keras.Model, config: TrainConfig, performance: Performance,
                         steps_per_epoch: int, num_classes: int) -> None:
    """Compiles with the run's optimizer, loss and metrics, XLA and steps per execution."""
    model.compile(optimizer=build_optimizer(config, steps_per_epoch), loss=build_loss(config),
                  metrics=training_metrics(config, num_classes),
                  jit_compile=performance.jit_compile,
                  steps_per_execution=performance.steps_per_execution)


def fit_data(data: RunData, augmentation: Optional[keras.layers.Layer], config: TrainConfig,
             performance: Performance, shard: ProcessShard = ONE_PROCESS) -> tuple[dict, Any]:
    """`fit`'s data arguments, and the training data's pass counter (`None` where `fit`
    shuffles arrays itself).

    The data is tf.data datasets (pipeline), or indices into the device store that holds the
    training images followed by the validation images (device: arrays, or on a multi-host run
    `IndexBatches`, this process's `shard` of each global batch); streamed images go through the
    paper's pipelines (`data.imagenet`).
    """
    if isinstance(data, ImageSet):
        next_epoch = pass_counter()
        return image_set_data(data, config, shard, next_epoch), next_epoch
    split = data.split
    if performance.augmentation == "device" and shard.joined:
        train = IndexBatches(0, split.y_train, config.batch_size, shard, seed=config.seed)
        return {"x": train, "shuffle": False,
                "validation_data": IndexBatches(len(split.x_train), split.y_val,
                                                config.eval_batch_size, shard)}, train
    if performance.augmentation == "device":
        train_size = len(split.x_train)
        return {"x": np.arange(train_size, dtype=np.int32), "y": split.y_train,
                "batch_size": config.batch_size, "shuffle": True,
                "validation_data": (np.arange(train_size, train_size + len(split.x_val),
                                              dtype=np.int32), split.y_val),
                "validation_batch_size": config.eval_batch_size}, None
    next_epoch = pass_counter()
    return {"x": train_dataset(split.x_train, split.y_train, config.batch_size, augmentation,
                               config.seed, deterministic=config.deterministic,
                               jit_compile=not config.deterministic, next_epoch=next_epoch),
            "validation_data": eval_dataset(split.x_val, split.y_val, config.eval_batch_size),
            "shuffle": False}, next_epoch  # The training dataset shuffles itself every epoch.


def image_set_data(data: ImageSet, config: TrainConfig, shard: ProcessShard = ONE_PROCESS,
                   next_epoch=None) -> dict:
    """`fit`'s data arguments for streamed images: the paper's training pipeline (its PCA jitter
    with the training images' own eigen-decomposition) and centre-crop validation, each
    repeated, with the steps of one pass: a folder's pipelines skip a corrupt file, so their
    length is not known to tf.data. On several processes each takes every `shard.count`-th image
    of both (the same order everywhere: seeded) and feeds its share of every global batch,
    repeated before it is batched: every batch is full, so the processes' batches match however
    the images divide among them."""
    def share(dataset):
        dataset = dataset.shard(shard.count, shard.index)
        return dataset.repeat() if shard.count > 1 else dataset

    eigenvalues = data.stats.eigenvalues / 255.0 ** 2  # the pipeline takes them on the 0–1 scale
    train = imagenet.train_dataset(share(data.train),
                                   config.batch_size // shard.count, pca_stddev=config.pca_stddev,
                                   eigenvalues=eigenvalues, eigenvectors=data.stats.eigenvectors,
                                   shuffle_buffer=data.shuffle_buffer,
                                   seed=config.seed + shard.index,  # each its own crops
                                   next_epoch=next_epoch)
    validation = imagenet.eval_dataset(share(data.validation),
                                       config.eval_batch_size // shard.count)
    return {"x": train.repeat(), "steps_per_epoch": math.ceil(data.train_size / config.batch_size),
            "validation_data": validation.repeat(),
            "validation_steps": math.ceil(data.validation_size / config.eval_batch_size),
            "shuffle": False}


def progress_verbosity(verbose: Union[int, str]) -> int:
    """`fit`'s `verbose` for the config's: `"auto"` is a progress bar on a terminal and one
    line per epoch otherwise (a log file, CI), where a bar's redraws would fill it."""
    if verbose != "auto":
        return verbose
    return 1 if sys.stdout.isatty() else 2


def fit(trainer: keras.Model, model: keras.Model, data: RunData,
        augmentation: Optional[keras.layers.Layer], config: TrainConfig,
        performance: Performance, shard: ProcessShard, request: StopRequest,
        budget_keeper: Optional[keras.callbacks.Callback] = None) -> tuple[float, dict[str, list]]:
    """Trains `trainer` for `config.epochs` epochs into the run directory (`config.json`,
    `class_names.txt`, `history.csv`, `best.keras`, the resume backup: process 0's writes);
    returns the seconds the checkpoint writes took and the epochs' logs of this call. A signal
    in `request` stops it after the step in progress, backed up (`interruption.StopOnSignal`).
    A run whose backup ends its last epoch (it was stopped after `fit`) trains nothing;
    `budget_keeper` (a time budget's `BudgetKeeper`) ends it earlier."""
    if shard.is_writer:
        write_json(os.path.join(config.output_dir, CONFIG), config.to_dict())
        write_class_names(os.path.join(config.output_dir, CLASS_NAMES_FILE), data.class_names)
    data_args, next_epoch = fit_data(data, augmentation, config, performance, shard)
    with shared_run_files(config.output_dir, RESUME_FILES, shard) as run_dir, \
            peers_watched(shard):
        callbacks = build_callbacks(config.replace(output_dir=run_dir), model, shard.is_writer)
        backup = find_resume_backup(callbacks)
        initial_epoch = resume_epoch(trainer, callbacks)
        if initial_epoch >= config.epochs:
            logger.info("the run's %d epochs are trained (its backup holds them): finishing it",
                        config.epochs)
            return 0.0, {"epoch": []}
        with request.deferred():
            fitted = trainer.fit(
                **data_args, epochs=config.epochs, initial_epoch=initial_epoch,
                verbose=progress_verbosity(config.verbose) if shard.is_writer else 0,
                callbacks=[EpochKeyedDraws(next_epoch, config.seed), *callbacks,
                           *([budget_keeper] if budget_keeper else []),
                           StopOnSignal(request, config.output_dir, backup, model, shard.count)])
    return (sum(callback.write_seconds for callback in callbacks
                if isinstance(callback, CheckpointSchedule)),
            {"epoch": fitted.epoch, **fitted.history})
