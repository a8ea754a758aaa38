"""Distribution: MirroredStrategy over two logical CPU devices, against one device.

Logical devices must be configured before TensorFlow starts, so the checks run in a fresh process.
"""

import json
import os
import subprocess
import sys

import pytest
from conftest import write_cifar_dir

from keras_alexnet import TrainConfig

pytestmark = pytest.mark.slow  # every test here trains or starts processes

SCRIPT = r'''
import json, logging, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np

from keras_alexnet import TrainConfig, train
from keras_alexnet.data.augment import build_augmentation
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.data.pipeline import train_dataset
from keras_alexnet.training.devices import place
from keras_alexnet.models.build import build_model
from keras_alexnet.training.optimizer import build_optimizer

data_dir, run_dir = sys.argv[1], sys.argv[2]
report = {"auto": place("auto").name, "none": place("none").num_replicas}
data = load_cifar10(data_dir)
images, labels = data.x_train[:128], data.y_train[:128]

mirrored = place("mirrored")
report["replicas"] = mirrored.num_replicas
# The input pipeline's augmentation: built outside the scope.
augmentation = build_augmentation(np.ones(3), np.eye(3), seed=0)
with mirrored.scope:
    strategy = tf.distribute.get_strategy()
    batches = strategy.experimental_distribute_dataset(
        train_dataset(images, labels, 128, augmentation, seed=0))
    report["per_replica_batches"] = [int(v.shape[0]) for v in next(iter(batches))[0].values]

config = TrainConfig(learning_rate=0.05)  # global_clipnorm 2.0: the first step is clipped


def one_step(scope):
    with scope:
        model = build_model(dropout=0.0, seed=0)
        model.compile(optimizer=build_optimizer(config, steps_per_epoch=1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images.astype("float32"), labels, batch_size=128, epochs=1, shuffle=False, verbose=0)
    return [w.copy() for w in model.get_weights()]


single, replicated = one_step(place("none").scope), one_step(place("mirrored").scope)
initial = build_model(dropout=0.0, seed=0).get_weights()
report["max_weight_difference"] = max(float(np.abs(a - b).max())
                                      for a, b in zip(single, replicated))
report["max_weight_change"] = max(float(np.abs(a - b).max()) for a, b in zip(single, initial))

logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
result = train(data_dir=data_dir, epochs=1, train_subset=256, validation_size=100, batch_size=64,
               distribution="mirrored", output_dir=run_dir, export=False, verbose=2)
report["epochs_completed"] = result.metrics["epochs_completed"]
report["variable_kinds"] = sorted({type(variable.value).__name__
                                 for variable in result.model.trainable_variables})
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("distribute")
    data_dir = root / "cifar-10-batches-py"
    write_cifar_dir(str(data_dir))
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(data_dir), str(root / "run")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(text for text in result.stdout.splitlines() if text.startswith("REPORT "))
    print(line)
    return {**json.loads(line[len("REPORT "):]), "stderr": result.stderr}


@pytest.mark.large
def test_auto_picks_one_device_on_a_cpu_machine_and_mirrored_uses_both(report):
    assert report["auto"] == "none" and report["none"] == 1
    assert report["replicas"] == 2


@pytest.mark.large
def test_each_replica_gets_half_of_the_global_batch(report):
    assert report["per_replica_batches"] == [64, 64]


@pytest.mark.large
def test_one_mirrored_step_equals_one_single_device_step(report):
    assert report["max_weight_change"] > 1e-4  # the step did move the weights
    assert report["max_weight_difference"] < 1e-5


@pytest.mark.large
def test_train_runs_under_mirrored_strategy(report):
    """`train(distribution="mirrored")` builds and trains its model on both replicas: its
    variables are mirrored, and the run says so."""
    assert report["epochs_completed"] == 1
    assert report["variable_kinds"] == ["MirroredVariable"]
    assert "LOG training on the CPU, 2 replicas (mirrored), global batch 64" in report["stderr"]


def test_learning_rate_is_only_rescaled_on_request():
    from keras_alexnet.training.optimizer import learning_rate_schedule

    assert learning_rate_schedule(TrainConfig(batch_size=256))(0) == 0.01
    scaled = learning_rate_schedule(TrainConfig(batch_size=256, linear_lr_scaling=True))
    assert scaled(0) == pytest.approx(0.02) and scaled(30) == pytest.approx(0.002)


def test_unknown_distribution_is_rejected():
    from keras_alexnet.errors import ConfigError
    from keras_alexnet.training.devices import place

    with pytest.raises(ConfigError, match="TrainConfig.distribution must be one of"):
        TrainConfig(distribution="horovod")
    with pytest.raises(ValueError, match="distribution must be one of"):
        place("horovod")


# Runs with KERAS_BACKEND=jax on two host devices: one train step of AlexNet (dropout off) on one
# device, then the same step under `place("mirrored")` (keras.distribution.DataParallel).
JAX_TWO_DEVICES = r"""
import json, sys
import jax, keras, numpy as np
from keras_alexnet import TrainConfig
from keras_alexnet.training.devices import place
from keras_alexnet.models.build import build_model
from keras_alexnet.training.optimizer import build_optimizer

config = TrainConfig(learning_rate=0.5, global_clipnorm=None)
rng = np.random.default_rng(0)
images = rng.integers(0, 256, (8, 32, 32, 3)).astype("float32")
labels = rng.integers(0, 10, 8)

def one_step():
    model = build_model(dropout=0.0, seed=0)
    model.compile(optimizer=build_optimizer(config, steps_per_epoch=1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model

single = one_step()
placement = place("mirrored")
parallel = one_step()
kernel = parallel.get_layer("conv1").kernel.value
initial = build_model(dropout=0.0, seed=0).get_layer("fc8").kernel.numpy()
print(json.dumps({
    "devices": len(jax.devices()), "placement": placement.name, "replicas": placement.num_replicas,
    "kernel_devices": len(kernel.sharding.device_set),
    "max_difference": max(float(np.abs(a - b).max())
                          for a, b in zip(single.get_weights(), parallel.get_weights())),
    "step_size": float(np.abs(single.get_layer("fc8").kernel.numpy() - initial).max()),
}))
"""


def test_jax_data_parallel_step_on_two_devices_equals_the_one_device_step():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    process = subprocess.run([sys.executable, "-c", JAX_TWO_DEVICES], capture_output=True,
                             text=True, timeout=600, env=env)
    assert process.returncode == 0, process.stderr[-3000:]
    seen = json.loads(process.stdout.strip().splitlines()[-1])
    assert (seen["devices"], seen["placement"], seen["replicas"]) == (2, "data_parallel", 2)
    assert seen["kernel_devices"] == 2  # the variables live on both devices
    assert seen["step_size"] > 1e-3  # the step moved the weights …
    assert seen["max_difference"] < 1e-5  # … and both ways the same
