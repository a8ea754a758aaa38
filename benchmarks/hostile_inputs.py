"""Hostile inputs and faults, each in a fresh process: how long the package takes to refuse or
survive it and how much memory that takes. One JSON line per case: `seconds` (the case alone),
`peak_growth_mb` (how far the case raised the process's peak resident memory) and
`peak_rss_mb` (the process's peak, TensorFlow included), and what the user got (`outcome`).

    python benchmarks/hostile_inputs.py            # every case
    python benchmarks/hostile_inputs.py --quick    # two cheap ones (CI)
"""

from __future__ import annotations

import argparse
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

    from keras_alexnet.export import export_saved_model, load_saved_model

    classify = load_saved_model(export_saved_model(small_model(), work, "m"),
                                "classify_image_bytes")
    classify(image_bytes=tf.constant([tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()]))
    return lambda images: classify(image_bytes=tf.constant(images))


def served(images_for):
    """A case that sends `images_for()` to the signature; its outcome is the refusal."""
    def prepare(work: str):
        import tensorflow as tf

        from keras_alexnet.image_bytes import refusal

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
    from keras_alexnet.callbacks import build_callbacks

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
        history = resumed.fit(x, y, epochs=4, verbose=0, callbacks=build_callbacks(config))
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

    from keras_alexnet.export import export_saved_model

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
    "full_disk_export": with_model_file(command("export", "--weights", "{work}/tiny.keras",
                                                "--saved-models-dir", "{work}/sm",
                                                file_limit=60_000)),
    "full_disk_train": command(*SMALL_RUN, file_limit=20_000_000),
    "torn_backup": torn_backup,
    "cut_history": cut_history,
    "killed_export": killed_export,
}


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
