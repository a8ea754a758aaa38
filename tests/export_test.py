import glob
import json
import os
import signal
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import softmax, with_distinct_weights

from keras_alexnet.errors import ExportError
from keras_alexnet.models.build import build_model
from keras_alexnet.serving.export import export_saved_model, load_saved_model
from keras_alexnet.serving.versions import (
    existing_versions,
    next_version,
    resolve_saved_model,
)

# The images the `model` fixture tells apart.
DISTINCT_IMAGES = np.random.default_rng(9).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model():
    """A network whose images get clearly different classes (an untrained one gives every image
    about 0.1 for each class, where a wrong export could still pass)."""
    return with_distinct_weights(build_model(seed=0), DISTINCT_IMAGES)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    return str(base), export_saved_model(model, str(base), "alexnet_cifar10")


def test_versions_follow_tf_serving_layout(model, exported, tmp_path):
    base, path = exported
    assert path == os.path.join(base, "alexnet_cifar10", "1")
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.listdir(os.path.join(base, "alexnet_cifar10")) == ["1"]  # no staging left behind
    assert next_version(os.path.join(base, "alexnet_cifar10")) == 2
    assert resolve_saved_model(os.path.join(base, "alexnet_cifar10")) == path
    with pytest.raises(ExportError, match="already exists"):
        export_saved_model(model, base, "alexnet_cifar10", version=1)


def test_only_ascii_digit_directories_are_versions(tmp_path):
    for name in ("1", "²", "12", "3a", "٣"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file")
    assert existing_versions(str(tmp_path)) == [1, 12]
    assert next_version(str(tmp_path)) == 13


def test_signature_matches_keras_predict_and_is_deterministic(model, exported):
    serve = load_saved_model(exported[1])
    images = DISTINCT_IMAGES[:16]
    first, second = serve(images=tf.constant(images)), serve(images=tf.constant(images))
    assert first["probabilities"].dtype == tf.float32 and first["probabilities"].shape == (16, 10)
    assert first["class_id"].dtype == tf.int64 and first["class_name"].dtype == tf.string
    np.testing.assert_array_equal(first["probabilities"].numpy(), second["probabilities"].numpy())
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(images, verbose=0)))
    np.testing.assert_allclose(first["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(first["class_id"].numpy(), expected.argmax(1))
    assert len(set(expected.argmax(1))) >= 4 and expected.max() > 0.3  # distinct answers
    names = [n.decode() for n in first["class_name"].numpy()]
    assert names == [("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                      "ship", "truck")[i] for i in expected.argmax(1)]


def test_the_warmup_file_holds_a_request_each_signature_answers_as_keras_does(model, exported):
    prediction_log_pb2 = pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2")
    path = exported[1]
    records = tf.data.TFRecordDataset(os.path.join(path, "assets.extra",
                                                   "tf_serving_warmup_requests"))
    logs = [prediction_log_pb2.PredictionLog.FromString(record)
            for record in records.as_numpy_iterator()]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log", "predict_log"]
    loaded = tf.saved_model.load(path)
    requests = [log.predict_log.request for log in logs]
    assert sorted(request.model_spec.signature_name for request in requests) == sorted(
        loaded.signatures)
    assert {request.model_spec.name for request in requests} == {"alexnet_cifar10"}
    # Each request is one black image (raw pixels, or a PNG of them): both signatures answer it
    # as the Keras model answers an image of zeros.
    expected = softmax(model.predict(np.zeros((1, 32, 32, 3), "float32"), verbose=0))
    for request in requests:
        inputs = {name: tf.constant(tf.make_ndarray(tensor))
                  for name, tensor in request.inputs.items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)


def test_the_export_stores_each_weight_once(model, exported):
    """The checkpoint holds the model's 23,272,266 values once (it held each kernel twice, under
    `variables/` and `_all_variables/`: 178 MB instead of ~89 MB), and the files' size says so."""
    reader = tf.train.load_checkpoint(os.path.join(exported[1], "variables", "variables"))
    stored = sum(int(np.prod(shape)) for key, shape in reader.get_variable_to_shape_map().items()
                 if key.endswith("VARIABLE_VALUE"))
    assert stored == model.count_params() == 23_272_266
    data = glob.glob(os.path.join(exported[1], "variables", "variables.data-*"))
    assert 4 * stored <= sum(os.path.getsize(path) for path in data) < 4 * stored * 1.01


def test_failed_export_leaves_no_version_directory(model, tmp_path, monkeypatch):
    def write_half_then_fail(archive, export_dir, *args, **kwargs):
        os.makedirs(os.path.join(export_dir, "variables"))
        open(os.path.join(export_dir, "saved_model.pb"), "wb").close()
        raise OSError(28, "No space left on device")

    # The backend's archive class (Keras' `ExportArchive()` returns one of it) writes the files.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", write_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        export_saved_model(model, str(tmp_path), "alexnet_cifar10")
    assert os.listdir(tmp_path) == []  # the model directory it made too


def test_missing_saved_model_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="no SavedModel at"):
        resolve_saved_model(str(tmp_path))


def saved_model_cli(*args):
    import subprocess
    import sys

    command = [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_saved_model_cli_shows_both_documented_signatures(exported):
    shown = saved_model_cli("show", "--dir", exported[1], "--all")
    default = shown.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    image_bytes = shown.split("signature_def['classify_image_bytes']:")[1]
    image_bytes = image_bytes.split("signature_def[")[0]
    for block, (name, dtype, shape) in [(default, ("images", "DT_UINT8", "(-1, 32, 32, 3)")),
                                        (image_bytes, ("image_bytes", "DT_STRING", "(-1)"))]:
        inputs, outputs = block.split(
            "The given SavedModel SignatureDef contains the following output")
        assert f"inputs['{name}'] tensor_info:" in inputs
        assert f"dtype: {dtype}" in inputs and f"shape: {shape}" in inputs
        for output, out_dtype, out_shape in [("probabilities", "DT_FLOAT", "(-1, 10)"),
                                             ("class_id", "DT_INT64", "(-1)"),
                                             ("class_name", "DT_STRING", "(-1)")]:
            part = outputs.split(f"outputs['{output}'] tensor_info:")[1].split("name:")[0]
            assert f"dtype: {out_dtype}" in part and f"shape: {out_shape}" in part


@pytest.mark.slow
def test_saved_model_cli_run_with_the_serve_tag_gives_the_models_classes(model, exported, tmp_path):
    images = DISTINCT_IMAGES[:8]
    np.save(tmp_path / "images.npy", images)
    saved_model_cli("run", "--dir", exported[1], "--tag_set", "serve", "--signature_def",
                    "serving_default", "--inputs", f"images={tmp_path / 'images.npy'}",
                    "--outdir", tmp_path / "out")
    expected = model.predict(images, verbose=0).argmax(1)
    assert len(set(expected)) >= 3  # the model tells the images apart
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "class_id.npy"), expected)


def test_image_bytes_signature_decodes_png_and_jpeg_of_any_size(model, exported):
    images = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    encoded = [tf.io.encode_png(image).numpy() for image in images]
    classify = load_saved_model(exported[1], "classify_image_bytes")
    by_bytes = classify(image_bytes=tf.constant(encoded))
    by_pixels = load_saved_model(exported[1])(images=tf.constant(images))
    np.testing.assert_allclose(by_bytes["probabilities"].numpy(),
                               by_pixels["probabilities"].numpy(),
                               atol=1e-6)
    resized = tf.image.resize(images[0], (96, 128)).numpy().astype(np.uint8)
    large = tf.io.encode_jpeg(resized).numpy()
    out = classify(image_bytes=tf.constant([large, encoded[1]]))
    assert out["probabilities"].shape == (2, 10) and out["class_id"].dtype == tf.int64
    with pytest.raises(tf.errors.InvalidArgumentError):
        classify(image_bytes=tf.constant([b"not an image"]))


def test_wrong_input_shape_or_dtype_is_refused_by_the_signature(exported):
    serve = load_saved_model(exported[1])
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        serve(images=tf.zeros((1, 28, 28, 3), tf.uint8))
    with pytest.raises((ValueError, TypeError, tf.errors.InvalidArgumentError)):
        serve(images=tf.zeros((1, 32, 32, 3), tf.float32))


def test_batch_norm_export_uses_the_moving_statistics(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    model = with_distinct_weights(build_model(batch_norm=True, conv1_stride=1, seed=0), images)
    serve = load_saved_model(export_saved_model(model, str(tmp_path), "alexnet_cifar10"))
    served = serve(images=tf.constant(images))["probabilities"].numpy()
    inference = softmax(model(images.astype("float32"), training=False))
    np.testing.assert_allclose(served, inference, atol=1e-5)
    assert 0.2 < np.median(served.max(1)) < 0.99 and len(set(served.argmax(1))) > 1  # not uniform
    # With the batch's own statistics (what a wrong export would use) the answer differs.
    model.get_layer("fc6_dropout").rate = model.get_layer("fc7_dropout").rate = 0.0
    model.get_layer("fc8_dropout").rate = 0.0
    batch_stats = softmax(model(images.astype("float32"), training=True))
    assert np.abs(batch_stats - served).max() > 1e-2


def test_empty_batches_get_empty_outputs_from_both_signatures(exported):
    for signature, inputs in (("serving_default", {"images": tf.zeros((0, 32, 32, 3), tf.uint8)}),
                              ("classify_image_bytes", {"image_bytes": tf.zeros((0,), tf.string)})):
        out = load_saved_model(exported[1], signature)(**inputs)
        assert out["probabilities"].shape == (0, 10) and out["probabilities"].dtype == tf.float32
        assert out["class_id"].shape == (0,) and out["class_name"].shape == (0,)


def test_image_bytes_signature_names_the_bad_element_and_refuses_a_bomb(exported):
    from image_bytes_test import png_bomb

    from keras_alexnet.serving.image_bytes import refusal

    classify = load_saved_model(exported[1], "classify_image_bytes")
    good = tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        classify(image_bytes=tf.constant([good, b"garbage", good]))
    assert refusal(raised.value.message) == "image_bytes[1] is not a PNG, JPEG or BMP image"
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        classify(image_bytes=tf.constant([good, good, png_bomb(5000, 4000)]))
    assert refusal(raised.value.message) == (
        "image_bytes[2] declares 5000 × 4000 pixels, more than the limit of 16777216")


def test_the_pixel_limit_is_an_export_option(model, tmp_path):
    classify = load_saved_model(export_saved_model(model, str(tmp_path), "m", max_image_pixels=64),
                                "classify_image_bytes")
    small = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
    assert classify(image_bytes=tf.constant([small]))["class_id"].shape == (1,)
    wider = tf.io.encode_png(np.zeros((8, 9, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="9 × 8 pixels, more than the limit"):
        classify(image_bytes=tf.constant([wider]))


def test_an_image_cut_short_in_a_batch_is_named_and_a_whole_one_classified(exported):
    """A truncated JPEG or PNG fails the request naming its element (before: the decoder's
    message, no element)."""
    from keras_alexnet.serving.image_bytes import refusal

    classify = load_saved_model(exported[1], "classify_image_bytes")
    picture = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(picture).numpy()
    png = tf.io.encode_png(picture).numpy()
    assert classify(image_bytes=tf.constant([jpeg, png]))["class_id"].shape == (2,)
    for cut in (jpeg[:len(jpeg) // 2], jpeg[:-2], png[:-5]):
        with pytest.raises(tf.errors.InvalidArgumentError) as raised:
            classify(image_bytes=tf.constant([png, cut, jpeg]))
        assert refusal(raised.value.message) == (
            "image_bytes[1] does not end where its format says (cut short?)")


def test_the_request_pixel_limit_is_an_export_option_checked_before_decoding(model, tmp_path):
    from keras_alexnet.serving.image_bytes import refusal

    classify = load_saved_model(export_saved_model(model, str(tmp_path), "m", max_image_pixels=64,
                                                   max_request_pixels=128),
                                "classify_image_bytes")
    small = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
    assert classify(image_bytes=tf.constant([small, small]))["class_id"].shape == (2,)
    with pytest.raises(tf.errors.InvalidArgumentError) as raised:
        classify(image_bytes=tf.constant([small, small, small]))
    assert refusal(raised.value.message) == (
        "image_bytes declare 192 pixels in all, more than the limit of 128 per request")
    for bad in (0, -5, 2.5):
        with pytest.raises(ExportError, match="max_request_pixels must be an integer >= 1"):
            export_saved_model(model, str(tmp_path), "m", max_request_pixels=bad)


# In a fresh process, so that its peak memory is this check's alone.
MANY_IMAGES = r"""
import json, resource, sys, time
import keras, numpy as np, tensorflow as tf
sys.path.insert(0, sys.argv[2])
from image_bytes_test import png_bomb
from keras_alexnet.serving.export import export_saved_model
from keras_alexnet.serving.export import load_saved_model
from keras_alexnet.serving.image_bytes import refusal

model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
classify = load_saved_model(export_saved_model(model, sys.argv[1], "m"), "classify_image_bytes")
classify(image_bytes=tf.constant([tf.io.encode_png(np.zeros((4, 4, 3), np.uint8)).numpy()]))
request = tf.constant([png_bomb(4000, 4000)] * 5)  # each under the 4096² limit; 80 M pixels in all
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    classify(image_bytes=request)
    message = None
except tf.errors.InvalidArgumentError as error:
    message = refusal(error.message)
print(json.dumps({"seconds": time.perf_counter() - start, "message": message,
                  "peak_growth_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                     - before) / 1024}))
"""


@pytest.mark.slow
def test_many_images_each_under_the_limit_are_refused_together_before_any_is_decoded(tmp_path):
    """Five 4000 × 4000 PNGs (48 MB each as RGB) in one request: refused by the request limit
    (4 × 4096²) without decoding any; before, all were decoded."""
    process = subprocess.run([sys.executable, "-c", MANY_IMAGES, str(tmp_path),
                              os.path.dirname(__file__)], capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 0, process.stderr[-2000:]
    seen = json.loads(process.stdout.strip().splitlines()[-1])
    assert seen["message"] == ("image_bytes declare 80000000 pixels in all, more than the limit "
                               "of 67108864 per request")
    assert seen["peak_growth_mb"] < 100  # decoding one would take 48 MB, resizing it 190 MB


EXPORT_ONE = r"""
import sys, keras
from keras_alexnet.serving.export import export_saved_model
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
print(export_saved_model(model, sys.argv[1], "alexnet_cifar10"))
"""


@pytest.mark.slow
def test_concurrent_exports_each_get_their_own_version(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-c", EXPORT_ONE, str(tmp_path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err[-500:] for _, err in outputs]
    written = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    base = tmp_path / "alexnet_cifar10"
    assert written == [str(base / str(version)) for version in (1, 2, 3, 4)]
    assert sorted(os.listdir(base)) == ["1", "2", "3", "4"]  # nothing half-written left
    assert all((base / str(version) / "saved_model.pb").is_file() for version in (1, 2, 3, 4))


KILLED_EXPORT = r"""
import sys, time, keras
from keras_alexnet.serving import export

def hang(*args):  # killed here: the staging directory is written, not yet renamed
    print("written", flush=True)
    time.sleep(600)

export.publish = hang
model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
export.export_saved_model(model, sys.argv[1], "alexnet_cifar10")
"""


@pytest.mark.slow
def test_the_next_export_removes_what_a_killed_export_left(model, tmp_path):
    process = subprocess.Popen([sys.executable, "-c", KILLED_EXPORT, str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "written", process.stderr.read()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    base = tmp_path / "alexnet_cifar10"
    (left,) = os.listdir(base)
    assert left.startswith(".tmp-") and (base / left / "saved_model.pb").is_file()
    running = base / f".tmp-{socket.gethostname()}-{os.getpid()}-0"  # an export under way
    elsewhere = base / ".tmp-another-host-1-0"  # whose process this host cannot see
    running.mkdir()
    elsewhere.mkdir()

    assert export_saved_model(model, str(tmp_path), "alexnet_cifar10") == str(base / "1")
    assert sorted(os.listdir(base)) == sorted(["1", running.name, elsewhere.name])


def test_a_request_is_run_in_chunks_that_give_what_each_chunk_alone_gives(tmp_path):
    """600 images go through the model as 256 + 256 + 88 (memory of 256 at a time): each answer
    equals that of its chunk sent alone, and Keras' one pass over all 600."""
    images = np.random.default_rng(1).integers(0, 256, (600, 32, 32, 3), dtype=np.uint8)
    model = with_distinct_weights(build_model(batch_norm=True, width_multiplier=0.25,
                                              dense_units=64, seed=0), images[:64])
    serve = load_saved_model(export_saved_model(model, str(tmp_path), "chunks"))
    whole = serve(images=tf.constant(images))["probabilities"].numpy()
    alone = np.concatenate([serve(images=tf.constant(images[start:start + 256]))[
        "probabilities"].numpy() for start in (0, 256, 512)])
    np.testing.assert_array_equal(whole, alone)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(images, verbose=0)))
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    assert len(set(expected.argmax(1))) > 1


# In a fresh process, so that its peak memory is this check's alone.
SERVE_MANY = r"""
import json, resource, sys
import numpy as np, tensorflow as tf
from keras_alexnet.serving.export import load_saved_model

serve = load_saved_model(sys.argv[1])
peaks = {}
for count in (256, 4096):
    serve(images=tf.zeros((count, 32, 32, 3), tf.uint8))
    peaks[count] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(peaks))
"""


@pytest.mark.slow
def test_serving_memory_does_not_grow_with_the_images_of_a_request(exported):
    """The seed network's activations take ~0.2 MB an image: 4,096 images in one pass took
    ~1 GB more than 256; in chunks of 256, only the request itself grows (12 MB)."""
    process = subprocess.run([sys.executable, "-c", SERVE_MANY, exported[1]],
                             capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-2000:]
    peaks = json.loads(process.stdout.strip().splitlines()[-1])
    assert peaks["4096"] - peaks["256"] < 100, peaks
