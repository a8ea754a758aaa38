"""Where training runs: one device, all GPUs (`tf.distribute.MirroredStrategy`), a TPU
(`tf.distribute.TPUStrategy`), or, on the JAX backend, `keras.distribution.DataParallel` over the
devices of this process or of every process of a multi-host run (`multi_host`).

The recipe's batch size is the GLOBAL batch: with N replicas each one sees `batch_size / N`
images per step, and the gradients are summed across replicas before the update, so the update is
the one-device update of the same 128 images. The learning rate is never rescaled silently;
`TrainConfig.linear_lr_scaling` applies the linear scaling rule when the batch size changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import ContextManager

import keras

from keras_alexnet.config import DISTRIBUTIONS, check_choice
from keras_alexnet.errors import ConfigError
from keras_alexnet.training.multi_host import NEEDS_JAX


@dataclasses.dataclass
class Placement:
    """A chosen distribution: its name, replica count, and the scope to build the model in."""

    name: str
    num_replicas: int
    scope: ContextManager


def place(distribution: str = "auto") -> Placement:
    """Picks the distribution for this machine and backend.

    Args:
        distribution: `"auto"` (every process's devices when this process has joined others,
            `multi_host.join`; else a TPU if this is a TPU runtime, else all GPUs when there are
            several, else one device), `"mirrored"` (all local GPUs, or all local devices),
            `"tpu"`, `"multi_host"` (every device of every process, JAX), or `"none"` (the
            default device).

    Returns:
        A `Placement`; build and compile the model inside `placement.scope`.

    Example:

    >>> from keras_alexnet.models.build import build_model
    >>> placement = place("auto")
    >>> with placement.scope:
    ...     model = build_model()
    >>> placement.num_replicas                      # on a machine of one device
    1
    """
    check_choice(distribution, DISTRIBUTIONS, "distribution")
    if distribution == "none":
        return Placement("none", 1, contextlib.nullcontext())
    if keras.backend.backend() == "jax":
        return _place_jax(distribution)
    if keras.backend.backend() == "tensorflow":
        return _place_tensorflow(distribution)
    return Placement("none", 1, contextlib.nullcontext())


def _place_tensorflow(distribution: str) -> Placement:
    import tensorflow as tf

    if distribution == "multi_host":
        raise ConfigError(NEEDS_JAX)
    if distribution in ("auto", "tpu"):
        strategy = _tpu_strategy(required=distribution == "tpu")
        if strategy is not None:
            return Placement("tpu", strategy.num_replicas_in_sync, strategy.scope())
    gpus = tf.config.list_logical_devices("GPU")
    if distribution == "auto" and len(gpus) < 2:
        return Placement("none", 1, contextlib.nullcontext())
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    return Placement("mirrored", strategy.num_replicas_in_sync, strategy.scope())


def _tpu_strategy(required: bool):
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError) as error:
        if required:
            raise ConfigError(f"distribution='tpu' but no TPU runtime was found ({error})"
                              ) from error
        return None
    return tf.distribute.TPUStrategy(resolver)


def _place_jax(distribution: str) -> Placement:
    import jax

    if distribution == "multi_host" or (distribution == "auto" and jax.process_count() > 1):
        return _place_multi_host()
    if distribution == "tpu":
        devices = keras.distribution.list_devices("tpu")
        if not devices:
            raise ConfigError("distribution='tpu' but JAX sees no TPU")
    else:
        devices = keras.distribution.list_devices()
    if len(devices) < 2 and distribution == "auto":
        return Placement("none", 1, contextlib.nullcontext())
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return Placement("data_parallel", len(devices), contextlib.nullcontext())


def _place_multi_host() -> Placement:
    """Every device of every process, each process feeding its own share of each global batch
    (`data.process_shard`), so Keras must not shard the data again."""
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    return Placement("multi_host", len(devices), contextlib.nullcontext())
