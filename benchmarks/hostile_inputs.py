"""Hostile inputs and faults, each in a fresh process: how long the package takes to refuse or
survive it and how much memory that takes. One JSON line per case: `seconds` (the case alone),
`peak_growth_mb` (how far the case raised the process's peak resident memory) and
`peak_rss_mb` (the process's peak, TensorFlow included), and what the user got (`outcome`).

    python benchmarks/hostile_inputs.py            # every case
    python benchmarks/hostile_inputs.py --quick    # two cheap ones (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

from common import DEFAULT_DATA_DIR, emit

QUICK_CASES = ("gif_frame_bomb", "predict_fifo")


def png_bomb(width: int, height: int) -> bytes:
    """A grey PNG of zeros: a few hundred kB that declare (and decode to) width × height."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def gif_frame_bomb(side: int = 16384) -> bytes:
    """A GIF declaring a 1 × 1 screen whose one frame is side × side pixels (Pillow's LZW of
    zeros, the screen set to 1 × 1 after)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("P", (side, side), 0).save(buffer, format="GIF")
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", 1, 1)
    return bytes(data)


def small_model():
    """A model with AlexNet's input and output shapes, quick to export."""
    import keras

    return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(10)])


def classify_signature(work: str):
    """The `classify_image_bytes` signature of a small exported model, warmed up."""
    import numpy as np
    import tensorflow as tf

    from keras_alexnet.serving.export import export_saved_model, load_saved_model

    classify = load_saved_model(export_saved_model(small_model(), work, "m"),
                                "classify_image_bytes")
    classify(image_bytes=tf.constant([tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()]))
    return lambda images: classify(image_bytes=tf.constant(images))


def served(images_for):
    """A case that sends `images_for()` to the signature; its outcome is the refusal."""
    def prepare(work: str):
        import tensorflow as tf

        from keras_alexnet.serving.image_bytes import refusal

        classify, images = classify_signature(work), images_for()

        def run():
            try:
                classify(images)
                return "classified"
            except tf.errors.InvalidArgumentError as error:
                return refusal(error.message) or error.message.splitlines()[0]

        return run
    return prepare


def cut_jpeg_batch() -> list[bytes]:
    import numpy as np
    import tensorflow as tf

    picture = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(picture).numpy()
    return [jpeg, jpeg[:len(jpeg) // 2], jpeg]


def command(*args: str, file_limit: int | None = None):
    """A case that runs `keras-alexnet ARGS` in this process (a file-size limit makes every
    write past it fail, as on a full disk); its outcome is the exit status and stderr."""
    def prepare(work: str):
        import tensorflow  # noqa: F401  (imported first by cli.main: set-up, not the case)

        from keras_alexnet import cli

        arguments = [arg.format(work=work, data=DEFAULT_DATA_DIR) for arg in args]

        def run():
            if file_limit is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
            return f"exit {cli.main(arguments)}"

        return run
    return prepare


def with_files(prepare_case):
    """Makes the hostile files of the predict cases, then prepares the case."""
    def prepare(work: str):
        os.mkfifo(os.path.join(work, "pipe.png"))
        with open(os.path.join(work, "sparse.png"), "wb") as file:
            file.truncate(20 * 2 ** 30)
        return prepare_case(work)
    return prepare


def with_model_file(prepare_case):
    """Saves `small_model()` as `tiny.keras` for an export case, then prepares the case."""
    def prepare(work: str):
        small_model().save(os.path.join(work, "tiny.keras"))
        return prepare_case(work)
    return prepare


def torn_backup(work: str):
    """A 4-epoch fit with a backup after each, interrupted as the 4th begins, its latest backup
    cut in half; the case is the resumed fit (from the backup before)."""
    import keras
    import numpy as np

    from keras_alexnet import TrainConfig
    from keras_alexnet.training.callbacks import build_callbacks
    from keras_alexnet.training.checkpoints import resume_epoch

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    config = TrainConfig(output_dir=work, checkpoint_every=1)

    def model():
        network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        network.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return network

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise KeyboardInterrupt

    try:
        model().fit(x, y, epochs=4, verbose=0, callbacks=[*build_callbacks(config), Interrupt()])
    except KeyboardInterrupt:
        pass
    latest = os.path.join(work, "backup", "latest.weights.h5")
    with open(latest, "rb") as file:
        data = file.read()
    with open(latest, "wb") as file:
        file.write(data[:len(data) // 2])
    resumed = model()

    def run():
        callbacks = build_callbacks(config)
        history = resumed.fit(x, y, epochs=4, verbose=0, callbacks=callbacks,
                              initial_epoch=resume_epoch(resumed, callbacks))
        return f"resumed at epoch {4 - len(history.epoch) + 1} of 4"

    return run


def cut_history(work: str):
    """A history.csv cut mid-line; the case is reading it."""
    from keras_alexnet.errors import RunDirError
    from keras_alexnet.run_dir import read_history

    path = os.path.join(work, "history.csv")
    with open(path, "w") as file:
        file.write("epoch,loss,val_accuracy\n" + "".join(f"{e},2.1,0.3\n" for e in range(48))
                   + "48,2.0,0.")

    def run():
        try:
            read_history(path)
            return "read"
        except RunDirError as error:
            return str(error)

    return run


def killed_export(work: str):
    """What a killed export leaves (a whole staging directory of a process that no longer runs);
    the case is the next export, which removes it."""
    import shutil
    import socket

    from keras_alexnet.serving.export import export_saved_model

    model = small_model()
    first = export_saved_model(model, work, "m")
    gone = subprocess.Popen(["true"])  # a process id that no longer runs
    gone.wait()
    shutil.move(first, os.path.join(work, "m", f".tmp-{socket.gethostname()}-{gone.pid}-0"))

    def run():
        exported = export_saved_model(model, work, "m")
        left = sorted(os.listdir(os.path.join(work, "m")))
        return f"exported version {os.path.basename(exported)}; the model directory holds {left}"

    return run


def served_many(count: int, signature: str):
    """A case that sends `count` images (zeros, or 32 × 32 PNGs for `classify_image_bytes`) in
    one request to the seed network's export; its outcome is the number of answers."""
    def prepare(work: str):
        import numpy as np
        import tensorflow as tf

        from keras_alexnet.models.build import build_model
        from keras_alexnet.serving.export import export_saved_model, load_saved_model

        serve = load_saved_model(export_saved_model(build_model(seed=0), work, "m"), signature)
        if signature == "serving_default":
            images = {"images": tf.zeros((count, 32, 32, 3), tf.uint8)}
            warm_up = {"images": tf.zeros((1, 32, 32, 3), tf.uint8)}
        else:
            png = tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)).numpy()
            images, warm_up = {"image_bytes": tf.constant([png] * count)}, {
                "image_bytes": tf.constant([png])}
        serve(**warm_up)
        return lambda: f"{len(serve(**images)['class_id'])} answers"
    return prepare


def keras_file_declaring(**declared):
    """A case that evaluates a 30 kB `.keras` file whose config declares `declared` (its weights
    are a small model's)."""
    def prepare(work: str):
        import json
        import zipfile

        from keras_alexnet.models.build import build_model

        small, path = os.path.join(work, "small.keras"), os.path.join(work, "declared.keras")
        build_model(width_multiplier=0.25, dense_units=64).save(small)
        with zipfile.ZipFile(small) as source, zipfile.ZipFile(path, "w") as target:
            for item in source.infolist():
                data = source.read(item)
                if item.filename == "config.json":
                    config = json.loads(data)
                    config["config"].update(declared)
                    data = json.dumps(config).encode()
                target.writestr(item, data)
        return command("evaluate", path, "--data-dir", "{data}")(work)
    return prepare


def after(make, prepare_case):
    """Runs `make(work)` (writes the hostile files), then prepares the case."""
    def prepare(work: str):
        make(work)
        return prepare_case(work)
    return prepare


def write_files(**files: str):
    """A `make` for `after`: writes each `name=text` under `work` (`__` in a name is a `/`)."""
    def make(work: str):
        for name, text in files.items():
            path = os.path.join(work, name.replace("__", "/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as file:
                file.write(text)
    return make


def linked_backup(work: str) -> None:
    os.makedirs(os.path.join(work, "elsewhere"))
    os.makedirs(os.path.join(work, "run"))
    os.symlink(os.path.join(work, "elsewhere"), os.path.join(work, "run", "backup"))


def superscript_version(work: str) -> None:
    """A model directory holding version 1 and a folder named `²` (a digit to `str.isdigit`)."""
    from keras_alexnet.serving.export import export_saved_model

    export_saved_model(small_model(), work, "m")
    os.makedirs(os.path.join(work, "m", "²"))


HOLD_RUN_DIR = """
import sys, time
from keras_alexnet.run_dir import run_lock
with run_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def live_run_directory(work: str):
    """Another process trains into `work/run` (it holds the directory); the case is a `train`
    into the same directory."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN_DIR, os.path.join(work, "run")],
                              stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    run = command(*SMALL_RUN)(work)

    def case():
        try:
            return run()
        finally:
            holder.kill()
            holder.wait()

    return case


def loopback(answer) -> str:
    """The URL of a loopback server that reads one request and then calls
    `answer(connection)`."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        connection, _ = listener.accept()
        with connection:
            connection.recv(1 << 20)
            try:
                answer(connection)
            except OSError:  # the client hung up
                pass

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def hostile_server(answer):
    """A case that runs `predict --server` against a loopback server that reads the request and
    then calls `answer(connection)`."""
    def prepare(work: str):
        image = os.path.join(work, "cat.png")
        with open(image, "wb") as file:
            file.write(png_bomb(32, 32))
        return command("predict", image, "--server", loopback(answer), "--timeout", "2")(work)
    return prepare


def endless_answer(connection) -> None:
    """An answer that never ends: 1 MiB chunks, up to 10 GiB."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(10_240):
        connection.sendall(b"100000\r\n" + b" " * 0x100000 + b"\r\n")


def one_byte_a_second(connection) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        connection.sendall(bytes([byte]))
        time.sleep(1)


def sigterm_in_training(work: str):
    """A seed-recipe run on 4,096 real images (32 steps an epoch); SIGTERM arrives 20 s into
    the case. Its outcome: the exit status and the seconds from the signal to the exit."""
    import threading

    run = command("train", "--data-dir", "{data}", "--train-subset", "4096",
                  "--validation-size", "1000", "--epochs", "4", "--output-dir", "{work}/run",
                  "--no-export", "--no-figures", "--verbose", "0")(work)
    sent = []

    def send():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGTERM)

    def case():
        threading.Timer(20, send).start()
        outcome = run()
        return f"{outcome}, {time.perf_counter() - sent[0]:.2f} s after SIGTERM"

    return case


def folder_of(hostile):
    """A case that lists (and for `read=True` decodes) a folder of two classes of three PNGs
    each into which `hostile(folder)` put something; its outcome is what was skipped, or the
    error line."""
    def prepare(work: str, read: bool = False):
        import numpy as np
        from PIL import Image

        from keras_alexnet.data.image_folder import read_image_folder
        from keras_alexnet.errors import DataError

        folder = os.path.join(work, "folder")
        for name in ("cat", "dog"):
            os.makedirs(os.path.join(folder, name))
            for index in range(3):
                Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(
                    os.path.join(folder, name, f"{index}.png"))
        hostile(folder)

        def run():
            try:
                listed = read_image_folder(folder)
            except DataError as error:
                return f"DataError: {error}"
            return f"{len(listed.paths)} images, skipped {listed.skipped}"
        return run
    return prepare


def dev_zero_link(folder: str) -> None:
    os.symlink("/dev/zero", os.path.join(folder, "cat", "zero.png"))


def fifo_image(folder: str) -> None:
    os.mkfifo(os.path.join(folder, "dog", "pipe.png"))


def declared_20000px_png(folder: str) -> None:
    with open(os.path.join(folder, "dog", "bomb.png"), "wb") as file:
        file.write(png_bomb(20000, 20000))


def newline_class(folder: str) -> None:
    os.rename(os.path.join(folder, "dog"), os.path.join(folder, "dog\nhouse"))


def names_not_utf8(work: str):
    """A paper-recipe data set of a folder whose files are named `caf\\xe9N.png`; the case reads
    every image through the training pipeline."""
    import numpy as np
    from PIL import Image

    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.image_sets import load_image_set

    folder = os.fsencode(os.path.join(work, "folder"))
    for name in (b"cat", b"dog"):
        os.makedirs(os.path.join(folder, name))
        for index in range(4):
            Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(
                os.fsdecode(os.path.join(folder, name, b"caf\xe9%d.png" % index)))
    config = TrainConfig.from_recipe("paper", dataset=os.fsdecode(folder), validation_size=2)

    def run():
        data = load_image_set(config)
        return f"read {sum(1 for _ in data.train) + sum(1 for _ in data.validation)} images"
    return run


def class_names_of_another_length(work: str):
    """`predict` with an exported 10-class model and a `--class-names` file of 11 names."""
    from keras_alexnet.serving.export import export_saved_model

    export_saved_model(small_model(), work, "m")
    with open(os.path.join(work, "eleven.txt"), "w") as file:
        file.writelines(f"class {index}\n" for index in range(11))
    with open(os.path.join(work, "image.png"), "wb") as file:
        file.write(png_bomb(32, 32))
    return command("predict", "{work}/image.png", "--model", "{work}/m", "--class-names",
                   "{work}/eleven.txt")(work)


def sigterm_in_the_test(work: str):
    """A one-epoch CLI run whose test (after `fit`) gets SIGTERM, then the same command again;
    its outcome is both exit statuses and whether the second trained."""
    import contextlib
    import io

    from keras_alexnet.training import recipe

    run = command(*SMALL_RUN[:-4], "--no-figures", "--saved-models-dir", "{work}/sm",
                  "--verbose", "2")(work)
    metrics = recipe.run_metrics

    def signalled(*args, **kwargs):
        recipe.run_metrics = metrics
        os.kill(os.getpid(), signal.SIGTERM)
        return metrics(*args, **kwargs)

    def case():
        recipe.run_metrics = signalled
        first = run()
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            second = run()
        trained = "trained again" if "Epoch" in output.getvalue() else "did not train again"
        return f"{first}; the same command: {second}, {trained}"
    return case


def processes(*, only=(0, 1), own_flags=None, port_taken=False, stop_process=None):
    """A case that starts processes `only` of a two-process JAX run of `SMALL_RUN` (process 1
    with `own_flags`; the coordinator's port held by another socket; or `stop_process` stopped
    with SIGSTOP 20 s in, then killed once the others ended); its outcome is each other one's
    exit status, seconds (from the start, or from the SIGSTOP) and last error line, and the
    largest peak memory among them."""
    import socket

    def prepare(work: str):
        def run():
            with contextlib.ExitStack() as held:
                listener = held.enter_context(socket.create_server(("127.0.0.1", 0)))
                port = listener.getsockname()[1]
                if not port_taken:
                    listener.close()
                started = time.perf_counter()
                children = [_process(index, port, work, own_flags if index else None)
                            for index in only]
                if stop_process is not None:
                    time.sleep(20)
                    os.killpg(children[stop_process].pid, signal.SIGSTOP)
                    started = time.perf_counter()  # the others' seconds count from here
                ended = [_ended(child, started) for index, child in zip(only, children)
                         if index != stop_process]
                if stop_process is not None:
                    os.killpg(children[stop_process].pid, signal.SIGKILL)
                    children[stop_process].communicate()
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            return "; ".join(ended) + f"; largest process peak {peak:.0f} MB"
        return run
    return prepare


def _process(index: int, port: int, work: str, own_flags) -> subprocess.Popen:
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
           "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": str(index)}
    arguments = [arg.format(work=work, data=DEFAULT_DATA_DIR) for arg in SMALL_RUN]
    return subprocess.Popen([sys.executable, "-m", "keras_alexnet.cli", *arguments,
                             "--epochs", "30", *(own_flags or ())], env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _ended(child: subprocess.Popen, started: float) -> str:
    try:
        _, stderr = child.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        return "still running after 300 s"
    errors = [line for line in stderr.splitlines() if line.startswith("keras-alexnet: error")]
    return (f"exit {child.returncode} after {time.perf_counter() - started:.1f} s"
            f"{': ' + errors[-1][22:] if errors else ''}")


SMALL_RUN = ("train", "--data-dir", "{data}", "--train-subset", "64", "--validation-size", "100",
             "--epochs", "1", "--output-dir", "{work}/run", "--no-export", "--no-figures",
             "--verbose", "0")
CASES = {
    "gif_frame_bomb": served(lambda: [gif_frame_bomb()]),
    "png_bomb_20000px": served(lambda: [png_bomb(20000, 20000)]),
    "request_of_five_4000px_pngs": served(lambda: [png_bomb(4000, 4000)] * 5),
    "cut_jpeg_in_batch": served(cut_jpeg_batch),
    "predict_dev_zero": with_files(command("predict", "/dev/zero", "--server", "http://127.0.0.1:9")),
    "predict_fifo": with_files(command("predict", "{work}/pipe.png", "--server",
                                       "http://127.0.0.1:9")),
    "predict_sparse_20gb": with_files(command("predict", "{work}/sparse.png", "--server",
                                              "http://127.0.0.1:9")),
    "full_disk_export": with_model_file(command("export", "{work}/tiny.keras",
                                                "--saved-models-dir", "{work}/sm",
                                                file_limit=60_000)),
    "full_disk_train": command(*SMALL_RUN, file_limit=20_000_000),
    "torn_backup": torn_backup,
    "cut_history": cut_history,
    "killed_export": killed_export,
    "train_into_a_live_run_directory": live_run_directory,
    "output_dir_is_a_file": after(write_files(run="a file"), command(*SMALL_RUN)),
    "output_dir_in_proc": command(*SMALL_RUN[:-6], "--output-dir", "/proc/keras_alexnet/run",
                                  *SMALL_RUN[-4:]),
    "linked_backup": after(linked_backup, command(*SMALL_RUN)),
    "empty_config_on_resume": after(write_files(run__backup__x="", **{"run__config.json": "{}"}),
                                    command("train", "--resume", "{work}/run")),
    "keras_file_not_a_zip": after(write_files(**{"notes.keras": "text"}),
                                  command("evaluate", "{work}/notes.keras", "--data-dir",
                                          "{data}")),
    "ten_crop_pad_1000": command("evaluate", "{work}/model.keras", "--ten-crop",
                                 "--ten-crop-pad", "1000"),
    "version_folder_superscript_two": with_model_file(after(superscript_version, command(
        "export", "{work}/tiny.keras", "--saved-models-dir", "{work}",
        "--model-name", "m"))),
    "sigterm_in_training": sigterm_in_training,
    "sigterm_in_the_test_after_training": sigterm_in_the_test,
    "folder_link_to_dev_zero": folder_of(dev_zero_link),
    "folder_fifo": folder_of(fifo_image),
    "folder_png_declaring_20000px": folder_of(declared_20000px_png),
    "folder_class_name_with_a_newline": folder_of(newline_class),
    "folder_names_not_utf8": names_not_utf8,
    "predict_class_names_of_another_length": class_names_of_another_length,
    "tfds_set_without_network": command("train", "--recipe", "paper", "--dataset", "mnist",
                                        "--data-dir", "{work}/tfds", "--output-dir",
                                        "{work}/run"),
    "processes_with_other_epochs": processes(own_flags=["--epochs", "3"]),
    "process_0_alone": processes(only=(0,)),
    "process_1_alone": processes(only=(1,)),
    "coordinator_port_taken": processes(port_taken=True),
    "process_1_stopped_by_sigstop": processes(stop_process=1),
    "keras_file_declaring_100000_classes": keras_file_declaring(num_classes=100_000),
    "server_answers_without_end": hostile_server(endless_answer),
    "server_answers_a_byte_a_second": hostile_server(one_byte_a_second),
    **{f"serve_{count}_images": served_many(count, "serving_default")
       for count in (256, 1000, 10_000, 30_000)},
    **{f"classify_{count}_pngs": served_many(count, "classify_image_bytes")
       for count in (1000, 10_000)},
}


# Presets by URL: a loopback server answering what no HTTP server would, or serving a hostile
# archive; each case downloads into a fresh Keras cache and says what is left there.
DRIP_DEADLINE_SECONDS = 5.0  # the cases' total deadline instead of the default 600 s


def fetched_preset(answer=None, archive=None, before=None):
    """A case that fetches a preset from a loopback server: one that `answer`s the request, or
    serves the bytes `archive(work)` makes; `before(cache)` spoils the cache first. Its outcome
    is the error line (or "loaded") and what the cache holds after."""
    def prepare(work: str):
        import hashlib

        from keras_alexnet.errors import KerasAlexNetError
        from keras_alexnet.utils import download

        os.environ["KERAS_HOME"] = os.path.join(work, "keras")
        download.DOWNLOAD_TIMEOUT_SECONDS = DRIP_DEADLINE_SECONDS
        cache = download.keras_cache_dir("presets")
        body = archive(work) if archive else b""
        served = answer_bytes(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                              + body)
        url = loopback(answer or served) + "/preset.tar.gz"
        digest = hashlib.sha256(body).hexdigest()
        if before:
            before(cache)

        def run():
            try:
                download.preset_source(url, digest)
                outcome = "loaded"
            except KerasAlexNetError as error:
                outcome = str(error).replace(url, "URL")
            left = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
            return f"{outcome}; the cache holds {left}"
        return run
    return prepare


def drip_every_2_seconds(connection) -> None:
    """A byte of the body every 2 s, each within any per-read timeout, 30 of the 100 (60 s)."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    for _ in range(30):
        time.sleep(2)
        connection.sendall(b"x")


def answer_bytes(data: bytes):
    return lambda connection: connection.sendall(data)


def shipped_preset_tar_gz(extra=()):
    """The shipped fast preset as a `.tar.gz`, with `extra` (`TarInfo`, data) members added."""
    def make(work: str) -> bytes:
        import io
        import tarfile

        from keras_alexnet.models.catalogue import SHIPPED_DIR

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
            archive.add(os.path.join(SHIPPED_DIR, "alexnet_fast_cifar10"), arcname="preset")
            for member, data in extra:
                archive.addfile(member, data)
        return buffer.getvalue()
    return make


def tar_member(name: str, size: int = 0):
    import tarfile

    member = tarfile.TarInfo(name)
    member.size = size
    return member


class Zeros:
    """`size` zero bytes to read."""

    def __init__(self, size: int):
        self.left = size

    def read(self, count: int = -1) -> bytes:
        count = self.left if count < 0 else min(count, self.left)
        self.left -= count
        return bytes(count)


def cache_is_a_file(cache: str) -> None:
    os.makedirs(os.path.dirname(cache))
    with open(cache, "w") as file:
        file.write("a file")


SIGNALLED_DOWNLOAD = """
import sys
from keras_alexnet.errors import KerasAlexNetError
from keras_alexnet.utils.download import preset_source
try:
    preset_source(sys.argv[1], sha256="0" * 64)
except KerasAlexNetError as error:
    print(f"keras-alexnet: {error}", file=sys.stderr)
    sys.exit(error.exit_status)
"""


def sigterm_in_a_download(work: str):
    """A download of a 1.3 GB body of which 64 MB come at once, in another process, which gets
    SIGTERM once they came. Its outcome: the exit status, stderr and what the cache holds."""
    import threading

    came = threading.Event()

    def answer(connection):
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1300000000\r\n\r\n"
                           + bytes(64 << 20))
        came.set()
        time.sleep(120)

    url = loopback(answer) + "/preset.tar.gz"
    env = {**os.environ, "KERAS_HOME": os.path.join(work, "keras")}
    cache = os.path.join(work, "keras", "keras_alexnet", "presets")

    def run():
        process = subprocess.Popen([sys.executable, "-c", SIGNALLED_DOWNLOAD, url], env=env,
                                   stderr=subprocess.PIPE, text=True)
        came.wait(120)
        time.sleep(1)  # the last bytes written into the staging directory
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        return (f"exit {process.returncode}: {stderr.strip()}; the cache holds "
                f"{sorted(os.listdir(cache))}")
    return run


DOWNLOAD_CASES = {
    "download_a_byte_every_2_s": fetched_preset(drip_every_2_seconds),
    "download_bad_status_line": fetched_preset(answer_bytes(b"HELLO\r\n\r\n")),
    "download_bad_chunk": fetched_preset(answer_bytes(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")),
    "download_101_headers": fetched_preset(answer_bytes(
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(101)) + b"\r\n")),
    "download_100_kb_header_line": fetched_preset(answer_bytes(
        b"HTTP/1.1 200 OK\r\nX-Long: " + b"y" * 100_000 + b"\r\n\r\n")),
    "download_tar_member_2000_directories_deep": fetched_preset(archive=shipped_preset_tar_gz(
        [(tar_member("preset/" + "d/" * 2000 + "x"), None)])),
    "download_archive_unpacking_to_1.9_gib": fetched_preset(archive=shipped_preset_tar_gz(
        [(tar_member("preset/zeros.bin", 1900 * 2 ** 20), Zeros(1900 * 2 ** 20))])),
    "download_cache_is_a_file": fetched_preset(answer_bytes(b""), before=cache_is_a_file),
    "sigterm_in_a_download": sigterm_in_a_download,
}
CASES.update(DOWNLOAD_CASES)


# Exports, report and predict: places they cannot write, damaged run files, signals, many files.
def sparse(name: str, size: int, head: bytes = b""):
    """A `make` for `after`: a file `name` under `work` of `size` bytes, `head` then zeros,
    taking no disk."""
    def make(work: str) -> None:
        path = os.path.join(work, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(head)
            file.truncate(size)
    return make


def finished_run(work: str) -> None:
    """A finished run of the small network (untrained) in `work/run`, without its figures."""
    from keras_alexnet import AlexNet
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.run_dir import write_history, write_json

    run = os.path.join(work, "run")
    os.makedirs(run)
    write_json(os.path.join(run, "config.json"),
               TrainConfig(data_dir=DEFAULT_DATA_DIR, width_multiplier=0.25,
                           dense_units=64).to_dict())
    write_history(os.path.join(run, "history.csv"),
                  [{"epoch": 0, "loss": 2.0, "accuracy": 0.2, "val_loss": 2.1,
                    "val_accuracy": 0.2, "learning_rate": 0.01}])
    write_json(os.path.join(run, "metrics.json"), {"confusion_matrix": [[1] * 10] * 10})
    AlexNet(width_multiplier=0.25, dense_units=64, seed=0).save(os.path.join(run, "best.keras"))


def signalled(prepare_case, after_seconds: float):
    """Runs the case with SIGTERM sent `after_seconds` into it; its outcome adds what is left
    under `work` that the set-up did not write."""
    import threading

    def listing(work: str) -> set[str]:
        return {os.path.relpath(os.path.join(parent, name), work)
                for parent, folders, files in os.walk(work) for name in folders + files}

    def prepare(work: str):
        run = prepare_case(work)
        before = listing(work)

        def case():
            threading.Timer(after_seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()
            outcome = run()
            return f"{outcome}, left: {', '.join(sorted(listing(work) - before)) or 'nothing'}"
        return case
    return prepare


def many_large_pngs(count: int):
    """`predict` of `count` copies of a valid 4096² PNG of noise (about 50 MB each) with an
    exported small model: memory must not grow with `count`."""
    def prepare(work: str):
        import numpy as np
        from PIL import Image

        from keras_alexnet.serving.export import export_saved_model

        export_saved_model(small_model(), work, "m")
        pixels = np.random.default_rng(0).integers(0, 256, (4096, 4096, 3), dtype=np.uint8)
        first = os.path.join(work, "large_0.png")
        Image.fromarray(pixels).save(first, compress_level=1)
        for index in range(1, count):
            os.link(first, os.path.join(work, f"large_{index}.png"))
        paths = [os.path.join(work, f"large_{index}.png") for index in range(count)]
        run = command("predict", *paths, "--model", "{work}/m")(work)

        def case():
            with contextlib.redirect_stdout(io.StringIO()):
                return run()
        return case
    return prepare


def with_tiny(prepare_case):
    """`with_model_file`, the model saved as `tiny.keras`: the small AlexNet (the report's
    pictures need its layers)."""
    def prepare(work: str):
        from keras_alexnet import AlexNet

        AlexNet(width_multiplier=0.25, dense_units=64, seed=0).save(os.path.join(work,
                                                                                 "tiny.keras"))
        return prepare_case(work)
    return prepare


EXPORT_REPORT_PREDICT_CASES = {
    "export_output_is_a_directory": with_model_file(after(write_files(**{"m.tflite__x": ""}),
        command("export", "{work}/tiny.keras", "--format", "litert", "--output",
                "{work}/m.tflite"))),
    "export_output_in_proc": with_model_file(command(
        "export", "{work}/tiny.keras", "--format", "onnx", "--output", "/proc/m.onnx")),
    "export_output_under_a_file": with_model_file(after(write_files(a_file="x"), command(
        "export", "{work}/tiny.keras", "--format", "litert", "--output",
        "{work}/a_file/m.tflite"))),
    "export_max_image_pixels_beyond_int64": with_model_file(command(
        "export", "{work}/tiny.keras", "--saved-models-dir", "{work}/sm", "--max-image-pixels",
        str(2 ** 64))),
    "int8_calibration_on_a_5gb_zero_archive": with_model_file(after(
        sparse("data/cifar-10-python.tar.gz", 5 * 2 ** 30), command(
            "export", "{work}/tiny.keras", "--format", "litert", "--quantize", "int8",
            "--data-dir", "{work}/data", "--output", "{work}/m.tflite"))),
    "sigterm_in_a_litert_export": with_tiny(signalled(command(
        "export", "{work}/tiny.keras", "--format", "litert", "--output", "{work}/out/m.tflite"),
        1.5)),
    "sigterm_in_an_onnx_export": with_tiny(signalled(command(
        "export", "{work}/tiny.keras", "--format", "onnx", "--output", "{work}/out/m.onnx"), 0.8)),
    "sigterm_in_a_saved_model_export": with_tiny(signalled(command(
        "export", "{work}/tiny.keras", "--saved-models-dir", "{work}/sm"), 1.0)),
    "report_output_dir_is_a_file": after(finished_run, after(write_files(a_file="x"), command(
        "report", "{work}/run", "--output-dir", "{work}/a_file"))),
    "report_output_dir_in_proc": after(finished_run, command(
        "report", "{work}/run", "--output-dir", "/proc/keras_alexnet")),
    "report_config_not_json": after(finished_run, after(write_files(**{
        "run__config.json": "{not json"}), command("report", "{work}/run"))),
    "report_metrics_without_confusion": after(finished_run, after(write_files(**{
        "run__metrics.json": "{}"}), command("report", "{work}/run"))),
    "report_class_names_latin1": after(finished_run, after(
        sparse("run/class_names.txt", 5, "caf\xe9\n".encode("latin-1")),
        command("report", "{work}/run"))),
    "report_class_names_short": after(finished_run, after(write_files(**{
        "run__class_names.txt": "cat\n"}), command("report", "{work}/run"))),
    "report_of_a_plain_keras_file": with_model_file(command(
        "report", "{work}/tiny.keras", "--data-dir", "{data}", "--output-dir", "{work}/fig")),
    "sigterm_in_a_report": after(finished_run, signalled(command("report", "{work}/run"), 8.0)),
    "predict_class_names_latin1": with_files(after(
        sparse("names.txt", 5, "caf\xe9\n".encode("latin-1")), command(
            "predict", "{work}/pipe.png", "--server", "http://127.0.0.1:9", "--class-names",
            "{work}/names.txt"))),
    "predict_class_names_1gb_sparse": with_files(after(sparse("names.txt", 2 ** 30), command(
        "predict", "{work}/pipe.png", "--server", "http://127.0.0.1:9", "--class-names",
        "{work}/names.txt"))),
    **{f"predict_{count}_large_pngs": many_large_pngs(count) for count in (6, 60)},
}
CASES.update(EXPORT_REPORT_PREDICT_CASES)


# Presets and the SavedModel cache: copies of the fast shipped preset (its weights, and their
# sha256, kept) with their JSON files changed, given to `predict --model`; Keras' cache in `work`.

def crafted_preset(config=None, metadata=None, registered_name=None, hostile=None,
                   shipped="alexnet_fast_cifar10"):
    """A `make` for `after`: `work/preset`, the `shipped` preset with `config`'s entries in its
    network's config and `metadata`'s in its metadata (then `hostile(preset)` run), and
    `work/image.png`; Keras' cache goes to `work/keras`."""
    def make(work: str) -> None:
        import shutil

        from keras_alexnet.models.catalogue import SHIPPED_DIR

        os.environ["KERAS_HOME"] = os.path.join(work, "keras")
        preset = os.path.join(work, "preset")
        shutil.copytree(os.path.join(SHIPPED_DIR, shipped), preset)
        for name, entries in (("config.json", config), ("metadata.json", metadata)):
            path = os.path.join(preset, name)
            with open(path) as file:
                values = json.load(file)
            (values["config"] if name == "config.json" else values).update(entries or {})
            if name == "config.json" and registered_name:
                values["registered_name"] = registered_name
            with open(path, "w") as file:
                json.dump(values, file)
        if hostile:
            hostile(preset)
        with open(os.path.join(work, "image.png"), "wb") as file:
            file.write(png_bomb(32, 32))
    return make


def predict_crafted(**crafted):
    """A case: `predict image.png --model preset` on a `crafted_preset(**crafted)`."""
    return after(crafted_preset(**crafted), command("predict", "{work}/image.png", "--model",
                                                    "{work}/preset"))


def config_replaced_by(hostile):
    """A `hostile` for `crafted_preset`: its config.json replaced by what `hostile(path)` makes."""
    def replace(preset: str) -> None:
        path = os.path.join(preset, "config.json")
        os.remove(path)
        hostile(path)
    return replace


def sparse_3gb(path: str) -> None:
    with open(path, "wb") as file:
        file.truncate(3 * 2 ** 30)


def nested_200000(path: str) -> None:
    with open(path, "w") as file:
        file.write("[" * 200_000 + "]" * 200_000)


def default_after_a_crafted_copy(work: str):
    """A copy of the default preset standardising by nothing (mean 0, std 1) classified first;
    the case is a plain `predict image.png` after it, its outcome both answers."""
    import contextlib
    import io

    from keras_alexnet import cli
    from keras_alexnet.models.catalogue import DEFAULT_PRESET

    crafted_preset(config={"mean": [0, 0, 0], "std": [1, 1, 1]}, shipped=DEFAULT_PRESET)(work)

    def answer(*args: str) -> str:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            cli.main(["predict", os.path.join(work, "image.png"), *args])
        return output.getvalue().strip().rsplit(": ", 1)[-1]

    crafted = answer("--model", os.path.join(work, "preset"))
    return lambda: f"the copy: {crafted}; then the default: {answer()}"


def config_not_an_object(preset: str) -> None:
    with open(os.path.join(preset, "config.json"), "w") as file:
        json.dump({"registered_name": "keras_alexnet>AlexNet", "config": "notadict"}, file)


def truncated_cached_graph(work: str):
    """The fast preset's cached SavedModel with its saved_model.pb cut in half; the case is the
    next `predict --model alexnet_fast_cifar10`."""
    from keras_alexnet.serving.presets import preset_saved_model

    crafted_preset()(work)
    graph = os.path.join(preset_saved_model("alexnet_fast_cifar10"), "1", "saved_model.pb")
    with open(graph, "rb") as file:
        data = file.read()
    with open(graph, "wb") as file:
        file.write(data[:len(data) // 2])
    return command("predict", "{work}/image.png", "--model", "alexnet_fast_cifar10")(work)


def empty_keras_home(work: str):
    """`KERAS_HOME=""`; the case is where the SavedModel cache goes (run in `work`)."""
    from keras_alexnet.utils.download import keras_cache_dir

    os.environ["KERAS_HOME"] = ""
    os.chdir(work)
    return lambda: f"the cache is {keras_cache_dir('saved_models')}"


PRESET_CASES = {
    "preset_width_multiplier_14": predict_crafted(config={"width_multiplier": 14}),
    "preset_width_multiplier_1000": predict_crafted(config={"width_multiplier": 1000}),
    "preset_conv_filters_100000": predict_crafted(
        config={"conv_filters": [100_000] * 5}, registered_name="keras_alexnet>AlexNetBackbone"),
    "preset_image_shape_100000": predict_crafted(
        config={"image_shape": [100_000, 100_000, 3]},
        registered_name="keras_alexnet>AlexNetBackbone"),
    "preset_config_dev_zero": predict_crafted(
        hostile=config_replaced_by(lambda path: os.symlink("/dev/zero", path))),
    "preset_config_fifo": predict_crafted(hostile=config_replaced_by(os.mkfifo)),
    "preset_config_sparse_3gb": predict_crafted(hostile=config_replaced_by(sparse_3gb)),
    "preset_config_nested_200000": predict_crafted(hostile=config_replaced_by(nested_200000)),
    "preset_config_not_an_object": predict_crafted(hostile=config_not_an_object),
    "preset_dtype_an_object": predict_crafted(config={"dtype": {"name": "float32"}}),
    "preset_sha256_of_path_segments": predict_crafted(metadata={"weights_sha256": "../" * 21
                                                                + "x"}),
    "preset_class_name_with_a_newline": predict_crafted(metadata={"class_names": [
        "air\nplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
        "truck"]}),
    "default_after_a_crafted_copy": default_after_a_crafted_copy,
    "cached_saved_model_cut_short": truncated_cached_graph,
    "keras_home_empty": empty_keras_home,
}
CASES.update(PRESET_CASES)


def run_case(name: str) -> dict:
    """Runs one case here (a fresh process): set-up first, then the case alone measured."""
    with tempfile.TemporaryDirectory() as work:
        run = CASES[name](work)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        outcome = run()
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": name, "seconds": round(seconds, 4),
            "peak_growth_mb": round((peak - before) / 1024, 1),
            "peak_rss_mb": round(peak / 1024, 1), "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only " + ", ".join(QUICK_CASES))
    parser.add_argument("--case", choices=sorted(CASES), help="run this case here")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    for name in QUICK_CASES if args.quick else CASES:
        process = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True,
                                 text=True, timeout=600)
        lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
        if not lines:
            emit("hostile_inputs", case=name, error=process.stderr.strip()[-500:])
            continue
        result = json.loads(lines[-1])
        result["stderr"] = process.stderr.strip().splitlines()[-1:] if process.stderr else []
        emit("hostile_inputs", **result)


if __name__ == "__main__":
    main()
