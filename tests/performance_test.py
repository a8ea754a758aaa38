"""The fast-path settings: what "auto" picks on each kind of accelerator, and explicit choices."""

import keras
import pytest

from keras_alexnet.config import ConfigError, TrainConfig
from keras_alexnet.performance import Accelerator, find_accelerator, resolve

CPU = Accelerator("cpu", "CPU")
H100 = Accelerator("gpu", "NVIDIA H100 80GB HBM3", (9, 0))
A100 = Accelerator("gpu", "NVIDIA A100-SXM4-40GB", (8, 0))
T4 = Accelerator("gpu", "Tesla T4", (7, 5))
TPU = Accelerator("tpu", "TPU v5 lite")


@pytest.mark.parametrize("accelerator,precision,steps", [
    (CPU, "float32", 1), (H100, "float32", 32), (A100, "mixed_bfloat16", 32),
    (T4, "mixed_float16", 32), (TPU, "mixed_bfloat16", 32),
])
def test_auto_picks_precision_and_steps_per_execution_for_the_accelerator(accelerator, precision,
                                                                           steps):
    performance = resolve(TrainConfig(), accelerator)
    assert (performance.mixed_precision, performance.steps_per_execution) == (precision, steps)
    assert performance.jit_compile == "auto"


def test_explicit_settings_win_over_auto():
    config = TrainConfig(mixed_precision="float32", steps_per_execution=4, jit_compile="on",
                         augmentation="device")
    performance = resolve(config, H100)
    assert (performance.mixed_precision, performance.steps_per_execution,
            performance.jit_compile, performance.augmentation) == ("float32", 4, True, "device")
    assert resolve(TrainConfig(jit_compile="off"), H100).jit_compile is False


def test_deterministic_turns_xla_off():
    assert resolve(TrainConfig(deterministic=True, jit_compile="on"), CPU).jit_compile is False


@pytest.mark.parametrize("backend, place", [("jax", "device"), ("tensorflow", "pipeline")])
def test_auto_augmentation_follows_the_backend(monkeypatch, backend, place):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    assert resolve(TrainConfig(), CPU).augmentation == place
    assert resolve(TrainConfig(augmentation="device"), CPU).augmentation == "device"
    if backend == "tensorflow":
        assert resolve(TrainConfig(augmentation="pipeline"), CPU).augmentation == "pipeline"
    else:  # the pipeline's layers would get tf.data's graph tensors, which JAX cannot take
        with pytest.raises(ConfigError, match="'pipeline' needs the TensorFlow backend"):
            resolve(TrainConfig(augmentation="pipeline"), CPU)


def test_find_accelerator_reads_tensorflows_gpu_details(monkeypatch):
    """A faked device query (whatever this machine has) gives the GPU's name and capability."""
    import tensorflow as tf

    fake_gpu = tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [])
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [fake_gpu] if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"device_name": "NVIDIA H100 80GB HBM3",
                                        "compute_capability": (9, 0)})
    assert find_accelerator() == H100
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    assert find_accelerator() == CPU


@pytest.mark.parametrize("field,value,message", [
    ("mixed_precision", "float16", "mixed_precision must be one of auto, float32"),
    ("jit_compile", "yes", "jit_compile must be one of auto, on, off"),
    ("steps_per_execution", 0, "steps_per_execution must be >= 1 or None"),
    ("augmentation", "gpu", "augmentation must be one of auto, pipeline, device"),
])
def test_bad_values_are_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})
