"""One run on several processes: each process's share of the global batches, joining, the
errors; and (slow) two `keras-alexnet train` processes on 127.0.0.1 against one, a killed one,
and a restarted pair."""

import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_alexnet.data.device_pipeline import IndexBatches
from keras_alexnet.data.process_shard import ProcessShard
from keras_alexnet.errors import ConfigError, PeerLost
from keras_alexnet.run_dir import read_history
from keras_alexnet.training import multi_host

CLUSTER_VARIABLES = (multi_host.JOB_ADDRESSES, multi_host.NUM_PROCESSES, multi_host.PROCESS_ID,
                     multi_host.TPU_WORKER_HOSTNAMES)


def test_the_shares_of_the_processes_are_the_global_batch_in_order():
    batch = np.arange(10, 20)
    shares = [ProcessShard(index, 2).share(batch) for index in range(2)]
    np.testing.assert_array_equal(np.concatenate(shares), batch)
    thirds = [ProcessShard(index, 3).share(np.arange(10)).tolist() for index in range(3)]
    assert thirds == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # cut to a multiple of 3: 9 is left out


def test_the_index_batches_of_two_processes_make_the_one_process_batches():
    labels = np.arange(100) * 7 % 10
    one = IndexBatches(1000, labels, 16, ProcessShard(), seed=3)
    two = [IndexBatches(1000, labels, 16, ProcessShard(index, 2), seed=3) for index in range(2)]
    assert len(one) == len(two[0]) == 7  # 6 batches of 16 and one of 4
    for _ in range(3):  # three passes
        whole = [one[step] for step in range(len(one))]
        halves = [[shard[step] for step in range(len(one))] for shard in two]
        indices = np.concatenate([batch[0] for batch in whole])
        assert sorted(indices - 1000) == list(range(100))  # every image once, from `first` on
        for step, (indices, batch_labels) in enumerate(whole):
            np.testing.assert_array_equal(labels[indices - 1000], batch_labels)
            np.testing.assert_array_equal(
                np.concatenate([halves[0][step][0], halves[1][step][0]]), indices)
        for batches in (one, *two):
            batches.on_epoch_end()
    first_orders = []
    for epoch in (0, 1, 0):  # an epoch's order depends on the seed and the epoch alone
        one.assign(epoch)
        first_orders.append(one[0][0].tolist())
    assert first_orders[0] == first_orders[2] != first_orders[1]


def test_the_validation_batches_come_in_order_and_a_too_small_last_batch_is_left_out():
    batches = IndexBatches(40, np.zeros(9, "int64"), 4, ProcessShard(1, 2))
    assert [batch[0].tolist() for batch in batches] == [[42, 43], [46, 47]]
    assert len(IndexBatches(40, np.zeros(10, "int64"), 4, ProcessShard(1, 2))) == 3


def test_a_run_joins_other_processes_only_when_asked_or_started_as_one(monkeypatch):
    for name in CLUSTER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not multi_host.cluster_in_environment()
    assert multi_host.join("auto") == ProcessShard()
    assert multi_host.join("none") == ProcessShard()
    monkeypatch.setenv(multi_host.TPU_WORKER_HOSTNAMES, "t1v-0")  # a one-host TPU
    assert not multi_host.cluster_in_environment()
    monkeypatch.setenv(multi_host.TPU_WORKER_HOSTNAMES, "t1v-0,t1v-1")
    assert multi_host.cluster_in_environment()
    monkeypatch.delenv(multi_host.TPU_WORKER_HOSTNAMES)
    monkeypatch.setenv(multi_host.NUM_PROCESSES, "2")
    assert multi_host.cluster_in_environment()
    monkeypatch.setenv(multi_host.NUM_PROCESSES, "two")
    with pytest.raises(ConfigError, match="KERAS_DISTRIBUTION_NUM_PROCESSES='two' is not a whole"):
        multi_host.cluster_in_environment()


def test_multi_host_on_the_tensorflow_backend_is_refused_in_one_line(run_cli_here, cifar_dir,
                                                                     tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the suite runs on the TensorFlow backend")
    result = run_cli_here("train", "--distribution", "multi_host", "--data-dir", cifar_dir,
                          "--output-dir", tmp_path / "run", "--epochs", 1)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("keras-alexnet: error: distribution='multi_host' needs the "
                                    "JAX backend")
    assert "MultiWorkerMirroredStrategy" in result.stderr and not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_a_multi_host_run_that_finds_no_coordinator_ends_in_one_line(tmp_path):
    env = {name: value for name, value in os.environ.items() if name not in CLUSTER_VARIABLES}
    result = subprocess.run(
        [sys.executable, "-m", "keras_alexnet.cli", "train", "--distribution", "multi_host",
         "--output-dir", tmp_path / "run"], env={**env, "KERAS_BACKEND": "jax"},
        capture_output=True, text=True, timeout=WAIT_SECONDS)
    errors = [line for line in result.stderr.splitlines() if "keras-alexnet" in line]
    assert result.returncode == 2 and errors == [
        "keras-alexnet: error: cannot join the run's processes (coordinator_address should be "
        "defined.); set KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
        "KERAS_DISTRIBUTION_PROCESS_ID on every process"]
    assert not os.path.exists(tmp_path / "run")


def test_every_process_of_a_multi_host_run_trains_under_a_watcher(monkeypatch):
    from keras_alexnet.cli import watcher

    monkeypatch.delenv(watcher.WATCHED, raising=False)
    for process_id, watched in ((None, False), ("", False), ("0", True), ("1", True)):
        if process_id is None:
            monkeypatch.delenv(multi_host.PROCESS_ID, raising=False)
        else:
            monkeypatch.setenv(multi_host.PROCESS_ID, process_id)
        assert watcher.needs_watcher() is watched
    monkeypatch.setenv(watcher.WATCHED, "1")  # the watched child runs the command itself
    assert not watcher.needs_watcher()


def test_batches_that_do_not_split_over_the_processes_are_refused():
    multi_host.check_batches(ProcessShard(0, 2), 128, 1000)
    with pytest.raises(ConfigError, match="eval_batch_size 1001 does not split evenly over 2"):
        multi_host.check_batches(ProcessShard(0, 2), 128, 1001)
    with pytest.raises(ConfigError, match="batch_size 128 does not split evenly over 3"):
        multi_host.check_batches(ProcessShard(1, 3), 128, 999)


def test_a_collective_failing_for_a_lost_peer_becomes_one_line_naming_it():
    gloo = ValueError("UNKNOWN: Gloo AllGather failed: [pair.cc:538] Read error: Connection "
                      "reset by peer\nmore lines")
    for index, other in ((0, "process 1 of 2"), (1, "process 0 of 2")):
        with pytest.raises(PeerLost) as lost, multi_host.peers_watched(ProcessShard(index, 2)):
            raise gloo
        assert str(lost.value).startswith(f"{other} stopped, so process {index} stopped too")
        assert "\n" not in str(lost.value) and lost.value.exit_status == 75
    with pytest.raises(PeerLost, match="^another process of 3"), \
            multi_host.peers_watched(ProcessShard(2, 3)):
        raise gloo
    with pytest.raises(ValueError, match="a bug"), multi_host.peers_watched(ProcessShard(0, 2)):
        raise ValueError("a bug")  # not a collective's: raised as it is
    with pytest.raises(RuntimeError, match="RESOURCE_EXHAUSTED"), \
            multi_host.peers_watched(ProcessShard(0, 2)):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4 GiB")  # not a peer's
    with pytest.raises(ValueError, match="Gloo"), multi_host.peers_watched(ProcessShard()):
        raise gloo  # one process has no peer to lose


# --- Two processes on this machine (JAX's CPU collectives through Gloo) -----------------------

RUN = ("--train-subset", 256, "--validation-size", 100, "--epochs", 3, "--batch-size", 32,
       "--eval-batch-size", 50, "--checkpoint-every", 1, "--no-export", "--no-figures")
WAIT_SECONDS = 600  # the most any of these processes may take


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(count: int, data_dir, run_dir, *extra, only=None, port=None,
          own_flags=None) -> list[subprocess.Popen]:
    """`count` `keras-alexnet train` processes of one run on the JAX backend (those of
    `only`'s process ids, if given), joining at `port` (a free one by default), each with the
    flags `own_flags` gives its id, if any, after `extra`."""
    port = port or free_port()
    processes = []
    for index in range(count) if only is None else only:
        env = {**os.environ, "KERAS_BACKEND": "jax",
               multi_host.JOB_ADDRESSES: f"127.0.0.1:{port}",
               multi_host.NUM_PROCESSES: str(count), multi_host.PROCESS_ID: str(index)}
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_alexnet.cli", "train", "--data-dir", str(data_dir),
             "--output-dir", str(run_dir), *map(str, (*RUN, *extra)),
             *map(str, (own_flags or {}).get(index, ()))],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True))
    return processes


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """Each process's exit status, stdout and stderr, waiting at most `WAIT_SECONDS`; any left
    running then are killed."""
    deadline = time.monotonic() + WAIT_SECONDS
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=max(1, deadline - time.monotonic()))
            results.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
    return results


def load_weights(path):
    import keras

    import keras_alexnet.models.alexnet  # noqa: F401 (registers AlexNet with Keras)

    return keras.saving.load_model(path, compile=False).get_weights()


@pytest.fixture(scope="module")
def one_process_run(e2e_data_dir, tmp_path_factory):
    """The reference: the same run as one process of `distribution="multi_host"`, which cuts
    the same global batches."""
    run_dir = tmp_path_factory.mktemp("one_process") / "run"
    [(status, _, stderr)] = finish(start(1, e2e_data_dir, run_dir))
    assert status == 0, stderr[-3000:]
    return run_dir


@pytest.mark.large
@pytest.mark.slow
def test_two_processes_train_one_run_equal_to_one_process_on_the_same_batches(
        e2e_data_dir, one_process_run, tmp_path):
    run_dir = tmp_path / "run"
    (status0, stdout0, stderr0), (status1, stdout1, stderr1) = finish(
        start(2, e2e_data_dir, run_dir))
    assert (status0, status1) == (0, 0), stderr0[-3000:] + stderr1[-3000:]
    assert "2 replicas (multi_host)" in stderr0
    assert "test accuracy" in stdout0 and "trained 3 epochs; process 0" in stdout1
    assert sorted(os.listdir(run_dir)) == ["best.keras", "class_names.txt", "config.json",
                                           "history.csv", "metrics.json"]
    two, one = read_history(run_dir / "history.csv"), read_history(one_process_run / "history.csv")
    assert two["epoch"] == [0, 1, 2]  # one row per epoch, written once
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-5)
    differences = [np.max(np.abs(mine - theirs)) for mine, theirs in zip(
        load_weights(run_dir / "best.keras"), load_weights(one_process_run / "best.keras"))]
    print(f"largest weight difference, two processes against one: {max(differences):.2e}")
    assert max(differences) <= 1e-6


def when_backed_up(processes, run_dir) -> None:
    """Waits until the run has a backup, with every process still running."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not os.path.isfile(run_dir / "backup" / "latest.weights.h5"):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
        time.sleep(0.1)


def kill_when_backed_up(processes, victim: int, run_dir) -> tuple[int, str]:
    """Kills process `victim` once the run has a backup; returns the other's exit status and
    stderr, and prints how long it took to stop."""
    survivor = processes[1 - victim]
    try:
        when_backed_up(processes, run_dir)
        os.killpg(processes[victim].pid, signal.SIGKILL)
        killed = time.monotonic()
        survivor.wait(timeout=WAIT_SECONDS)
        print(f"process {1 - victim} stopped {time.monotonic() - killed:.2f} s after process "
              f"{victim} was killed")
    finally:
        results = finish(processes)
    status, _, stderr = results[1 - victim]
    return status, stderr


@pytest.mark.large
@pytest.mark.slow
def test_a_killed_process_ends_the_other_in_one_line_and_the_restarted_pair_resumes(
        e2e_data_dir, one_process_run, tmp_path):
    run_dir = tmp_path / "run"
    status, stderr = kill_when_backed_up(start(2, e2e_data_dir, run_dir), 1, run_dir)
    assert status == 75
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("keras-alexnet: error: process 1 of 2 stopped, so process 0 stopped "
                           "too (") and last.endswith("resume from the last backup")
    before = read_history(run_dir / "history.csv")["epoch"]
    assert before and before[-1] < 2

    (status0, _, stderr0), (status1, _, stderr1) = finish(start(2, e2e_data_dir, run_dir))
    assert (status0, status1) == (0, 0), stderr0[-3000:] + stderr1[-3000:]
    resumed, one = read_history(run_dir / "history.csv"), read_history(one_process_run /
                                                                        "history.csv")
    assert resumed["epoch"] == [0, 1, 2]
    for name in ("loss", "val_loss", "val_accuracy"):  # where an uninterrupted run would end
        np.testing.assert_allclose(resumed[name], one[name], rtol=0, atol=1e-5)
    for mine, theirs in zip(load_weights(run_dir / "best.keras"),
                            load_weights(one_process_run / "best.keras")):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-6)


@pytest.mark.large
@pytest.mark.slow
def test_when_process_0_is_killed_the_other_ends_in_one_line_naming_it(e2e_data_dir, tmp_path):
    """Process 0 holds JAX's coordination service, whose loss JAX answers with its own fatal
    log and an abort: the watcher of process 1 says it in one line instead."""
    run_dir = tmp_path / "run"
    status, stderr = kill_when_backed_up(start(2, e2e_data_dir, run_dir), 0, run_dir)
    assert status == 75
    errors = [line for line in stderr.splitlines() if line.startswith("keras-alexnet: error:")]
    assert len(errors) == 1 and "process 0 of 2" in errors[0], stderr[-3000:]
    assert "Terminating process" not in stderr and "Check failure" not in stderr


@pytest.mark.large
@pytest.mark.slow
def test_sigterm_stops_every_process_in_one_line_each_keeping_the_backup(e2e_data_dir, tmp_path):
    run_dir = tmp_path / "run"
    processes = start(2, e2e_data_dir, run_dir)
    try:
        when_backed_up(processes, run_dir)
        for process in processes:
            process.send_signal(signal.SIGTERM)  # process 1's watcher passes it on
    finally:
        results = finish(processes)
    stopped = []
    for index, (status, _, stderr) in enumerate(results):
        assert status == 75, stderr[-3000:]
        last = stderr.strip().splitlines()[-1]
        # A process still in a step when the other stopped after it reports the lost peer.
        lost = f"keras-alexnet: error: process {1 - index} of 2 stopped, so process {index}"
        assert last.startswith(("keras-alexnet: stopped by SIGTERM in epoch ", lost)), last
        if "SIGTERM" in last:
            stopped.append(index)
            assert last.endswith("start the run's 2 processes again to resume from the last "
                                 "backup written at an epoch's end")
    assert stopped
    assert os.path.isfile(run_dir / "backup" / "latest.weights.h5")
    assert not os.path.exists(run_dir / "metrics.json")


def test_streamed_images_are_split_between_the_processes_in_shares_of_each_batch(
        cifar_image_folder):
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.image_sets import load_image_set
    from keras_alexnet.training.fit_setup import image_set_data

    config = TrainConfig.from_recipe("paper", dataset=cifar_image_folder, validation_size=60,
                                     batch_size=16, eval_batch_size=20)
    # Each process its own data set (its file order seeded alike), as on separate hosts.
    one = image_set_data(load_image_set(config), config)
    shares = [image_set_data(load_image_set(config), config, ProcessShard(index, 2))
              for index in range(2)]
    # 300 images less 60 validation and 60 test: ceil(180 / 16) steps
    assert shares[0]["steps_per_epoch"] == one["steps_per_epoch"] == 12
    assert shares[0]["validation_steps"] == one["validation_steps"] == 3

    def first_pass(arguments, steps):
        batches = list(arguments["validation_data"].take(steps).as_numpy_iterator())
        return np.concatenate([images for images, _ in batches]), [len(y) for _, y in batches]

    whole, sizes = first_pass(one, 3)
    halves = [first_pass(share, 3) for share in shares]
    assert sizes == [20, 20, 20] and halves[0][1] == halves[1][1] == [10, 10, 10]
    together = np.concatenate([halves[0][0], halves[1][0]])
    assert sorted(map(bytes, together)) == sorted(map(bytes, whole))  # the same 60, each once
    # Training: each process half of every global batch (every other file of one order).
    global_batches = one["x"].take(3).as_numpy_iterator()
    share_batches = [share["x"].take(3).as_numpy_iterator() for share in shares]
    for (_, labels), (images0, labels0), (images1, labels1) in zip(global_batches,
                                                                   *share_batches):
        assert images0.shape == images1.shape == (8, 224, 224, 3)
        assert labels0.tolist() == labels[0::2].tolist()
        assert labels1.tolist() == labels[1::2].tolist()


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("keras-alexnet: error:")]


def assert_one_line_without_jax_log(status, stderr, expected_status, message):
    assert status == expected_status, stderr[-3000:]
    assert error_lines(stderr) == [f"keras-alexnet: error: {message}"], stderr[-3000:]
    assert "Check failure" not in stderr and "Terminating process" not in stderr


@pytest.mark.large
@pytest.mark.slow
def test_processes_started_with_other_settings_stop_at_once_naming_them(e2e_data_dir, tmp_path):
    started = time.monotonic()
    results = finish(start(2, e2e_data_dir, tmp_path / "run",
                           own_flags={1: ["--epochs", 2, "--seed", 7]}))
    print(f"both ended {time.monotonic() - started:.1f} s after they started")
    for status, _, stderr in results:
        assert_one_line_without_jax_log(
            status, stderr, 2, "process 1 of 2 was started with other settings than process 0 "
            "(epochs 3→2, seed 0→7); start every process with the same flags")
    assert not os.path.exists(tmp_path / "run")  # nothing written


@pytest.mark.large
@pytest.mark.slow
def test_a_process_that_never_comes_or_a_taken_port_ends_the_others_in_one_line(e2e_data_dir,
                                                                               tmp_path):
    """Run side by side: process 0 alone, process 1 alone, and both with the coordinator's
    port held by another program."""
    from keras_alexnet.training.cluster import JOIN_SECONDS

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        ports = [free_port(), free_port()]
        alone = [start(2, e2e_data_dir, tmp_path / f"alone{index}", only=[index],
                       port=ports[index]) for index in range(2)]
        blocked = start(2, e2e_data_dir, tmp_path / "blocked", port=port)
        results = [finish(processes) for processes in (*alone, blocked)]
        print(f"all ended {time.monotonic() - started:.1f} s after they started")
    for index, [(status, _, stderr)] in enumerate(results[:2]):
        assert_one_line_without_jax_log(
            status, stderr, 75, f"the run's 2 processes did not all join within {JOIN_SECONDS} "
            f"s (process {index} waited for them at 127.0.0.1:{ports[index]}); start all 2, "
            f"each with its own KERAS_DISTRIBUTION_PROCESS_ID (0 to 1)")
    (status0, _, stderr0), (status1, _, stderr1) = results[2]
    assert_one_line_without_jax_log(
        status0, stderr0, 2, f"process 0 cannot coordinate the run at 127.0.0.1:{port}: port "
        f"{port} is taken on this host (Address already in use); give "
        f"KERAS_DISTRIBUTION_JOB_ADDRESSES a free port")
    assert status1 == 75 and "did not all join" in error_lines(stderr1)[0]
    assert not [path for path in os.listdir(tmp_path)]  # no run directory was made


@pytest.mark.large
@pytest.mark.slow
def test_a_hung_process_ends_the_other_in_one_line_naming_it(e2e_data_dir, tmp_path):
    from keras_alexnet.training.cluster import HEARTBEAT_SECONDS

    run_dir = tmp_path / "run"
    processes = start(2, e2e_data_dir, run_dir, "--epochs", 30)
    try:
        when_backed_up(processes, run_dir)
        os.killpg(processes[1].pid, signal.SIGSTOP)  # hung: alive, silent
        stopped = time.monotonic()
        processes[0].wait(timeout=WAIT_SECONDS)
        seconds = time.monotonic() - stopped
        print(f"process 0 ended {seconds:.1f} s after process 1 was stopped")
        os.killpg(processes[1].pid, signal.SIGCONT)
    finally:
        results = finish(processes)
    status, _, stderr = results[0]
    assert_one_line_without_jax_log(
        status, stderr, 75, "process 1 of 2 stopped answering JAX's heartbeat (hung, stopped or "
        "cut off), so process 0 stopped too; start every process again to resume from the last "
        "backup")
    assert seconds < HEARTBEAT_SECONDS + 30


@pytest.mark.large
@pytest.mark.slow
def test_two_processes_train_on_images_that_do_not_divide_between_them(cifar_image_folder,
                                                                       tmp_path):
    results = finish(start(2, "unused", tmp_path / "run", "--recipe", "paper", "--dataset",
                           cifar_image_folder, "--train-subset", 41, "--validation-size", 45,
                           "--epochs", 1, "--batch-size", 16, "--eval-batch-size", 20))
    for status, _, stderr in results:
        assert status == 0, stderr[-3000:]
    assert read_history(tmp_path / "run" / "history.csv")["epoch"] == [0]


def test_images_that_do_not_divide_among_the_processes_still_fill_every_batch(
        cifar_image_folder, monkeypatch):
    """41 training and 45 held-out images on 2 processes: 21 and 20, 23 and 22 each, no image in
    both and none left out. Every process's batches are full, so the processes always feed
    global batches of one size."""
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data import imagenet
    from keras_alexnet.data.image_sets import load_image_set
    from keras_alexnet.training.fit_setup import image_set_data

    config = TrainConfig.from_recipe("paper", dataset=cifar_image_folder, validation_size=45,
                                     train_subset=41, batch_size=16, eval_batch_size=20)
    # Each process its own data set (its file order seeded alike), as on separate hosts.
    data = [load_image_set(config) for _ in range(3)]
    for index in range(2):
        share = image_set_data(data[index], config, ProcessShard(index, 2))
        assert (share["steps_per_epoch"], share["validation_steps"]) == (3, 3)
        train = [len(labels) for _, labels in share["x"].take(6).as_numpy_iterator()]
        held_out = [len(labels) for _, labels in
                    share["validation_data"].take(6).as_numpy_iterator()]
        assert train == [8] * 6 and held_out == [10] * 6  # two passes each
    # The images of each process's first pass as they were read, before their crops.
    for pipeline in ("train_dataset", "eval_dataset"):
        monkeypatch.setattr(imagenet, pipeline, lambda dataset, size, **_: dataset.batch(size))
    for split, sizes in (("train", (21, 20)), ("validation", (23, 22))):
        whole = [image.tobytes() for image, _ in getattr(data[2], split).as_numpy_iterator()]
        shares = []
        for index, size in enumerate(sizes):
            arguments = image_set_data(load_image_set(config), config, ProcessShard(index, 2))
            images = arguments["x" if split == "train" else "validation_data"].unbatch()
            shares.append([image.tobytes() for image, _ in images.take(size).as_numpy_iterator()])
        assert len(set(whole)) == len(whole) == sum(sizes)
        assert not set(shares[0]) & set(shares[1]), split  # no image on both processes
        assert sorted(shares[0] + shares[1]) == sorted(whole), split  # and none left out
