"""Measuring this CPU: the run's own network trained a few steps in float32 and in bfloat16, the
faster precision chosen, and the rates cached per host so a second run does not probe again.

Whether bfloat16 pays on a CPU is a property of its cores and of the oneDNN kernels TensorFlow
picks for them, not of its flags: on one 2-core AMD EPYC with AVX512-BF16 a bfloat16 step of
`fast` ran 1.9× as fast as float32, on an Intel Xeon with the same flag 0.6× (docs/performance.md).
So `mixed_precision="auto"` on a CPU measures both (`probe_precisions`) and takes the faster.

The cache (`host_probes.json` beside the JAX compilation cache) is keyed by the host (CPU model,
the cores this process may use, backend, TensorFlow and Keras versions) and by what was probed
(the network's arguments and the batch size): a changed host, or another network, probes again.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import os
import platform
import time
from typing import Any, Callable, Optional

import keras
import numpy as np

from keras_alexnet.config.choices import DEFAULT_COMPILATION_CACHE
from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.utils.atomic import atomic_path
from keras_alexnet.utils.bounded_files import read_json_file

logger = logging.getLogger(__name__)

CPU_PRECISIONS = ("float32", "mixed_bfloat16")
DEFAULT_CACHE = os.path.join(os.path.dirname(DEFAULT_COMPILATION_CACHE), "host_probes.json")
TIMED_STEPS = 3  # per precision, after one untimed step that traces the train function
MAX_CACHED_PROBES = 256  # the oldest are dropped beyond this

# `images_per_second(precision)` measures one precision; tests inject their own.
Measure = Callable[[str], float]


def host_fingerprint(cores: int) -> dict[str, str]:
    """What makes one host's measurement another's: the CPU model, the cores this process may
    use, the Keras backend and the TensorFlow and Keras versions."""
    versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return {"cpu": cpu_model(), "cores": str(cores), **versions}


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name with its family, model and stepping numbers (Linux), else what
    `platform` knows."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            fields = dict(line.split(":", 1) for line in file.read(1 << 16).splitlines()
                          if ":" in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    numbers = "/".join(fields.get(key, "?") for key in ("cpu family", "model", "stepping"))
    return f"{fields.get('model name', platform.machine())} ({numbers})"


def probe_key(fingerprint: dict[str, str], subject: dict[str, Any]) -> str:
    """The cache key of a probe of `subject` (network arguments and batch size) on a host."""
    text = json.dumps({"host": fingerprint, "subject": subject}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def faster_precision(rates: dict[str, float]) -> str:
    """The precision of the higher rate; float32 on a tie (no rounding to doubt)."""
    return max(CPU_PRECISIONS, key=lambda precision: (rates[precision], precision == "float32"))


def cached_rates(key: str, path: str = DEFAULT_CACHE) -> Optional[dict[str, float]]:
    """The rates cached under `key`, or `None` (nothing cached, or an unreadable cache, which
    the next `store_rates` replaces)."""
    entry = _read_cache(path).get(key)
    if not isinstance(entry, dict):
        return None
    rates = entry.get("images_per_second")
    if (not isinstance(rates, dict) or set(rates) != set(CPU_PRECISIONS)
            or not all(isinstance(value, (int, float)) and not isinstance(value, bool)
                       and 0 < value < math.inf for value in rates.values())):
        return None
    return {precision: float(value) for precision, value in rates.items()}


def store_rates(key: str, rates: dict[str, float], fingerprint: dict[str, str],
                path: str = DEFAULT_CACHE) -> None:
    """Caches `rates` under `key` (best effort: an unwritable cache only means probing again)."""
    cache = _read_cache(path)
    cache[key] = {"images_per_second": rates, "host": fingerprint,
                  "date": datetime.date.today().isoformat()}
    cache = dict(list(cache.items())[-MAX_CACHED_PROBES:])
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with atomic_path(path) as staging:
            with open(staging, "w", encoding="utf-8") as file:
                json.dump(cache, file, indent=1)
    except OSError as error:
        logger.warning("the precision probe's cache %s cannot be written (%s): the next run "
                       "probes again", path, error.strerror or error)


def _read_cache(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        cache = read_json_file(path, f"the precision probe's cache {path}", max_bytes=1 << 20)
    except KerasAlexNetError as error:
        logger.warning("%s: probing again", error)
        return {}
    return cache if isinstance(cache, dict) else {}


def choose_precision(subject: dict[str, Any], measure: Measure, cores: int,
                     path: str = DEFAULT_CACHE) -> tuple[str, dict[str, float], bool]:
    """The faster CPU precision for `subject`, the two rates (images/s), and whether they came
    from the cache; probes with `measure` and caches the rates when this host has none."""
    fingerprint = host_fingerprint(cores)
    key = probe_key(fingerprint, subject)
    rates = cached_rates(key, path)
    cached = rates is not None
    if rates is None:
        rates = {precision: measure(precision) for precision in CPU_PRECISIONS}
        store_rates(key, rates, fingerprint, path)
    return faster_precision(rates), rates, cached


def train_step_rate(model: keras.Model, batch_size: int, num_classes: int,
                    steps: int = TIMED_STEPS) -> float:
    """Training images per second of `model` (built in the precision to measure) on random
    batches: one step to trace, then the fastest of `steps` (a step slowed by something else on
    the machine says nothing about the arithmetic)."""
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (batch_size, *model.input_shape[1:]), dtype=np.uint8)
    labels = generator.integers(0, num_classes, (batch_size,))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="sparse_categorical_crossentropy", jit_compile=False)
    model.train_on_batch(images, labels)
    fastest = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        fastest = min(fastest, time.perf_counter() - start)
    return batch_size / fastest
