"""The fast paths of a run — precision, XLA, steps per execution, where augmentation runs — with
`"auto"` resolved for the accelerator at hand.

| setting (`TrainConfig`) | `"auto"` / `None` picks |
|---|---|
| `mixed_precision` | `float32` on GPUs of compute capability 9 (H100, H200: faster here),    |
|                   | `mixed_bfloat16` on TPUs and other GPUs of compute capability ≥ 8 (A100), |
|                   | `mixed_float16` on older GPUs (T4, V100); on a CPU the faster of     |
|                   | float32 and bfloat16 as measured on this host (`host_probe`), or     |
|                   | float32 for a run too short to pay for the probe                   |
| `jit_compile` | Keras' own `"auto"`: XLA where the backend and model support it (the |
|               | TensorFlow backend leaves it off on a CPU-only machine) |
| `steps_per_execution` | 1 on a CPU, 32 on an accelerator (fewer callback round trips per epoch) |
| `augmentation` | `"device"` on the JAX backend, `"pipeline"` (tf.data) on TensorFlow; the |
|                | paper's network streams its images: always `"pipeline"` |
| `cpu_threads` | TensorFlow backend without a GPU or TPU: one op at a time on as many threads as |
|               | the process may use cores (TensorFlow's own pools oversubscribed them) |

The accelerator is found without importing TensorFlow on the JAX backend. `dtype_policy`,
`use_compilation_cache`, `use_cpu_threads` and `make_tensorflow_deterministic` apply a run's
precision, JAX compilation cache, thread pools and determinism.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import warnings
from typing import Callable, Optional, Union

import keras

from keras_alexnet.config import TrainConfig
from keras_alexnet.errors import ConfigError
from keras_alexnet.training import host_probe

logger = logging.getLogger(__name__)

ACCELERATOR_STEPS_PER_EXECUTION = 32
HOPPER = 9  # compute capability major version of the H100 and H200
# A run training fewer images than this takes float32 on a CPU without probing: the probe's few
# seconds would cost more than the faster precision saves.
PROBE_MIN_IMAGES = 20_000


@dataclasses.dataclass(frozen=True)
class Accelerator:
    """The device training runs on: `kind` is `"cpu"`, `"gpu"` or `"tpu"`; `compute_capability`
    is `(major, minor)` for an NVIDIA GPU, else `None`; `name` is the device's own description."""

    kind: str
    name: str
    compute_capability: Optional[tuple[int, int]] = None


@dataclasses.dataclass(frozen=True)
class Performance:
    """Resolved fast-path settings of one run (no `"auto"` left)."""

    mixed_precision: str
    jit_compile: Union[bool, str]
    steps_per_execution: int
    augmentation: str
    accelerator: Accelerator

    def summary(self) -> dict:
        """The settings as `metrics.json` records them, with the backend and the device."""
        return {"mixed_precision": self.mixed_precision, "jit_compile": self.jit_compile,
                "steps_per_execution": self.steps_per_execution,
                "augmentation": self.augmentation, "backend": keras.backend.backend(),
                "device": self.accelerator.name}


def find_accelerator() -> Accelerator:
    """The first accelerator the Keras backend sees, else the CPU."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        kind = device.platform if device.platform in ("gpu", "tpu") else "cpu"
        capability = getattr(device, "compute_capability", None)
        return Accelerator(kind, getattr(device, "device_kind", str(device)),
                           _parse_capability(capability))
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_logical_devices("TPU"):
            return Accelerator("tpu", "TPU")
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return Accelerator("gpu", details.get("device_name", gpus[0].name),
                               _parse_capability(details.get("compute_capability")))
    return Accelerator("cpu", "CPU")


@dataclasses.dataclass
class PrecisionProbe:
    """What `mixed_precision="auto"` measures on a CPU: the run's network (`subject`: its
    arguments and batch size, the cache key), `measure(precision)` its training images/s, and
    the images the run will train (a short run is not probed); once `choose` has run, `rates`
    holds the images/s by precision, measured now unless `cached`."""

    subject: dict
    measure: Callable[[str], float]
    train_images: int
    rates: dict = dataclasses.field(default_factory=dict)
    cached: bool = False

    def choose(self) -> str:
        """The faster precision on this host, logged with the two rates."""
        if self.train_images < PROBE_MIN_IMAGES:
            return "float32"
        choice, rates, cached = host_probe.choose_precision(self.subject, self.measure,
                                                            usable_cores())
        self.rates.update(rates)
        self.cached = cached
        logger.info("mixed_precision auto: %s, the faster on this CPU (%s, %d cores): float32 "
                    "%.0f, bfloat16 %.0f training images/s%s", choice, host_probe.cpu_model(),
                    usable_cores(), rates["float32"], rates["mixed_bfloat16"],
                    " (measured by an earlier run)" if cached else "")
        return choice


def resolve(config: TrainConfig, accelerator: Optional[Accelerator] = None,
            probe: Optional[PrecisionProbe] = None) -> Performance:
    """Resolves the config's `"auto"` fast-path settings for `accelerator` (default: this one);
    on a CPU, `mixed_precision="auto"` takes `probe`'s measured choice (float32 without one).

    Example:

    >>> resolve(TrainConfig(), Accelerator("gpu", "NVIDIA H100", (9, 0))).mixed_precision
    'float32'
    """
    accelerator = accelerator or find_accelerator()
    augmentation = _augmentation(config)  # a refusal comes before the probe's seconds
    return Performance(
        mixed_precision=_precision(config.mixed_precision, accelerator, probe),
        jit_compile=_jit_compile(config),
        steps_per_execution=config.steps_per_execution or (
            1 if accelerator.kind == "cpu" else ACCELERATOR_STEPS_PER_EXECUTION),
        augmentation=augmentation,
        accelerator=accelerator,
    )


def _precision(setting: str, accelerator: Accelerator, probe: Optional[PrecisionProbe]) -> str:
    if setting == "mixed_bfloat16" and accelerator.kind == "cpu" and not cpu_has_bfloat16():
        warnings.warn("mixed_bfloat16 on a CPU without bfloat16 instructions (AVX512-BF16 or "
                      "AMX) is emulated and slower than float32; pass mixed_precision="
                      "'float32' (--mixed-precision float32)", stacklevel=3)
    if setting != "auto":
        return setting
    if accelerator.kind == "tpu":
        return "mixed_bfloat16"
    if accelerator.kind == "gpu":
        major = (accelerator.compute_capability or (0, 0))[0]
        if major == HOPPER:  # float32 steps were faster here (docs/performance.md)
            return "float32"
        return "mixed_bfloat16" if major >= 8 else "mixed_float16"
    return probe.choose() if probe is not None else "float32"


def _jit_compile(config: TrainConfig) -> Union[bool, str]:
    if config.deterministic:
        return False  # XLA's GPU kernels do not promise bit-identical runs.
    return config.jit_compile


def _augmentation(config: TrainConfig) -> str:
    if config.streams_images:  # augmented in TensorFlow ops on any backend
        return "pipeline"
    setting, jax = config.augmentation, keras.backend.backend() == "jax"
    if setting == "pipeline" and jax:  # its layers would run JAX ops on tf.data's graph tensors
        raise ConfigError("TrainConfig.augmentation='pipeline' needs the TensorFlow backend; on "
                          "JAX the augmentation runs on the device ('device' or 'auto')")
    if setting != "auto":
        return setting
    return "device" if jax else "pipeline"


def _parse_capability(value) -> Optional[tuple[int, int]]:
    """`(8, 0)` from `(8, 0)` (TensorFlow) or `"8.0"` (JAX); `None` when unknown."""
    if value is None:
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return int(major), int(minor or 0)
    return int(value[0]), int(value[1])


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets Keras' global dtype policy (e.g. `"mixed_bfloat16"`) inside the block only."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def use_compilation_cache(path: Optional[str]) -> None:
    """On JAX, keeps every compiled program in the persistent cache at `path` (`None`: off), so
    an identical later run on this machine loads it instead of compiling it again."""
    if keras.backend.backend() != "jax" or path is None:
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def use_cpu_threads(threads: Optional[int]) -> None:
    """On the TensorFlow backend without a GPU or TPU, runs one op at a time (an inter-op pool
    of 1) on `threads` threads (the intra-op pool); `None`: the cores this process may use; 0:
    TensorFlow's own pools.

    The pools can only be set before TensorFlow's runtime starts; later the run keeps the pools
    it has (with a warning when `threads` was given).
    """
    if keras.backend.backend() != "tensorflow" or threads == 0:
        return
    import tensorflow as tf

    if any(tf.config.list_physical_devices(kind) for kind in ("GPU", "TPU")):
        return  # the model's ops run on the accelerator: TensorFlow's pools feed it as they are
    if not _one_op_at_a_time(threads or usable_cores()) and threads is not None:
        # (the automatic setting is a best effort: a notebook that ran TensorFlow keeps its own)
        warnings.warn(f"cpu_threads: TensorFlow had already started, so ops keep their thread "
                      f"pools instead of one op at a time on {threads} thread(s); restart the "
                      f"process for the faster pools", stacklevel=2)


def _one_op_at_a_time(threads: int) -> bool:
    """Sets TensorFlow's thread pools: one op at a time (inter-op 1) on `threads` threads each
    (intra-op); `False` when its runtime had started and they could not be set."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        return False
    return True


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (x86 flags `avx512_bf16` or `amx_bf16`,
    Arm `bf16`), read from `cpuinfo`; `True` where there is no such file to read (not Linux),
    so nothing is claimed there."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return True
    flags = {flag for line in text.splitlines()
             if line.split(":")[0].strip() in ("flags", "Features")
             for flag in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def make_tensorflow_deterministic() -> None:
    """TensorFlow op determinism on one CPU thread per op, so CPU reductions keep their order.

    The thread counts can only be set before TensorFlow's runtime starts; later (a notebook that
    already ran TensorFlow) a warning says that results may differ in their last bits.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if not _one_op_at_a_time(1):
        warnings.warn("deterministic=True: TensorFlow had already started, so ops keep their "
                      "thread pools; restart the process for bit-identical runs", stacklevel=2)
