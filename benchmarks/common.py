"""What every benchmark prints with its numbers: machine, backend, date; and the data to use."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time

import numpy as np

DEFAULT_DATA_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "data", "cifar-10-batches-py"))


def context() -> dict:
    """The machine, backend and date a measurement belongs to."""
    import keras

    from keras_alexnet.training.performance import find_accelerator

    accelerator = find_accelerator()
    return {"device": accelerator.name, "device_kind": accelerator.kind,
            "cpu_count": os.cpu_count(), "machine": platform.node(),
            "backend": keras.backend.backend(), "keras": keras.__version__,
            "date": datetime.date.today().isoformat()}


def emit(benchmark: str, **values) -> None:
    """Prints one measurement as one JSON line."""
    print(json.dumps({"benchmark": benchmark, **values, **context()}), flush=True)


def training_flops_per_image(model) -> int:
    """Floating-point operations to train on one image: 3 × 2 × the multiply-adds of the
    forward pass's convolutions and dense layers (the backward pass costs about twice the
    forward: the gradients of the inputs and of the weights); normalisation, pooling and
    activations are left out, so this is a floor."""
    import keras

    def layers(model):  # a task's layers, its backbone's among them
        for layer in model.layers:
            yield from layers(layer) if isinstance(layer, keras.Model) else (layer,)

    multiply_adds = 0
    for layer in layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_height, kernel_width = layer.kernel_size
            multiply_adds += (height * width * filters * kernel_height * kernel_width
                              * layer.input.shape[-1] // layer.groups)
        elif isinstance(layer, keras.layers.Dense):
            multiply_adds += layer.input.shape[-1] * layer.units
    return 3 * 2 * multiply_adds


def cifar_train_images(data_dir: str | None, count: int | None = None):
    """`(images, labels, source)`: the first `count` CIFAR-10 training images of `data_dir`, or,
    when there is no copy there, random images of that shape (`source` says which)."""
    from keras_alexnet.data.cifar10 import load_cifar10

    if data_dir and os.path.exists(data_dir):
        data = load_cifar10(data_dir)
        return data.x_train[:count], data.y_train[:count], data_dir
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count or 50_000, 32, 32, 3), dtype=np.uint8)
    return images, rng.integers(0, 10, len(images)).astype(np.int64), "random pixels"


class CompileClock:
    """Seconds the JAX backend has spent compiling (tracing, lowering to XLA, XLA's compile) since
    this clock was made, the programs it compiled or loaded, and how many of those came from the
    persistent compilation cache, read from `jax.monitoring`'s events; `None` on other backends,
    whose compilation is not reported this way."""

    _EVENTS = "/jax/core/compile/"
    _PROGRAM = "/jax/core/compile/backend_compile_duration"
    _CACHE_HIT = "/jax/compilation_cache/cache_hits"

    def __init__(self):
        import keras

        self._seconds, self._programs, self._cache_hits = 0.0, 0, 0
        self.available = keras.backend.backend() == "jax"
        if self.available:
            import jax.monitoring

            jax.monitoring.register_event_duration_secs_listener(self._record)
            jax.monitoring.register_event_listener(self._count_hit)

    def _record(self, event: str, duration: float, **_) -> None:
        if event.startswith(self._EVENTS):
            self._seconds += duration
        self._programs += event == self._PROGRAM

    def _count_hit(self, event: str, **_) -> None:
        self._cache_hits += event == self._CACHE_HIT

    @property
    def programs(self) -> int | None:
        return self._programs if self.available else None

    @property
    def cache_hits(self) -> int | None:
        return self._cache_hits if self.available else None

    @property
    def seconds(self) -> float | None:
        return self._seconds if self.available else None


def images_per_second(dataset, epochs: int) -> list[float]:
    """Images/s of each full pass over `dataset` (consumed in-graph, no Python loop per batch)."""
    import tensorflow as tf

    rates = []
    for _ in range(epochs):
        start = time.perf_counter()
        count = dataset.reduce(np.int64(0),
                               lambda n, batch: n + tf.cast(tf.shape(batch[0])[0], tf.int64))
        rates.append(int(count) / (time.perf_counter() - start))
    return rates


MATMUL_PEAK_CODE = """
import json, os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
cores = len(os.sched_getaffinity(0))
tf.config.threading.set_intra_op_parallelism_threads(cores)
tf.config.threading.set_inter_op_parallelism_threads(1)
size, peaks = 4096, {}
for dtype in ("float32", "bfloat16"):
    a = tf.cast(tf.random.normal((size, size)), dtype)
    b = tf.cast(tf.random.normal((size, size)), dtype)
    tf.matmul(a, b).numpy()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        tf.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    peaks[dtype] = round(2 * size ** 3 / min(times) / 1e9, 1)
print(json.dumps(peaks))
"""


def matmul_peaks(prefix: tuple = (), environment: dict | None = None) -> dict:
    """This host's measured float32 and bfloat16 matrix-product rates in GFLOP/s (a 4096² product
    in TensorFlow, the fastest of three, one op at a time on every core this process may use),
    measured in a fresh process run under `prefix` (e.g. `("taskset", "-c", "0")`) with
    `environment` added to this one's."""
    import subprocess
    import sys

    output = subprocess.run([*prefix, sys.executable, "-c", MATMUL_PEAK_CODE], check=True,
                            capture_output=True, text=True,
                            env={**os.environ, **(environment or {})}).stdout
    return json.loads(output.strip().splitlines()[-1])


def cpu_model() -> str:
    """The CPU's model name with its family, model and stepping numbers."""
    from keras_alexnet.training.host_probe import cpu_model as model

    return model()
