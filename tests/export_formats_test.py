"""LiteRT and ONNX exports run in their own runtimes (LiteRT's interpreter, ONNX Runtime) against
Keras and the SavedModel, int8 against float, and the `export` command's formats and refusals."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SHARED_CIFAR, softmax

from keras_alexnet.errors import ConfigError, ExportError
from keras_alexnet.models.alexnet import AlexNet
from keras_alexnet.models.network import AlexNetNetwork as AlexNetBackbone
from keras_alexnet.models.paper_alexnet import PaperAlexNet
from keras_alexnet.serving.export import export_saved_model, load_saved_model
from keras_alexnet.serving.formats import export
from keras_alexnet.serving.litert_export import (
    class_names_file,
    export_litert,
    litert_interpreter,
    litert_probabilities,
)
from keras_alexnet.serving.onnx_export import (
    export_onnx,
    onnx_class_names,
    onnx_probabilities,
    onnx_session,
)

NAMES = tuple(f"class {index}" for index in range(10))
# Random 16×16 images blown up to 32×32: blotches the trained network below sees as several
# classes (pixel noise is one class to it).
IMAGES = np.random.default_rng(3).integers(0, 256, (40, 16, 16, 3), np.uint8).repeat(2, 1)
IMAGES = IMAGES.repeat(2, 2)
PRESET = "alexnet_fast_cifar10"  # the smallest trained network (batch norm, 1.9 M parameters)


@pytest.fixture(scope="module")
def model():
    """A trained network: an untrained one gives every image about 0.1 for each class, and one
    with weights set to tell images apart cancels large sums, so float32 rounding alone moves
    its probabilities by 1e-4."""
    return AlexNet.from_preset(PRESET)


def keras_probabilities(model, images):
    return softmax(model.predict(images.astype("float32"), verbose=0))


@pytest.mark.slow
def test_litert_and_onnx_files_give_keras_and_the_saved_models_probabilities(model, tmp_path):
    expected = keras_probabilities(model, IMAGES)
    assert len(set(expected.argmax(1))) >= 4 and expected.max() > 0.5  # distinct answers
    served = load_saved_model(export_saved_model(model, str(tmp_path), "m", class_names=NAMES))
    from_saved_model = served(images=tf.constant(IMAGES))["probabilities"].numpy()
    litert = export_litert(model, str(tmp_path / "m.tflite"), NAMES)
    onnx = export_onnx(model, str(tmp_path / "m.onnx"), NAMES)
    # Batches of 16, 16 and 8: the files take any batch size, as `serving_default` does.
    for probabilities in (litert_probabilities(litert_interpreter(litert), IMAGES, 16),
                          onnx_probabilities(onnx_session(onnx), IMAGES, 16)):
        assert probabilities.dtype == np.float32 and probabilities.shape == (40, 10)
        np.testing.assert_allclose(probabilities, expected, atol=1e-4)
        np.testing.assert_allclose(probabilities, from_saved_model, atol=1e-4)
    interpreter = litert_interpreter(litert)
    source, = interpreter.get_input_details()
    assert source["dtype"] == np.uint8 and list(source["shape_signature"]) == [-1, 32, 32, 3]
    session = onnx_session(onnx)
    assert [(put.name, put.type) for put in session.get_inputs()] == [("images", "tensor(uint8)")]
    assert [put.name for put in session.get_outputs()] == ["probabilities"]
    assert onnx_class_names(session) == list(NAMES)
    with open(class_names_file(litert)) as file:
        assert file.read().splitlines() == list(NAMES)


@pytest.mark.slow
def test_a_bfloat16_model_is_exported_computing_in_float32(model, tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = AlexNet.from_config({**model.get_config(), "dtype": "mixed_bfloat16"})
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(model.get_weights())
    assert mixed.get_layer("conv2").compute_dtype == "bfloat16"
    path = export_litert(mixed, str(tmp_path / "m.tflite"), NAMES)
    probabilities = litert_probabilities(litert_interpreter(path), IMAGES)
    # The float32 model's answers, closer than bfloat16's own.
    expected = keras_probabilities(model, IMAGES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    assert np.abs(keras_probabilities(mixed, IMAGES) - expected).max() > 1e-3


@pytest.mark.slow
def test_int8_litert_gives_the_float_answers_with_integer_tensors_in_a_quarter_of_the_size(
        model, tmp_path):
    # Calibrated on other blotches of the same kind as IMAGES (all-zero or all-grey calibration
    # images move the probabilities by 0.6 and keep one answer in twenty).
    representative = np.random.default_rng(4).integers(0, 256, (64, 16, 16, 3), np.uint8)
    representative = representative.repeat(2, 1).repeat(2, 2)
    path = export_litert(model, str(tmp_path / "m_int8.tflite"), NAMES, "int8", representative)
    float_path = export_litert(model, str(tmp_path / "m.tflite"), NAMES)
    interpreter = litert_interpreter(path)
    kinds = [detail["dtype"] for detail in interpreter.get_tensor_details()]
    assert kinds.count(np.int8) > kinds.count(np.float32)  # integer weights and activations
    source, = interpreter.get_input_details()
    output, = interpreter.get_output_details()
    assert source["dtype"] == np.uint8 and output["dtype"] == np.float32  # the float contract
    probabilities = litert_probabilities(interpreter, IMAGES)
    expected = keras_probabilities(model, IMAGES)
    assert np.abs(probabilities - expected).max() < 0.1
    assert (probabilities.argmax(1) == expected.argmax(1)).mean() >= 0.95
    assert os.path.getsize(path) < 0.3 * os.path.getsize(float_path)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(SHARED_CIFAR), reason="needs the local CIFAR-10 copy")
def test_int8_litert_of_a_trained_preset_keeps_its_test_accuracy(tmp_path):
    from keras_alexnet.data.cifar10 import load_cifar10

    data = load_cifar10(SHARED_CIFAR)
    images, labels = data.x_test[:1000], data.y_test[:1000]
    float_path = export(PRESET, "litert", str(tmp_path / "f.tflite"))
    int8_path = export(PRESET, "litert", str(tmp_path / "q.tflite"), quantize="int8",
                       data_dir=SHARED_CIFAR)
    float_classes = litert_probabilities(litert_interpreter(float_path), images).argmax(1)
    int8_classes = litert_probabilities(litert_interpreter(int8_path), images).argmax(1)
    float_accuracy = (float_classes == labels).mean()
    int8_accuracy = (int8_classes == labels).mean()
    assert float_accuracy > 0.85
    assert int8_accuracy > float_accuracy - 0.01
    assert (int8_classes == float_classes).mean() > 0.97


def responsive(network, images, seed=0):
    """`network` with He-normal kernels, zero biases and fc8 centring and scaling its logits on
    `images`: the images then get different probabilities from sums of their own size (the
    paper's initialisation answers every image alike; `with_distinct_weights` cancels large
    sums, where float32 rounding alone moves the probabilities by 1e-3)."""
    rng = np.random.default_rng(seed)
    for layer in network.layers:
        if hasattr(layer, "kernel"):
            shape = tuple(layer.kernel.shape)
            layer.kernel.assign(rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape))
            layer.bias.assign(np.zeros(layer.bias.shape))
    logits = network.predict(images.astype("float32"), verbose=0)
    scale = 1 / logits.std(0).mean()  # logits that differ by about 1 between images
    fc8 = network.get_layer("fc8")
    fc8.kernel.assign(fc8.kernel * scale)
    fc8.bias.assign(-logits.mean(0) * scale)
    return network


@pytest.mark.skipif(not os.path.isdir(SHARED_CIFAR), reason="needs the local CIFAR-10 copy")
def test_int8_calibration_images_are_cifar10_training_images_in_the_models_test_view():
    from PIL import Image

    from keras_alexnet.data.cifar10 import load_cifar10
    from keras_alexnet.serving.formats import cifar10_representatives

    train = load_cifar10(SHARED_CIFAR).x_train
    # A small network of the paper's 224×224 input and test view: its test view is what counts.
    paper_view = AlexNetBackbone(image_shape=(224, 224, 3), conv_filters=(16,) * 5,
                                 conv_kernel_sizes=(11, 5, 3, 3, 3), conv_strides=(4, 1, 1, 1, 1),
                                 pool_size=3, dense_units=16, test_crop_fraction=224 / 256, seed=0)
    small = cifar10_representatives(AlexNet(width_multiplier=0.25, dense_units=16, seed=0),
                                     SHARED_CIFAR)
    large = cifar10_representatives(paper_view, SHARED_CIFAR)
    assert small.shape == (200, 32, 32, 3) and large.shape == (200, 224, 224, 3)
    assert small.dtype == large.dtype == np.uint8
    rows = {image.tobytes(): index for index, image in enumerate(train)}
    chosen = [rows[image.tobytes()] for image in small]  # each one of the training images
    assert len(set(chosen)) == 200 and chosen == sorted(chosen)
    # The paper's test view of a 32×32 image: resized to 256×256, its centre 224×224 (PIL).
    view = np.asarray(Image.fromarray(train[chosen[0]]).resize((256, 256), Image.BILINEAR))
    assert np.abs(large[0].astype(int) - view[16:240, 16:240].astype(int)).mean() < 2


@pytest.mark.large
def test_the_paper_networks_224_pixel_exports_match_keras(tmp_path):
    images = np.random.default_rng(5).integers(0, 256, (6, 28, 28, 3), np.uint8).repeat(8, 1)
    images = images.repeat(8, 2)
    network = responsive(PaperAlexNet(num_classes=10, seed=0), images)
    assert network.get_layer("conv2").groups == 2  # grouped convolutions, as the paper's
    expected = keras_probabilities(network, images)
    assert len(set(expected.argmax(1))) >= 3 and expected.max() > 0.3
    litert = export_litert(network, str(tmp_path / "p.tflite"), NAMES)
    onnx = export_onnx(network, str(tmp_path / "p.onnx"), NAMES)
    np.testing.assert_allclose(litert_probabilities(litert_interpreter(litert), images, 4),
                               expected, atol=1e-4)
    np.testing.assert_allclose(onnx_probabilities(onnx_session(onnx), images, 4), expected,
                               atol=1e-4)


def test_formats_quantizations_and_file_names_are_checked_before_any_work(model, tmp_path):
    with pytest.raises(ConfigError, match="format must be one of savedmodel, litert, onnx"):
        export(model, "tflite", class_names=NAMES)
    with pytest.raises(ConfigError, match="int8 quantization is for the litert format"):
        export(model, "onnx", quantize="int8", class_names=NAMES)
    with pytest.raises(ExportError, match="ends in .tflite"):
        export_litert(model, str(tmp_path / "m.lite"), NAMES)
    with pytest.raises(ExportError, match="int8 needs representative images"):
        export_litert(model, str(tmp_path / "m.tflite"), NAMES, "int8",
                      np.zeros((4, 16, 16, 3), np.uint8))
    with pytest.raises(ExportError, match="10 classes but 3 class names"):
        export_onnx(model, str(tmp_path / "m.onnx"), NAMES[:3])
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_export_of_a_run_directory_writes_a_litert_file_with_the_runs_classes(model, tmp_path):
    from conftest import run_cli

    run = tmp_path / "run"
    run.mkdir()
    model.save(str(run / "best.keras"))
    names = [f"kind {index}" for index in range(10)]
    (run / "class_names.txt").write_text("".join(f"{name}\n" for name in names))
    result = run_cli("export", run, "--format", "litert", "--saved-models-dir", tmp_path / "out",
                     "--model-name", "mine")
    assert result.returncode == 0, result.stderr
    path = str(tmp_path / "out" / "mine.tflite")
    assert result.stdout.strip() == f"LiteRT: {path}"
    np.testing.assert_allclose(litert_probabilities(litert_interpreter(path), IMAGES),
                               keras_probabilities(model, IMAGES), atol=1e-4)
    with open(class_names_file(path)) as file:
        assert file.read().splitlines() == names


@pytest.mark.slow
def test_a_missing_onnx_converter_is_one_line_saying_what_to_install(tmp_path):
    # tf2onnx made unimportable in the child, as on a machine without the [onnx] extra.
    code = ("import sys; sys.modules['tf2onnx'] = None\n"
            "from keras_alexnet.cli import main\n"
            f"sys.exit(main(['export', 'alexnet_fast_cifar10', '--format', 'onnx', "
            f"'--saved-models-dir', {str(tmp_path)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ("keras-alexnet: error: the onnx export needs tf2onnx: "
                                     "pip install 'keras_alexnet[onnx]'")
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("flags, message", [
    (["--format", "onnx", "--quantize", "int8"], "int8 quantization is for the litert format"),
    (["--format", "litert", "--output", "m.onnx"], "a LiteRT file's name ends in .tflite"),
    (["--output", "m.tflite"], "--output is for --format litert or onnx"),
])
def test_export_flags_that_do_not_go_together_are_one_line(flags, message, tmp_path):
    from conftest import run_cli

    result = run_cli("export", "alexnet_fast_cifar10", *flags, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert os.listdir(tmp_path) == []



@pytest.fixture(scope="module")
def tiny_keras_file(tmp_path_factory):
    """The tests' small network saved as a `.keras` file."""
    from conftest import TINY_MODEL

    path = str(tmp_path_factory.mktemp("tiny") / "tiny.keras")
    AlexNet(**TINY_MODEL, seed=0).save(path)
    return path


def listing(folder):
    """Every path under `folder`, relative to it."""
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, folders, files in os.walk(folder) for name in folders + files)


def unwritable_folder(tmp_path):
    """A folder this process cannot write into (holding a folder `m` it cannot write into
    either), or `None` when it can anyway (root)."""
    folder = tmp_path / "read_only"
    (folder / "m").mkdir(parents=True)
    for path in (folder / "m", folder):
        path.chmod(0o555)
    return None if os.access(folder, os.W_OK) else folder


@pytest.mark.parametrize("flags, message", [
    (["--format", "litert", "--output", "{tmp}/taken.tflite"],
     "the LiteRT file {tmp}/taken.tflite is a directory, not a file"),
    (["--format", "onnx", "--output", "/proc/keras_alexnet.onnx"],
     "cannot write into the folder of the ONNX file /proc: "),
    (["--format", "litert", "--output", "{tmp}/a_file/m.tflite"],
     "the folder of the LiteRT file {tmp}/a_file is a file, not a directory"),
    (["--format", "onnx", "--saved-models-dir", "{tmp}/a_file"],
     "the saved models directory {tmp}/a_file is a file, not a directory"),
    (["--saved-models-dir", "/proc"], "cannot create the model directory /proc/alexnet_cifar10"),
    (["--format", "litert", "--output", "{tmp}/read_only/m.tflite"],
     "cannot write into the folder of the LiteRT file {tmp}/read_only: Permission denied"),
    (["--saved-models-dir", "{tmp}/read_only", "--model-name", "m"],
     "cannot write into the model directory {tmp}/read_only/m: Permission denied"),
    (["--max-image-pixels", str(2 ** 64)], "--max-image-pixels must be an integer >= 1 and <= "
                                           "9223372036854775807 (int64), got 18446744073709551616"),
    (["--max-request-pixels", "0"], "--max-request-pixels must be an integer >= 1"),
])
def test_a_place_or_limit_the_export_cannot_use_is_one_line_before_any_work(
        flags, message, tiny_keras_file, tmp_path, run_cli_here, monkeypatch):
    from keras_alexnet.serving import formats

    def loaded(*args):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(formats, "model_and_class_names", loaded)
    (tmp_path / "taken.tflite").mkdir()
    (tmp_path / "a_file").write_text("a file")
    if "read_only" in " ".join(flags) and unwritable_folder(tmp_path) is None:
        pytest.skip("this user writes into a read-only folder (root)")
    before = listing(tmp_path)
    result = run_cli_here("export", tiny_keras_file, *[flag.format(tmp=tmp_path) for flag in flags],
                          cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message.format(tmp=tmp_path) in lines[0]
    assert listing(tmp_path) == before  # no class names file, no model directory


def test_the_api_checks_the_output_before_converting_and_leaves_no_class_names_file(tmp_path):
    from keras_alexnet.errors import RunDirError
    from keras_alexnet.serving import litert_export

    (tmp_path / "m.tflite").mkdir()
    model = AlexNet(width_multiplier=0.25, dense_units=16, seed=0)
    with pytest.raises(RunDirError, match="the output .*m.tflite is a directory, not a file"):
        export(model, "litert", output=str(tmp_path / "m.tflite"), class_names=NAMES)
    with pytest.raises(RunDirError, match="the LiteRT file .*m.tflite is a directory"):
        litert_export.export_litert(model, str(tmp_path / "m.tflite"), NAMES)
    with pytest.raises(ExportError, match="max_image_pixels must be an integer >= 1 and <="):
        export(model, saved_models_dir=str(tmp_path / "sm"), max_image_pixels=2 ** 63)
    assert listing(tmp_path) == ["m.tflite"]


# In a fresh process: the writer of the format is stopped by a signal halfway through its file.
SIGNALLED_EXPORT = r"""
import os, signal, sys, time
from keras_alexnet import cli
from keras_alexnet.utils.native_stderr import native_stderr_silenced

os.environ["KERAS_BACKEND"] = "tensorflow"
with native_stderr_silenced():  # TensorFlow's start-up lines, as the command drops them
    import keras
from keras_alexnet.serving import export as saved_model_export

number = getattr(signal, sys.argv[1])

def halfway(target):
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with open(target, "wb") as file:
        file.write(b"half a file")
    os.kill(os.getpid(), number)
    time.sleep(30)  # the handler runs before this ends

def export(self, filepath, *args, **kwargs):
    halfway(filepath)

def warmup(path, *args):  # the SavedModel's last file
    halfway(path)

keras.Model.export = export  # LiteRT and ONNX
saved_model_export.write_warmup_requests = warmup
sys.exit(cli.main(["export", *sys.argv[2:]]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("signal_name, format, status", [
    ("SIGTERM", "litert", 75), ("SIGTERM", "onnx", 75), ("SIGTERM", "savedmodel", 75),
    ("SIGINT", "litert", 130),
])
def test_a_signal_during_an_export_is_one_line_and_leaves_nothing(signal_name, format, status,
                                                                   tiny_keras_file, tmp_path):
    output = [] if format == "savedmodel" else ["--output", str(tmp_path / "out" / f"m.{format}")]
    output = [flag.replace(".litert", ".tflite") for flag in output]
    result = subprocess.run([sys.executable, "-c", SIGNALLED_EXPORT, signal_name,
                             tiny_keras_file, "--format", format, "--saved-models-dir",
                             str(tmp_path / "sm"), *output],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status and len(lines) == 1, result.stderr
    assert lines[0] == (f"keras-alexnet: stopped by {signal_name} while exporting; nothing was "
                        f"left half-written: run the same command again")
    assert listing(tmp_path) == []
