"""What every stack a user has must do (CI runs these on each, `.ci/stack`), and what an old
TensorFlow Serving must do with this TensorFlow's export."""

import json
import os
import subprocess
import textwrap

import keras
import numpy as np
import pytest
from conftest import TINY_MODEL, run_cli, softmax, with_distinct_weights
from PIL import Image

from keras_alexnet.data.cifar10 import CLASS_NAMES, load_cifar10
from keras_alexnet.models.build import build_model
from keras_alexnet.serving.export import export_saved_model

pytestmark = pytest.mark.slow  # every test here trains or starts processes

# Where .ci/run puts the interpreter of the oldest stack setup.py declares.
OLDEST_PYTHON = os.environ.get("KERAS_ALEXNET_OLDEST_PYTHON")


@pytest.mark.stack
def test_a_small_run_trains_exports_and_predicts_from_the_command_line(e2e_data_dir, tmp_path):
    """`train` → its SavedModel → `predict` on PNG files, each a command of its own: the answers
    are the trained checkpoint's softmax, computed here with Keras on the same pixels. The
    suite's one run of the seed's full-size network (23 million parameters): the other runs
    train `TINY_NETWORK`."""
    trained = run_cli("train", "--data-dir", e2e_data_dir, "--epochs", "1", "--train-subset",
                      "300", "--validation-size", "100", "--output-dir",
                      tmp_path / "run", "--saved-models-dir", tmp_path / "saved", "--verbose", "0")
    assert trained.returncode == 0, trained.stderr
    images = load_cifar10(e2e_data_dir).x_test[:4]
    paths = [tmp_path / f"{index}.png" for index in range(len(images))]
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path)
    predicted = run_cli("predict", *paths, "--model", tmp_path / "saved" / "alexnet_cifar10" / "1",
                        "--top-k", "3", "--json")
    assert predicted.returncode == 0, predicted.stderr
    checkpoint = keras.saving.load_model(tmp_path / "run" / "best.keras")
    expected = softmax(checkpoint.predict(images.astype("float32"), verbose=0))
    answers = json.loads(predicted.stdout)
    assert [answer["image"] for answer in answers] == [str(path) for path in paths]
    for answer, probabilities in zip(answers, expected):
        top = np.argsort(-probabilities)[:3]
        assert [row["class_name"] for row in answer["top"]] == [CLASS_NAMES[i] for i in top]
        assert [row["probability"] for row in answer["top"]] == pytest.approx(
            probabilities[top].tolist(), abs=1e-5)


# Run by the oldest TensorFlow: loads the SavedModel and answers both signatures, as TF Serving
# (a C++ build of the same runtime) would, for the images and encoded files given.
OLD_SERVER = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf
    version, images, files = sys.argv[1:]
    loaded = tf.saved_model.load(version)
    pixels = loaded.signatures["serving_default"](images=tf.constant(np.load(images)))
    encoded = [open(path, "rb").read() for path in json.loads(files)]
    decoded = loaded.signatures["classify_image_bytes"](image_bytes=tf.constant(encoded))
    print(json.dumps({"tensorflow": tf.__version__,
                      "pixels": pixels["probabilities"].numpy().tolist(),
                      "bytes": decoded["probabilities"].numpy().tolist(),
                      "names": [n.decode() for n in decoded["class_name"].numpy().tolist()]}))
""")


@pytest.mark.skipif(not OLDEST_PYTHON, reason="needs the oldest declared stack's interpreter in "
                                              "KERAS_ALEXNET_OLDEST_PYTHON (.ci/run sets it)")
def test_the_oldest_declared_tensorflow_serves_this_ones_export_alike(tmp_path):
    """TF Serving releases lag TensorFlow's: an export of this TensorFlow, loaded by the oldest one
    setup.py allows, gives the probabilities this process's Keras model gives."""
    import tensorflow as tf

    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    model = with_distinct_weights(build_model(seed=0, **TINY_MODEL), images)
    version = export_saved_model(model, str(tmp_path / "saved"), "alexnet_cifar10")
    np.save(tmp_path / "images.npy", images)
    files = []
    for index, image in enumerate(images):
        files.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(image).save(files[-1])
    served = subprocess.run([OLDEST_PYTHON, "-c", OLD_SERVER, version, tmp_path / "images.npy",
                             json.dumps(files)], capture_output=True, text=True, timeout=300)
    assert served.returncode == 0, served.stderr
    answers = json.loads(served.stdout.splitlines()[-1])
    assert answers["tensorflow"] != tf.__version__  # another runtime did load it
    expected = softmax(model.predict(images.astype("float32"), verbose=0))
    assert np.asarray(answers["pixels"]) == pytest.approx(expected, abs=1e-5)
    assert np.asarray(answers["bytes"]) == pytest.approx(expected, abs=1e-5)
    assert answers["names"] == [CLASS_NAMES[i] for i in expected.argmax(1)]
