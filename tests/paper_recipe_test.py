"""The paper recipe end to end on a folder of CIFAR-10's own images: train → metrics with top-5
→ export with the paper's test view → predict and evaluate; and its bad data as one line."""

import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import interrupt_at, run_cli, write_image_folder
from PIL import Image

from keras_alexnet.models.model_files import load_keras_model
from keras_alexnet.serving.export import IMAGE_BYTES_SIGNATURE, load_saved_model

pytestmark = pytest.mark.slow
RUN = ["--recipe", "paper", "--validation-size", "40", "--train-subset", "48", "--epochs", "1",
       "--batch-size", "16", "--eval-batch-size", "20"]


def softmax(logits):
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return exp / exp.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, cifar_image_folder):
    """One 1-epoch paper run through the CLI; its paths and printed lines."""
    from keras_alexnet import cli

    root = tmp_path_factory.mktemp("paper")
    paths = {"run": str(root / "run"), "saved": str(root / "saved"),
             "folder": cifar_image_folder}
    status = cli.main(["train", *RUN, "--dataset", cifar_image_folder, "--output-dir",
                       paths["run"], "--saved-models-dir", paths["saved"]])
    assert status == 0
    return paths


def held_out(paths):
    """The held-out test images (uint8, 32×32) and labels, read here with PIL: the last
    `validation_size` of the seeded permutation of the folder's files (classes sorted, then
    each class's files)."""
    config = json.load(open(os.path.join(paths["run"], "config.json")))
    files = [(os.path.join(paths["folder"], name, file), label)
             for label, name in enumerate(sorted(os.listdir(paths["folder"])))
             for file in sorted(os.listdir(os.path.join(paths["folder"], name)))]
    order = np.random.RandomState(config["seed"]).permutation(len(files))
    test = [files[index] for index in order[-config["validation_size"]:]]
    return (np.stack([np.asarray(Image.open(path)) for path, _ in test]),
            np.array([label for _, label in test]))


def ten_crop_test(paths):
    """The ten-crop and centre-crop probabilities of `best.keras` on the held-out test images,
    and their labels, computed here: 32 → 256 (the shorter side), the paper's ten 224 patches."""
    model = load_keras_model(os.path.join(paths["run"], "best.keras"))  # the one epoch
    images, labels = held_out(paths)
    squares = tf.clip_by_value(tf.image.resize(images.astype("float32"), (256, 256),
                                               antialias=True), 0, 255).numpy()
    patches = [squares[:, top:top + 224, left:left + 224]
               for top, left in ((0, 0), (0, 32), (32, 0), (32, 32), (16, 16))]
    patches += [patch[:, :, ::-1] for patch in patches]
    probabilities = [softmax(model.predict(patch, verbose=0).astype("float64"))
                     for patch in patches]
    return np.mean(probabilities, axis=0), probabilities[4], labels


def top5_accuracy(probabilities, labels):
    top5 = np.argsort(-probabilities, axis=-1)[:, :5]
    return np.mean((top5 == labels[:, None]).any(-1))


@pytest.mark.large
def test_metrics_are_the_ten_crop_top1_and_top5_of_the_held_out_images(paper_run):
    metrics = json.load(open(os.path.join(paper_run["run"], "metrics.json")))
    ten_crop, single, labels = ten_crop_test(paper_run)
    for name, view in (("test_accuracy", ten_crop), ("test_accuracy_single_view", single)):
        assert metrics[name] == pytest.approx(np.mean(view.argmax(-1) == labels), abs=1e-9)
    for name, view in (("test_top5_accuracy", ten_crop),
                       ("test_top5_accuracy_single_view", single)):
        assert metrics[name] == pytest.approx(top5_accuracy(view, labels), abs=1e-9)
    assert metrics["test_top5_error"] == pytest.approx(1 - metrics["test_top5_accuracy"])
    assert metrics["test_error"] == pytest.approx(1 - metrics["test_accuracy"])
    true_class = np.clip(ten_crop[np.arange(len(labels)), labels], 1e-12, 1)  # the loss's floor
    # The run averages the ten patches' probabilities in float32, this test in float64: they
    # agree to float32's precision (8e-8 apart on one CPU, 1e-9 on another).
    assert metrics["test_loss"] == pytest.approx(-np.mean(np.log(true_class)), rel=1e-6)
    assert (metrics["test_split"], metrics["test_time_augmentation"]) == (
        "held-out test", "ten_crop")
    assert metrics["test_size"] == len(labels) == 40


@pytest.mark.large
def test_history_has_top5_and_the_runs_classes_are_the_folders(paper_run):
    header = open(os.path.join(paper_run["run"], "history.csv")).readline().strip().split(",")
    assert {"top5_accuracy", "val_top5_accuracy", "learning_rate"} <= set(header)
    classes = open(os.path.join(paper_run["run"], "class_names.txt")).read().splitlines()
    assert classes == sorted(os.listdir(paper_run["folder"]))


@pytest.mark.large
def test_the_export_takes_224_images_and_encoded_images_in_the_papers_test_view(paper_run):
    version = os.path.join(paper_run["saved"], "alexnet_paper", "1")
    serve = load_saved_model(version)
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.shape.as_list() == [None, 224, 224, 3] and spec.dtype == tf.uint8
    names = open(os.path.join(version, "assets.extra", "class_names.txt")).read().splitlines()
    assert names == sorted(os.listdir(paper_run["folder"]))
    # An image already 256 on its shorter side: the test view is its centre 224 × 224, sliced here.
    image = np.random.default_rng(0).integers(0, 256, (256, 300, 3), dtype=np.uint8)
    centre = image[16:240, 38:262]
    encoded = tf.io.encode_png(image)
    by_bytes = load_saved_model(version, IMAGE_BYTES_SIGNATURE)(image_bytes=tf.stack([encoded]))
    by_pixels = serve(images=tf.constant(centre[None]))
    np.testing.assert_allclose(by_bytes["probabilities"].numpy(),
                               by_pixels["probabilities"].numpy(), atol=1e-6)
    assert by_bytes["class_name"].numpy()[0].decode() == names[int(by_pixels["class_id"][0])]


@pytest.mark.large
def test_predict_top_5_names_the_five_most_probable_classes(paper_run, run_cli_here, tmp_path):
    version = os.path.join(paper_run["saved"], "alexnet_paper", "1")
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    path.write_bytes(tf.io.encode_png(image).numpy())
    result = run_cli_here("predict", "--model", version, "--top-k", "5", "--json", path)
    assert result.returncode == 0, result.stderr
    (answer,) = json.loads(result.stdout)
    probabilities = load_saved_model(version, IMAGE_BYTES_SIGNATURE)(
        image_bytes=tf.constant([path.read_bytes()]))["probabilities"].numpy()[0]
    names = sorted(os.listdir(paper_run["folder"]))
    expected = np.argsort(-probabilities)[:5]
    assert [row["class_name"] for row in answer["top"]] == [names[i] for i in expected]
    assert [row["probability"] for row in answer["top"]] == pytest.approx(
        probabilities[expected].tolist(), abs=1e-6)


def test_predict_names_the_top_5_of_a_model_of_another_number_of_classes(tmp_path, run_cli_here):
    """A paper export of 12 classes (not CIFAR-10's 10): predicted locally, named by its own
    class names."""
    from keras_alexnet.models.build import build_model
    from keras_alexnet.serving.export import export_saved_model

    names = [f"class_{letter}" for letter in "abcdefghijkl"]
    model = build_model("paper", num_classes=12, seed=0)
    version = export_saved_model(model, str(tmp_path / "saved"), "twelve", class_names=names)
    path = tmp_path / "photo.png"
    path.write_bytes(tf.io.encode_png(np.full((30, 40, 3), 90, np.uint8)).numpy())
    result = run_cli_here("predict", "--model", version, "--top-k", "5", "--json", path)
    assert result.returncode == 0, result.stderr
    probabilities = load_saved_model(version, IMAGE_BYTES_SIGNATURE)(
        image_bytes=tf.constant([path.read_bytes()]))["probabilities"].numpy()[0]
    (answer,) = json.loads(result.stdout)
    assert [row["class_name"] for row in answer["top"]] == [
        names[i] for i in np.argsort(-probabilities)[:5]]


@pytest.mark.large
def test_evaluate_reports_the_runs_top5_on_its_own_data(paper_run, run_cli_here):
    result = run_cli_here("evaluate", os.path.join(paper_run["run"], "best.keras"),
                          "--test-time-augmentation", "ten_crop", "--batch-size", "20", "--json")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout)
    ten_crop, _, labels = ten_crop_test(paper_run)  # computed here, not by the package
    assert evaluated["test_accuracy"] == pytest.approx(np.mean(ten_crop.argmax(-1) == labels))
    assert evaluated["test_top5_accuracy"] == pytest.approx(top5_accuracy(ten_crop, labels))
    true_class = np.clip(ten_crop[np.arange(len(labels)), labels], 1e-12, 1)
    assert evaluated["test_loss"] == pytest.approx(-np.mean(np.log(true_class)), rel=1e-4)


@pytest.mark.large
def test_evaluating_the_export_without_its_run_says_what_to_evaluate(paper_run, run_cli_here):
    result = run_cli_here("evaluate", os.path.join(paper_run["saved"], "alexnet_paper"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "the model takes 224×224×3 images, not CIFAR-10's 32×32×3" in line


@pytest.mark.parametrize("layout,message", [
    ("one_class", "holds 1 class folder(s)"),
    ("empty_class", "holds no PNG, JPEG or BMP image"),
    ("missing", "does not exist or is not a directory"),
])
def test_bad_data_is_one_line_exit_2_and_writes_nothing(layout, message, tmp_path, run_cli_here):
    images = np.zeros((4, 8, 8, 3), np.uint8)
    root = tmp_path / "images"
    if layout == "one_class":
        write_image_folder(root, images, [0] * 4, ["cat"])
    elif layout == "empty_class":
        write_image_folder(root, images, [0] * 4, ["cat"])
        os.makedirs(root / "dog")
    result = run_cli_here("train", "--recipe", "paper", "--dataset", root, "--output-dir",
                          tmp_path / "run", "--saved-models-dir", tmp_path / "sm", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("keras-alexnet: error: ") and message in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "sm").exists()


def test_a_cifar_only_option_on_the_paper_network_is_named_as_its_flag(run_cli_here, tmp_path):
    result = run_cli_here("train", "--recipe", "paper", "--batch-norm", cwd=tmp_path)
    assert result.returncode == 2
    assert "--batch-norm applies to the CIFAR network only" in result.stderr


@pytest.mark.large
def test_best_keras_reloads_as_the_paper_network_for_the_folders_classes(paper_run):
    model = load_keras_model(os.path.join(paper_run["run"], "best.keras"))
    assert model.output_shape == (None, 10) and model.input_shape == (None, 224, 224, 3)
    assert keras.saving.get_registered_name(type(model)) == "keras_alexnet>AlexNetImageClassifier"
    assert model.backbone.get_config()["conv_groups"] == [1, 2, 1, 2, 2]  # the paper's network
    assert model.backbone.get_config()["conv_kernel_sizes"][0] == 11


@pytest.mark.large
def test_an_interrupted_paper_run_resumes_from_its_backup(cifar_image_folder, tmp_path,
                                                          monkeypatch):
    from keras_alexnet import cli
    from keras_alexnet.training import fit_setup, recipe

    run = tmp_path / "run"
    args = ["train", *RUN, "--epochs", "2", "--dataset", cifar_image_folder, "--output-dir", run,
            "--saved-models-dir", tmp_path / "saved", "--checkpoint-every", "1", "--no-figures"]
    build = fit_setup.build_callbacks
    with monkeypatch.context() as patch:
        patch.setattr(fit_setup, "build_callbacks",
                      lambda *a, **k: [*build(*a, **k), interrupt_at(1)])
        assert cli.main([str(arg) for arg in args]) == 130
    first_epoch = open(run / "history.csv").read().splitlines()
    assert len(first_epoch) == 2 and os.path.isdir(run / "backup")
    backup = keras.saving.load_model(run / "best.keras", compile=False).get_weights()
    resumed = []
    monkeypatch.setattr(fit_setup, "build_callbacks", lambda *a, **k: [
        *build(*a, **k), keras.callbacks.LambdaCallback(
            on_train_begin=lambda logs: resumed.append(resumed_model[0].get_weights()))])
    resumed_model = []
    fit = recipe.fit
    monkeypatch.setattr(recipe, "fit", lambda trainer, *a, **k: (resumed_model.append(trainer),
                                                                fit(trainer, *a, **k))[1])
    assert cli.main(["train", "--resume", str(run)]) == 0
    for restored, saved in zip(resumed[0], backup):  # the first epoch's weights, restored
        np.testing.assert_array_equal(restored, saved)
    history = open(run / "history.csv").read().splitlines()
    assert history[:2] == first_epoch and len(history) == 3
    assert json.load(open(run / "metrics.json"))["epochs_completed"] == 2


@pytest.mark.large
def test_two_deterministic_paper_runs_with_one_seed_have_the_same_history(cifar_image_folder,
                                                                          tmp_path):
    """Fresh processes (op determinism is set before TensorFlow starts); every crop, flip and
    jitter of the streamed pipeline is keyed to (seed, epoch, image), whatever its threads."""
    histories = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        done = run_cli("train", *RUN, "--epochs", "2", "--dataset", cifar_image_folder,
                       "--output-dir", tmp_path / name, "--saved-models-dir", tmp_path / "saved",
                       "--seed", seed, "--deterministic", "--no-figures")
        assert done.returncode == 0, done.stderr[-2000:]
        rows = list(csv.DictReader(open(tmp_path / name / "history.csv")))
        histories.append([{column: value for column, value in row.items()
                           if not column.endswith("_seconds")} for row in rows])  # timings
    assert len(histories[0]) == 2 and "val_accuracy" in histories[0][0]
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]
