"""One run on several processes, one or more a host: JAX's distributed runtime, joined as Keras'
`keras.distribution.initialize` joins it, and what each process does.

Every process runs the same `train()` (the same `keras-alexnet train` command). They train one
`keras.distribution.DataParallel` model over every device of every process; `batch_size` stays
the global batch, and each process feeds its own share of every global batch
(`data.process_shard`). Process 0 holds the run directory: it alone writes `config.json`,
`history.csv`, `best.keras`, the backups, the test metrics, the figures and the export; the
others write nothing but a scratch copy of a resumed run's backup, which process 0 sends them
(`shared_run_files`), so the hosts need no shared file system. A process that dies ends the
others' next collective with an error, which `peers_watched` turns into one `PeerLost` line.

The processes find each other through the variables `keras.distribution.initialize` reads
(`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `…_NUM_PROCESSES`, `…_PROCESS_ID`), or, without them,
through JAX's own cluster detection (a TPU pod slice, Slurm, Open MPI).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import shutil
import socket
import sys
import tempfile
from typing import Iterator, Optional, Sequence

import keras
import numpy as np

from keras_alexnet.config import RUN_ONLY_FIELDS, TrainConfig
from keras_alexnet.data.process_shard import ONE_PROCESS, ProcessShard
from keras_alexnet.errors import ConfigError, PeerLost, TrainingError
from keras_alexnet.run_dir import check_directory, check_run_dir, run_lock
from keras_alexnet.training.cluster import (
    HEARTBEAT_SECONDS,
    JOB_ADDRESSES,
    JOIN_SECONDS,
    NUM_PROCESSES,
    PROCESS_ID,
)

TPU_WORKER_HOSTNAMES = "TPU_WORKER_HOSTNAMES"  # set on every host of a Cloud TPU slice
# How long process 0's end (test, figures, export) may keep the others waiting to leave together.
SHUTDOWN_SECONDS = 3600
LOST_PEER_SIGNS = ("Gloo", "NCCL", "Connection reset", "Connection closed", "UNAVAILABLE")
# What each process may set for itself (its paths, its output): not what is trained, nor
# what the processes do together (the validation batches, the backups).
PER_PROCESS_FIELDS = RUN_ONLY_FIELDS - {"eval_batch_size", "checkpoint_every"}
NEEDS_JAX = ("distribution='multi_host' needs the JAX backend (KERAS_BACKEND=jax): "
             "tf.distribute.MultiWorkerMirroredStrategy does not train Keras 3 models (their fit "
             "fails converting its PerReplica values)")


def cluster_in_environment() -> bool:
    """Whether this process was started as one of several: the Keras variables name more than
    one process, or this is a host of a multi-host TPU slice."""
    if os.environ.get(JOB_ADDRESSES) or (_int_variable(NUM_PROCESSES) or 1) > 1:
        return True
    return "," in os.environ.get(TPU_WORKER_HOSTNAMES, "")


def join(distribution: str) -> ProcessShard:
    """Joins the run's processes when `distribution` is `"multi_host"`, or `"auto"` with
    `cluster_in_environment()`; returns this process's `ProcessShard` (process 0 of 1, not
    joined, otherwise). Call it before anything runs on JAX; joining again in the same process
    is a no-op.

    Raises:
        ConfigError: On another backend than JAX, or a Keras variable that is not a number.
        TrainingError: The processes could not be joined (no coordinator found or reached).
    """
    if distribution not in ("multi_host", "auto") or (
            distribution == "auto" and not cluster_in_environment()):
        return ProcessShard()
    if keras.backend.backend() != "jax":
        raise ConfigError(NEEDS_JAX)
    import jax

    if not jax.distributed.is_initialized():
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices' own
        addresses = os.environ.get(JOB_ADDRESSES)
        if addresses and _int_variable(PROCESS_ID) == 0:
            _check_port_free(addresses.split(",")[0])
        try:
            jax.distributed.initialize(
                coordinator_address=addresses.split(",")[0] if addresses else None,
                num_processes=_int_variable(NUM_PROCESSES),
                process_id=_int_variable(PROCESS_ID), initialization_timeout=JOIN_SECONDS,
                **_taken_by(jax.distributed.initialize,
                            heartbeat_timeout_seconds=HEARTBEAT_SECONDS,
                            shutdown_timeout_seconds=SHUTDOWN_SECONDS))
        except (RuntimeError, ValueError) as error:
            raise TrainingError(f"cannot join the run's processes ({_first_line(error)}); set "
                                f"{JOB_ADDRESSES}, {NUM_PROCESSES} and {PROCESS_ID} on every "
                                f"process") from None
    return ProcessShard(jax.process_index(), jax.process_count(), joined=True)


def _check_port_free(address: str) -> None:
    """`ConfigError` when the port of `address`, where process 0 serves JAX's coordination
    service on every interface, is taken on this host (JAX would crash on it)."""
    port = int(address.rsplit(":", 1)[-1])
    dual = socket.has_dualstack_ipv6()
    try:
        socket.create_server(("::" if dual else "", port), dualstack_ipv6=dual,
                             family=socket.AF_INET6 if dual else socket.AF_INET).close()
    except OSError as error:
        raise ConfigError(f"process 0 cannot coordinate the run at {address}: port {port} is "
                          f"taken on this host ({os.strerror(error.errno or 0)}); give "
                          f"{JOB_ADDRESSES} a free port") from None


def agree_on_config(shard: ProcessShard, config: TrainConfig) -> None:
    """`ConfigError` on every process when one was started with settings that change what is
    trained other than process 0's (it names the process and the settings); a no-op for one
    process. Every process calls it once, right after `join`."""
    if shard.count == 1:
        return
    from jax.experimental import multihost_utils

    mine = np.frombuffer(json.dumps(config.to_dict(), sort_keys=True).encode(), np.uint8)
    with peers_watched(shard):
        lengths = np.asarray(multihost_utils.process_allgather(np.array(len(mine), np.int32)))
        padded = np.zeros(int(lengths.max()), np.uint8)
        padded[:len(mine)] = mine
        rows = np.asarray(multihost_utils.process_allgather(padded))
    first, *others = [json.loads(row[:length].tobytes()) for row, length in zip(rows, lengths)]
    for index, other in enumerate(others, start=1):
        differences = [f"{name} {first.get(name)!r}→{value!r}" for name, value in other.items()
                       if name not in PER_PROCESS_FIELDS and first.get(name) != value]
        if differences:
            raise ConfigError(f"process {index} of {shard.count} was started with other settings "
                              f"than process 0 ({', '.join(differences)}); start every process "
                              f"with the same flags")


def _taken_by(function, **arguments) -> dict:
    """The `arguments` that `function` takes (JAX before 0.5 has no heartbeat or shutdown
    timeouts)."""
    parameters = inspect.signature(function).parameters
    return {name: value for name, value in arguments.items() if name in parameters}


def _int_variable(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None


def check_batches(shard: ProcessShard, batch_size: int, eval_batch_size: int) -> None:
    """`ConfigError` unless both batch sizes split evenly over the processes."""
    for name, size in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
        if size % shard.count:
            raise ConfigError(f"{name} {size} does not split evenly over {shard.count} "
                              f"processes; give a multiple of {shard.count}")


def agree_to_start(shard: ProcessShard, ready: bool) -> bool:
    """Whether process 0 is ready to train (`ready` there), told to every process; a no-op for
    one process. Every process calls it once, at the same point."""
    if shard.count == 1:
        return ready
    from jax.experimental import multihost_utils

    with peers_watched(shard):
        flag = multihost_utils.broadcast_one_to_all(np.array(int(ready), np.int32))
    return bool(flag)


@contextlib.contextmanager
def run_held(config: TrainConfig, shard: ProcessShard = ONE_PROCESS) -> Iterator[None]:
    """Holds the run directory for the block: process 0 (a one-process run's only one) checks
    that the model directory can be made, holds `config.output_dir` (`run_lock`) and checks
    that it holds no other run (`check_run_dir`), then tells the other processes of a
    multi-host run whether it did; they wait for that, and raise `TrainingError` if not."""
    if not shard.is_writer:
        if not agree_to_start(shard, True):
            raise TrainingError(f"process 0 of {shard.count} did not start the run; its own "
                                f"error line says why")
        yield
        return
    with contextlib.ExitStack() as held:
        try:
            if config.export:
                check_directory(os.path.join(config.saved_models_dir, config.model_name),
                                "model directory")
            held.enter_context(run_lock(config.output_dir))
            check_run_dir(config)
        except BaseException:
            agree_to_start(shard, False)
            raise
        agree_to_start(shard, True)
        yield


@contextlib.contextmanager
def host_side() -> Iterator[None]:
    """Runs the block without the multi-process distribution, so that what process 0 alone does
    (saving, which makes Keras objects) starts no collective the others would have to join.
    A no-op without one."""
    distribution = keras.distribution.distribution()
    if (distribution is None or keras.backend.backend() != "jax"
            or sys.modules["jax"].process_count() == 1):  # several processes: JAX only
        yield
        return
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def process_local(model: keras.Model) -> keras.Model:
    """A copy of the trained `model` on this process's own device (its variables span every
    process), with Keras' distribution unset: for process 0's test, figures and export, which
    it does alone."""
    weights = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    keras.distribution.set_distribution(None)
    copy = model.__class__.from_config(model.get_config())
    copy.build(model.input_shape)
    copy.set_weights(weights)
    return copy


@contextlib.contextmanager
def shared_run_files(run_dir: str, names: Sequence[str], shard: ProcessShard) -> Iterator[str]:
    """The directory to read a run's resume files from: `run_dir` itself on process 0; on the
    others a scratch directory (removed after the block) holding the files `names` (paths
    under `run_dir`) that process 0 has, sent to every process."""
    if shard.count == 1:
        yield run_dir
        return
    from jax.experimental import multihost_utils

    contents = [_read_bytes(os.path.join(run_dir, name)) if shard.is_writer else b""
                for name in names]
    with peers_watched(shard):
        sizes = multihost_utils.broadcast_one_to_all(
            np.array([len(content) for content in contents], np.int64))
        joined = np.frombuffer(b"".join(contents), np.uint8) if shard.is_writer else (
            np.zeros(int(sizes.sum()), np.uint8))
        joined = np.asarray(multihost_utils.broadcast_one_to_all(joined)).tobytes()
    if shard.is_writer:
        yield run_dir
        return
    scratch = tempfile.mkdtemp(prefix=f"keras_alexnet_process{shard.index}_")
    try:
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        for name, start, end, size in zip(names, offsets[:-1], offsets[1:], sizes):
            if size:
                path = os.path.join(scratch, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as file:
                    file.write(joined[int(start):int(end)])
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        return b""


@contextlib.contextmanager
def peers_watched(shard: ProcessShard) -> Iterator[None]:
    """Turns the error a collective raises when another process has gone into `PeerLost`."""
    try:
        yield
    except (RuntimeError, ValueError) as error:
        if shard.count == 1 or not _is_lost_peer(error):
            raise
        other = f"process {1 - shard.index}" if shard.count == 2 else "another process"
        raise PeerLost(f"{other} of {shard.count} stopped, so process {shard.index} stopped too "
                       f"({_first_line(error, 200)}); start every process again to resume "
                       f"from the last backup") from None


def _is_lost_peer(error: Exception) -> bool:
    """Whether `error` is a collective's that lost its peer (Gloo on CPUs, NCCL on GPUs, or the
    runtime's connections), not, say, a device out of memory."""
    return any(sign in str(error) for sign in LOST_PEER_SIGNS)


def _first_line(error: Exception, limit: int = 300) -> str:
    """The first line of `error`'s message (JAX's run to many), at most `limit` characters; its
    type's name when it has none."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__
