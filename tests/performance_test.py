"""The fast-path settings: what "auto" picks on each kind of accelerator, and explicit choices."""

import os
import subprocess
import sys

import keras
import pytest

from keras_alexnet.config import TrainConfig
from keras_alexnet.errors import ConfigError
from keras_alexnet.training import performance
from keras_alexnet.training.performance import (
    Accelerator,
    cpu_has_bfloat16,
    find_accelerator,
    resolve,
)

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
    config = TrainConfig(mixed_precision="float32", steps_per_execution=4, jit_compile=True,
                         augmentation="device")
    performance = resolve(config, H100)
    assert (performance.mixed_precision, performance.steps_per_execution,
            performance.jit_compile, performance.augmentation) == ("float32", 4, True, "device")
    assert resolve(TrainConfig(jit_compile=False), H100).jit_compile is False


def test_deterministic_turns_xla_off():
    assert resolve(TrainConfig(deterministic=True, jit_compile=True), CPU).jit_compile is False


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
    ("jit_compile", "on", "jit_compile must be one of auto, True, False"),
    ("steps_per_execution", 0, "steps_per_execution must be >= 1 or None"),
    ("augmentation", "gpu", "augmentation must be one of auto, pipeline, device"),
])
def test_bad_values_are_config_errors(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


@pytest.mark.slow
def test_cpu_threads_runs_one_op_at_a_time_on_the_usable_cores_in_a_fresh_process():
    probe = ("import os, warnings, keras, tensorflow as tf\n"
             "from keras_alexnet.training.performance import use_cpu_threads\n"
             "use_cpu_threads(None)\n"
             "print(tf.config.threading.get_intra_op_parallelism_threads(),"
             " tf.config.threading.get_inter_op_parallelism_threads())\n"
             "tf.constant(1.0) + 1.0\n"  # the runtime starts: the pools are fixed from here on
             "with warnings.catch_warnings(record=True) as caught:\n"
             "    warnings.simplefilter('always')\n"
             "    use_cpu_threads(None)\n"
             "    use_cpu_threads(7)\n"
             "print(len(caught), str(caught[-1].message).split(';')[0])\n")
    pools, warned = run_tensorflow(probe).splitlines()
    assert pools == f"{len(os.sched_getaffinity(0))} 1"
    # The same pools again are fine; other ones after the start are refused with one warning.
    assert warned == ("1 cpu_threads: TensorFlow had already started, so ops keep their thread "
                      "pools instead of one op at a time on 7 thread(s)")
    # Started before (a notebook): the automatic setting leaves TensorFlow's pools, silently.
    late = ("import warnings, keras, tensorflow as tf\n"
            "from keras_alexnet.training.performance import use_cpu_threads\n"
            "tf.constant(1.0) + 1.0\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    use_cpu_threads(None)\n"
            "print(len(caught), tf.config.threading.get_inter_op_parallelism_threads())\n")
    assert run_tensorflow(late).split() == ["0", "0"]


def run_tensorflow(code: str) -> str:
    """What `code` prints in a fresh interpreter on the TensorFlow backend."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"}, check=True).stdout


def test_cpu_threads_is_a_run_setting_that_a_resume_may_change():
    saved = TrainConfig().to_dict()
    assert TrainConfig(cpu_threads=0).training_differences(saved) == []
    with pytest.raises(ConfigError, match="TrainConfig.cpu_threads must be >= 0 or None"):
        TrainConfig(cpu_threads=-1)


@pytest.mark.parametrize("flags, native", [
    ("fpu avx2 fma avx512f avx512_bf16 avx512_vnni", True),   # this project's CPU dev machine
    ("fpu avx2 amx_bf16 amx_tile", True),
    ("fpu sse4_2 avx2 fma", False),                           # a laptop without bfloat16
])
def test_cpu_bfloat16_is_read_from_the_cpus_flags(flags, native, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("".join(f"processor\t: {n}\nflags\t\t: {flags}\n\n" for n in (0, 1)))
    assert cpu_has_bfloat16(str(cpuinfo)) is native
    assert cpu_has_bfloat16(str(tmp_path / "absent")) is True  # nothing to read: no claim


@pytest.mark.parametrize("native, warnings", [(True, 0), (False, 1)])
def test_mixed_bfloat16_on_a_cpu_warns_only_where_the_cpu_lacks_it(monkeypatch, recwarn, native,
                                                                   warnings):
    monkeypatch.setattr(performance, "cpu_has_bfloat16", lambda: native)
    resolve(TrainConfig(mixed_precision="mixed_bfloat16"), CPU)
    resolve(TrainConfig(mixed_precision="mixed_bfloat16"), A100)  # a GPU: never
    warned = [str(w.message) for w in recwarn if "bfloat16 instructions" in str(w.message)]
    assert len(warned) == warnings
