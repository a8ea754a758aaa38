"""Shared test fixtures: small CIFAR-format data sets written by the tests, and the real copy."""

import ctypes
import gc
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The real CIFAR-10 copy, ../shared/data's unless $KERAS_ALEXNET_TEST_CIFAR names another;
# `KERAS_ALEXNET_TEST_CIFAR=` (empty) runs the suite as on a machine without one.
SHARED_CIFAR = os.environ.get("KERAS_ALEXNET_TEST_CIFAR",
                              os.path.join(REPO, "..", "shared", "data", "cifar-10-batches-py"))
# Caches (JAX's compilation cache, the package's default) go to a directory of this test session,
# in this process and the ones it starts, not into the user's ~/.cache.
os.environ["XDG_CACHE_HOME"] = TEST_CACHE = tempfile.mkdtemp(prefix="keras_alexnet_tests_cache_")
# Keras' cache (downloaded presets, presets exported for `predict`) too.
os.environ["KERAS_HOME"] = os.path.join(TEST_CACHE, "keras")


# Known third-party warnings, filtered so that a new one, ours above all, shows in the summary.
THIRD_PARTY_WARNINGS = (
    # Keras' TensorFlow backend converts tensors with `np.array(x)`; NumPy 2 flags TensorFlow's
    # `__array__` without a `copy` keyword (hundreds of times a suite).
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
    # On Python 3.13, TensorFlow's AutoGraph (through gast) passes its annotations to the ast
    # nodes' constructors (hundreds of times a suite).
    "ignore:.*got an unexpected keyword argument '___pyct_anno':DeprecationWarning",
)
SLOWEST_TESTS_SHOWN = 15
# The network of the tests' small runs, in-process and on the command line: the seed's layers
# at a quarter of their widths, fc6 and fc7 of 64 (162,522 parameters against 23 million): what
# a run does to its files, signals and processes does not depend on the network's size.
TINY_MODEL = {"width_multiplier": 0.25, "dense_units": 64}
TINY_NETWORK = tuple(part for name, value in TINY_MODEL.items()
                     for part in ("--" + name.replace("_", "-"), str(value)))


def pytest_addoption(parser):
    parser.addoption("--run-large", action="store_true",
                     help="also run the tests marked large (CI does; a laptop's run leaves them)")


def pytest_collection_modifyitems(config, items):
    """Skips the tests marked large unless --run-large (keras-hub's habit)."""
    if config.getoption("--run-large"):
        return
    skip = pytest.mark.skip(reason="large: CI runs it (--run-large)")
    for item in items:
        if "large" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains, exports or starts processes (seconds to a "
                                       "minute each); `pytest -m 'not slow' tests` leaves them "
                                       "out for a quick check, CI runs everything")
    config.addinivalue_line("markers", "large: a full-size network, several processes or the "
                                       "notebook (GBs of memory, a minute or more); skipped "
                                       "unless --run-large, which CI gives")
    config.addinivalue_line("markers", "stack: run on every stack CI tests (.ci/stack), with the "
                                       "tests that are not slow")
    for line in THIRD_PARTY_WARNINGS:
        config.addinivalue_line("filterwarnings", line)
    if config.option.durations is None:  # `--durations N` on the command line wins
        config.option.durations = SLOWEST_TESTS_SHOWN


@pytest.fixture(autouse=True, scope="module")
def release_memory_after_each_module():
    """After each test module: Keras' global state cleared, garbage collected and the freed heap
    given back to the OS (glibc's `malloc_trim`), so the suite's peak memory is its largest
    module's, not the sum of what every module left behind."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def pytest_unconfigure(config):
    shutil.rmtree(TEST_CACHE, ignore_errors=True)


def softmax(logits):
    """Row-wise softmax in float64 NumPy: the probabilities a model's logits stand for."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def write_cifar_dir(path, per_batch=120, test_size=100, seed=0):
    """Writes a CIFAR-10 "python version" directory of random images; returns (x_train, y_train).

    Images are uint8 NHWC with random pixels; labels cycle through the ten classes. The files use
    the official layout: pickled dicts with b'data' (N, 3072) as R, G, B planes, b'labels', etc.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    images, labels = [], []
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = test_size if name == "test_batch" else per_batch
        x = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, size=count)]
        write_batch(os.path.join(path, name), x, y)
        if name != "test_batch":
            images.append(x)
            labels.extend(y)
    with open(os.path.join(path, "batches.meta"), "wb") as file:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                                      b"dog", b"frog", b"horse", b"ship", b"truck"]},
                    file, protocol=2)
    return np.concatenate(images), np.asarray(labels)


def write_batch(path, images, labels, **extra):
    """Writes one batch file in the official layout (images uint8 NHWC)."""
    data = np.asarray(images).transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {b"batch_label": b"test batch", b"labels": list(labels), b"data": data,
             b"filenames": [b"%05d.png" % i for i in range(len(images))], **extra}
    with open(path, "wb") as file:
        pickle.dump(batch, file, protocol=2)


@pytest.fixture
def cifar_dir(tmp_path):
    path = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(str(path))
    return str(path)


def pytest_terminal_summary(terminalreporter):
    """Says which data the end-to-end tests trained on, so a fallback is never silent."""
    if os.path.isdir(SHARED_CIFAR):
        terminalreporter.write_line(f"end-to-end tests: the real CIFAR-10 copy at {SHARED_CIFAR}")
    else:
        terminalreporter.write_line(f"end-to-end tests: no CIFAR-10 copy at {SHARED_CIFAR}, so "
                                    "they trained on random images in CIFAR-10's format")


@pytest.fixture(scope="session")
def e2e_data_dir(tmp_path_factory):
    """The real CIFAR-10 copy when ../shared has it, else a CIFAR-format set of random images
    that the test writes (the run's summary says which)."""
    if os.path.isdir(SHARED_CIFAR):
        return SHARED_CIFAR
    path = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py"
    write_cifar_dir(str(path), per_batch=220, test_size=200)
    return str(path)


def with_distinct_weights(model, images, seed=0):
    """Sets every batch norm's moving statistics to random values and fc8 so that its logits on
    `images` have mean 0 and spread 2 per class: the images then get clearly different
    probabilities (an untrained model gives all of them ≈ 0.1)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(scale=0.5, size=channels).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.3, 3.0, size=channels).astype(np.float32))
    features = keras.Model(model.input, model.get_layer("fc7").output)(images.astype("float32"))
    features = keras.ops.convert_to_numpy(features)
    kernel = rng.normal(size=(features.shape[1], 10))
    logits = features @ kernel
    kernel *= 2.0 / (logits.std(0) + 1e-12)
    fc8 = model.get_layer("fc8")
    fc8.kernel.assign(kernel.astype(np.float32))
    fc8.bias.assign((-(features @ kernel).mean(0)).astype(np.float32))
    return model


def perturbed(model, seed=1):
    """Adds seeded Gaussian noise to every float variable of `model` (a tenth of its mean size,
    0.1 where it is all zeros) and returns it: weights no fresh build of its config has (configs
    store their seed), so a test of saving and loading sees whether the weights were loaded."""
    rng = np.random.default_rng(seed)
    for variable in model.variables:
        if "float" not in str(variable.dtype):
            continue
        values = np.asarray(variable.numpy(), np.float64)
        scale = 0.1 * (np.abs(values).mean() or 1.0)
        variable.assign((values + rng.normal(scale=scale, size=values.shape)).astype("float32"))
    return model


def assert_holds_stored_weights(model, weights_path):
    """Asserts that `model`'s weights are the arrays in a `.weights.h5` file, read with h5py
    (float16 kernels widened): each weight matches one stored array, and none is left over."""
    import h5py

    stored = []
    with h5py.File(weights_path, "r") as file:
        file.visititems(lambda name, item: stored.append(item[()].astype(np.float32))
                        if isinstance(item, h5py.Dataset) else None)
    assert len(stored) == len(model.weights)
    for weight in model.weights:
        values = np.asarray(weight.numpy(), np.float32)
        match = next((index for index, array in enumerate(stored)
                      if array.shape == values.shape and np.array_equal(array, values)), None)
        assert match is not None, f"{weight.path} is none of the stored arrays"
        stored.pop(match)


def run_cli(*args, cwd=None, env=None):
    """Runs `python -m keras_alexnet.cli ARGS` in a fresh process; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "keras_alexnet.cli", *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture
def run_cli_here(capfd, monkeypatch):
    """`run_cli` in this process: the same command line and exit status without a new
    interpreter and its TensorFlow import (seconds each); what it writes to file descriptors 1
    and 2 is captured, so a line TensorFlow's C++ side would print counts too."""
    from keras_alexnet import cli

    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        capfd.readouterr()
        status = cli.main([str(arg) for arg in args])
        stdout, stderr = capfd.readouterr()
        return subprocess.CompletedProcess(args, status, stdout, stderr)

    return run


def write_image_folder(root, images, labels, class_names):
    """Writes `images` as PNG files into class sub-folders of `root` (the image-folder layout);
    returns `root`."""
    from PIL import Image

    for index, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, class_names[label])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{index:05d}.png"))
    return str(root)


@pytest.fixture(scope="session")
def cifar_image_folder(tmp_path_factory, e2e_data_dir):
    """CIFAR-10's own images (the real copy when ../shared has it) as a folder data set: 30 PNG
    files in each of the ten class folders."""
    from keras_alexnet.data.cifar10 import CLASS_NAMES, load_cifar10

    data = load_cifar10(e2e_data_dir)
    picks = np.concatenate([np.flatnonzero(data.y_train == label)[:30] for label in range(10)])
    return write_image_folder(tmp_path_factory.mktemp("folder") / "cifar10_png",
                              data.x_train[picks], data.y_train[picks], CLASS_NAMES)


def interrupt_at(epoch):
    """A Keras callback that is a Ctrl-C as epoch `epoch` (0-based) begins."""
    import keras

    class InterruptAt(keras.callbacks.Callback):
        def on_epoch_begin(self, begun, logs=None):
            if begun == epoch:
                raise KeyboardInterrupt

    return InterruptAt()


def stand_in_tfds(data_dir, name, split_sizes, examples):
    """tfds' stand-in data for `name` (`tfds.testing.mock_data`, `examples` random examples per
    split read) under a `dataset_info.json` that declares `split_sizes`, as a prepared copy of
    the data set would (the stand-in data alone declares no splits)."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(data_dir))
    template = tfds.core.naming.ShardedFileTemplate(
        data_dir=builder.data_dir, dataset_name=builder.name, filetype_suffix="tfrecord")
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=split, shard_lengths=[size], num_bytes=0,
                            filename_template=template.replace(split=split))
        for split, size in split_sizes.items()]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)
    return tfds.testing.mock_data(num_examples=examples, data_dir=str(data_dir),
                                  policy=tfds.testing.MockPolicy.USE_FILES)
