import os

import numpy as np
import pytest
from conftest import TINY_MODEL, run_cli, softmax
from PIL import Image

from keras_alexnet import plots

HISTORY = {
    "epoch": [0, 1, 2, 3],
    "loss": [2.3, 2.0, 1.7, 1.5], "accuracy": [0.10, 0.25, 0.38, 0.47],
    "val_loss": [2.25, 1.9, 1.65, 1.55], "val_accuracy": [0.15, 0.30, 0.41, 0.45],
    "learning_rate": [0.01, 0.01, 0.001, 0.001],
}


def test_training_curves_plot_the_history_and_mark_the_lr_drop():
    figure = plots.training_curves(HISTORY)
    loss_axis, accuracy_axis = figure.axes
    curves = {line.get_label(): line for line in loss_axis.lines + accuracy_axis.lines}
    np.testing.assert_array_equal(curves["training loss"].get_ydata(), HISTORY["loss"])
    np.testing.assert_array_equal(curves["validation accuracy"].get_ydata(),
                                  HISTORY["val_accuracy"])
    np.testing.assert_array_equal(curves["training loss"].get_xdata(), [1, 2, 3, 4])
    drops = [line for line in loss_axis.lines if line.get_label() == "learning rate ×0.1"]
    assert len(drops) == 1 and drops[0].get_xdata()[0] == 2.5  # after epoch 2


def test_a_smooth_schedule_draws_its_rate_instead_of_marking_drops():
    rates = [0.025, 0.05, 0.035, 0.01]  # warm-up, then cosine decay
    figure = plots.training_curves({**HISTORY, "learning_rate": rates}, lr_schedule="cosine")
    loss_axis, accuracy_axis, rate_axis = figure.axes
    assert not [line for line in loss_axis.lines + accuracy_axis.lines
                if line.get_label().startswith("learning rate")]
    (curve,) = rate_axis.lines
    np.testing.assert_array_equal(curve.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(curve.get_ydata(), rates)


@pytest.mark.parametrize("epochs", [1, 2, 12, 40])
def test_the_epoch_axis_has_whole_epoch_ticks_only(epochs):
    history = {key: list(np.linspace(1, 2, epochs)) for key in HISTORY}
    figure = plots.training_curves(history, lr_schedule="linear")
    for axis in figure.axes[:2]:
        axis.figure.canvas.draw()
        low, high = axis.get_xlim()
        ticks = [tick for tick in axis.get_xticks() if low <= tick <= high]  # the ones shown
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks
        if epochs <= 12:
            assert ticks == list(range(1, epochs + 1))


def test_confusion_figure_normalises_rows():
    confusion = np.diag([8, 6] + [1] * 8) + 1
    figure = plots.confusion_matrix_figure(confusion.tolist())
    shown = figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    assert shown[0, 0] == pytest.approx(9 / 18)
    bars = [patch.get_width() for patch in figure.axes[1].patches]
    np.testing.assert_allclose(bars, np.diag(shown))


def shown_images(figure):
    """The pixel arrays the figure's axes show, axis by axis (axes without an image left out)."""
    return [np.asarray(axis.images[0].get_array()) for axis in figure.axes if axis.images]


def test_the_sample_grid_shows_each_class_own_images_in_its_column():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(60) % 10
    figure = plots.sample_grid(images, labels, per_class=3)
    axes = np.array(figure.axes).reshape(3, 10)
    for column in range(10):
        assert axes[0, column].get_title() == plots.CLASS_NAMES[column]
        expected = images[labels == column][:3]
        for row in range(3):
            np.testing.assert_array_equal(axes[row, column].images[0].get_array(), expected[row])


def test_the_augmentation_figures_show_the_image_its_crop_its_flip_and_its_jitters():
    image = np.random.default_rng(1).integers(60, 190, (32, 32, 3), dtype=np.uint8)  # no clip
    original, cropped, flipped = shown_images(plots.crop_flip_figure(image, pad=4, seed=3))
    np.testing.assert_array_equal(original, image)
    np.testing.assert_array_equal(flipped, cropped[:, ::-1])
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    assert any(np.array_equal(cropped, padded[top:top + 32, left:left + 32])
               for top in range(9) for left in range(9))  # one pad-4 crop of it
    eigenvalues, eigenvectors = np.array([10.0, 100.0, 1000.0]), np.eye(3)
    first, *jitters = shown_images(plots.pca_jitter_figure(image, eigenvalues, eigenvectors,
                                                           stddev=0.2, draws=4, seed=2))
    np.testing.assert_array_equal(first, image)
    shifts = []
    for jittered in jitters:  # PCA jitter adds one RGB offset to every pixel (before rounding)
        difference = jittered.astype(float) - image
        assert np.ptp(difference.reshape(-1, 3), axis=0).max() <= 1
        shifts.append(tuple(np.round(difference.mean((0, 1)))))
    assert len(set(shifts)) == 4  # each draw its own


# A colour of its own for each class (none white, black, grey or matplotlib's blues).
CLASS_COLOURS = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25), (145, 30, 180),
                          (245, 130, 48), (250, 190, 212), (70, 240, 240), (240, 50, 230),
                          (210, 245, 60), (128, 0, 0)], np.uint8)


def where_coloured(picture, colour, tolerance=4):
    """The (rows, columns) of a picture's pixels within `tolerance` of an RGB colour."""
    return np.nonzero(np.abs(picture.astype(int) - colour).max(axis=-1) <= tolerance)


def test_saved_figures_show_the_runs_images_history_and_confusion(tmp_path):
    """Each class's images one flat colour of its own, so the saved pictures can be read."""
    from conftest import write_batch, write_cifar_dir

    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.cifar10 import prepare

    data_dir = str(tmp_path / "cifar")
    write_cifar_dir(data_dir)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = np.arange(120) % 10
        write_batch(os.path.join(data_dir, name),
                    np.broadcast_to(CLASS_COLOURS[labels, None, None], (120, 32, 32, 3)),
                    labels.tolist())
    data = prepare(TrainConfig(data_dir=data_dir, validation_size=100))
    paths = plots.write_figures(str(tmp_path), data, HISTORY, np.eye(10, dtype=int).tolist(),
                                TrainConfig())
    expected_inches = {"figure1_samples.png": (10, 4.4), "figure2_crop_flip.png": (6.6, 2.6),
                       "figure3_pca_jitter.png": (13.2, 2.6),
                       "figure4_training_curves.png": (11, 4), "confusion_matrix.png": (13, 5.5)}
    assert sorted(os.path.basename(p) for p in paths) == sorted(expected_inches)
    pictures = {}
    for path in paths:
        with Image.open(path) as image:
            width, height = expected_inches[os.path.basename(path)]
            assert image.size == (round(width * plots.DPI), round(height * plots.DPI))
            pictures[os.path.basename(path)[:-4]] = np.asarray(image.convert("RGB"))
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]
    # Figure 1: every class's colour, in a column of its own, in class order from the left.
    columns = [where_coloured(pictures["figure1_samples"], colour)[1] for colour in CLASS_COLOURS]
    assert min(map(len, columns)) > 1000
    assert np.all(np.diff([np.median(column) for column in columns]) > 0)
    # Figures 2 and 3: the first training image's colour in each of three panels, and filling
    # the first of six (the original; the jitters shift it).
    first = data.split.x_train[0, 0, 0]
    columns = where_coloured(pictures["figure2_crop_flip"], first)[1]
    assert sorted(set(columns * 3 // pictures["figure2_crop_flip"].shape[1])) == [0, 1, 2]
    columns = where_coloured(pictures["figure3_pca_jitter"], first)[1]
    assert np.sum(columns * 6 // pictures["figure3_pca_jitter"].shape[1] == 0) > 1000
    # Figure 4: the training loss (matplotlib's first colour) falls from left to right in the
    # left plot, the training accuracy rises in the right one: the lowest pixel of that colour
    # in each third of a plot (the legend's sample line lies at the top).
    rows, columns = where_coloured(pictures["figure4_training_curves"], (31, 119, 180), 30)
    middle = pictures["figure4_training_curves"].shape[1] / 2
    for plot, direction in ((columns < middle, 1), (columns >= middle, -1)):
        edges = np.linspace(columns[plot].min(), columns[plot].max() + 1, 4)
        bottoms = [rows[plot & (columns >= low) & (columns < high)].max()
                   for low, high in zip(edges, edges[1:])]
        assert np.all(np.diff(bottoms) * direction > 0), bottoms
    # The confusion matrix: np.eye's full cells (Blues' darkest) on the diagonal.
    rows, columns = where_coloured(pictures["confusion_matrix"][:, :600], (8, 48, 107), 10)
    assert len(rows) > 1000 and np.corrcoef(columns, rows)[0, 1] > 0.95


@pytest.mark.slow
def test_report_command_redraws_a_finished_run(tmp_path, cifar_dir):
    from keras_alexnet import train

    run_dir = tmp_path / "run"
    train(data_dir=cifar_dir, epochs=1, train_subset=64, validation_size=100, batch_size=32,
          **TINY_MODEL, output_dir=str(run_dir), export=False, verbose=0)
    drawn_by_train = {}
    for name in plots.FIGURE_FILES.values():
        with Image.open(run_dir / name) as image:
            drawn_by_train[name] = np.asarray(image.convert("RGB"))
        os.remove(run_dir / name)
    result = run_cli("report", run_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(run_dir)) == sorted(
        ["best.keras", "class_names.txt", "config.json", "history.csv", "metrics.json",
         *plots.FIGURE_FILES.values(), *plots.LEARNED_FIGURE_FILES.values()])
    # From the run's own config, data, history and metrics, the report draws the same pixels.
    for name, pixels in drawn_by_train.items():
        with Image.open(run_dir / name) as image:
            np.testing.assert_array_equal(np.asarray(image.convert("RGB")), pixels, err_msg=name)
    missing = run_cli("report", tmp_path)
    assert missing.returncode == 2 and "is neither a finished run directory" in missing.stderr
    os.remove(run_dir / "history.csv")
    unfinished = run_cli("report", run_dir)
    assert unfinished.returncode == 2 and "is not a finished run: history.csv" in unfinished.stderr


def test_the_papers_pictures_show_the_kernels_neighbours_and_top5_of_the_model():
    from keras_alexnet import AlexNet
    from keras_alexnet.data.cifar10 import CLASS_NAMES, Cifar10

    rng = np.random.default_rng(2)
    data = Cifar10(rng.integers(0, 256, (40, 32, 32, 3)).astype("uint8"),
                   rng.integers(0, 10, 40), rng.integers(0, 256, (5, 32, 32, 3)).astype("uint8"),
                   rng.integers(0, 10, 5))
    model = AlexNet(width_multiplier=0.25, dense_units=32, seed=0)
    figures = plots.learned_figures(model, data, CLASS_NAMES)
    assert sorted(figures) == sorted(plots.LEARNED_FIGURE_FILES)
    kernels = [axis for axis in figures["kernels"].axes if axis.images]
    assert len(kernels) == 16  # conv1's filters at quarter width
    shown = [axis.images[0].get_array() for axis in figures["neighbours"].axes]
    training = {image.tobytes() for image in data.x_train}
    for row in range(5):
        np.testing.assert_array_equal(shown[row * 7], data.x_test[row])
        assert all(np.asarray(image).astype("uint8").tobytes() in training
                   for image in shown[row * 7 + 1:row * 7 + 7])
    probabilities = softmax(model.predict(data.x_test, verbose=0))
    bar_axes = figures["top5"].axes[5:]
    for bars, expected in zip(bar_axes, probabilities):
        widths = sorted((patch.get_width() for patch in bars.patches), reverse=True)
        np.testing.assert_allclose(widths, np.sort(expected)[::-1][:5], atol=1e-5)


@pytest.fixture
def finished_run(tmp_path, cifar_dir):
    """A run directory as a finished run leaves it (the tests' small network, untrained),
    without its figures."""
    from keras_alexnet import AlexNet
    from keras_alexnet.config import TrainConfig
    from keras_alexnet.data.cifar10 import CLASS_NAMES
    from keras_alexnet.run_dir import write_class_names, write_history, write_json

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(data_dir=cifar_dir, validation_size=100, **TINY_MODEL)
    write_json(str(run / "config.json"), config.to_dict())
    write_history(str(run / "history.csv"),
                  [{key: HISTORY[key][epoch] for key in HISTORY} for epoch in range(4)])
    write_json(str(run / "metrics.json"), {"confusion_matrix": np.eye(10, dtype=int).tolist()})
    write_class_names(str(run / "class_names.txt"), CLASS_NAMES)
    AlexNet(**TINY_MODEL, seed=0).save(str(run / "best.keras"))
    return run


def listing(folder):
    return sorted(os.path.relpath(os.path.join(parent, name), folder)
                  for parent, folders, files in os.walk(folder) for name in folders + files)


@pytest.mark.parametrize("name, content, message", [
    ("config.json", b"{not json", "config.json is not valid JSON"),
    ("config.json", b"[1, 2]", "config.json does not hold a config"),
    ("config.json", b'{"epochs": "many"}', "config.json: TrainConfig.epochs"),
    ("config.json", b"[" * 100_000, "nests deeper than 32 levels"),
    ("metrics.json", b"\xff\xfe", "metrics.json is not UTF-8 text"),
    ("metrics.json", b'{"test_accuracy": 0.5}', "metrics.json holds no confusion matrix"),
    ("metrics.json", b'{"confusion_matrix": [[1, 2], [3]]}', "holds no confusion matrix"),
    ("metrics.json", b'{"confusion_matrix": [[1, 0], [0, 1]]}',
     "its confusion matrix is 2 × 2, not one row and column for each of the data's 10 classes"),
    ("class_names.txt", "caf\xe9\n".encode("latin-1"), "class_names.txt is not UTF-8 text"),
    ("class_names.txt", b"airplane\nautomobile\n",
     "best.keras: the model has 10 classes but its class names are 2"),
])
def test_a_damaged_run_file_is_one_line_before_any_figure(name, content, message, finished_run,
                                                          run_cli_here):
    (finished_run / name).write_bytes(content)
    before = listing(finished_run)
    result = run_cli_here("report", finished_run)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message in lines[0]
    assert listing(finished_run) == before


def test_the_report_of_a_run_goes_whole_to_its_output_dir(finished_run, tmp_path, run_cli_here):
    before = listing(finished_run)
    result = run_cli_here("report", finished_run, "--output-dir", tmp_path / "figures")
    assert result.returncode == 0, result.stderr
    expected = sorted([*plots.FIGURE_FILES.values(), *plots.LEARNED_FIGURE_FILES.values()])
    assert listing(tmp_path / "figures") == expected
    assert result.stdout.split() == [str(tmp_path / "figures" / name) for name in
                                     [*plots.FIGURE_FILES.values(),
                                      *plots.LEARNED_FIGURE_FILES.values()]]
    assert listing(finished_run) == before


@pytest.mark.parametrize("output_dir, message", [
    ("{tmp}/a_file", "the report directory {tmp}/a_file is a file, not a directory"),
    ("/proc/keras_alexnet", "cannot create the report directory /proc/keras_alexnet"),
    ("{tmp}/read_only", "cannot write into the report directory {tmp}/read_only: "
                        "Permission denied"),
    (None, "cannot write into the report directory {tmp}/run: Permission denied"),
])
def test_a_report_directory_that_cannot_be_written_is_one_line(output_dir, message, finished_run,
                                                               tmp_path, run_cli_here):
    tmp = str(tmp_path)
    (tmp_path / "a_file").write_text("a file")
    (tmp_path / "read_only").mkdir()
    read_only = finished_run if output_dir is None else tmp_path / "read_only"
    read_only.chmod(0o555)
    if "Permission denied" in message and os.access(read_only, os.W_OK):
        pytest.skip("this user writes into a read-only folder (root)")
    before = listing(tmp_path)
    flags = [] if output_dir is None else ["--output-dir", output_dir.format(tmp=tmp)]
    try:
        result = run_cli_here("report", finished_run, *flags)
    finally:
        read_only.chmod(0o755)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message.format(tmp=tmp) in lines[0]
    assert listing(tmp_path) == before


def test_a_model_of_three_classes_gets_its_pictures_with_its_own_class_names(tmp_path, cifar_dir,
                                                                             run_cli_here):
    from keras_alexnet import AlexNet

    model = AlexNet(**TINY_MODEL, num_classes=3, seed=0)
    model.save(str(tmp_path / "three.keras"))
    (tmp_path / "class_names.txt").write_text("cat\ndog\nship\n")
    result = run_cli_here("report", tmp_path / "three.keras", "--data-dir", cifar_dir,
                          "--output-dir", tmp_path / "figures")
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path / "figures") == sorted(plots.LEARNED_FIGURE_FILES.values())


def test_the_top5_names_the_true_class_by_the_datas_names_and_bars_by_the_models():
    from keras_alexnet.data.cifar10 import CLASS_NAMES

    images = np.zeros((2, 32, 32, 3), np.uint8)
    figure = plots.top5_figure(images, np.array([8, 3]), np.array([[2, 0, 1], [1, 2, 0]]),
                               np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]), ["cat", "dog", "ship"],
                               label_names=CLASS_NAMES)
    assert [axis.get_title() for axis in figure.axes[:2]] == ["ship", "cat"]
    bars = figure.axes[2:]
    assert [label.get_text() for label in bars[0].get_yticklabels()] == ["ship", "cat", "dog"]
    red = [[patch.get_facecolor()[:3] == (0.8392156862745098, 0.15294117647058825,
                                          0.1568627450980392) for patch in axis.patches]
           for axis in bars]
    assert red == [[True, False, False], [False, False, True]]  # ship first; cat third


@pytest.mark.parametrize("build, message", [
    ("sequential", "has no conv1, fc7, conv5_pool layer"),
    ("large_input", "takes 64 × 64 × 3 images: the paper's pictures are drawn on CIFAR-10's"),
])
def test_a_model_the_pictures_cannot_show_is_one_line(build, message, tmp_path, cifar_dir,
                                                      run_cli_here):
    import keras

    side = 64 if build == "large_input" else 32
    keras.Sequential([keras.Input((side, side, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(str(tmp_path / "model.keras"))
    result = run_cli_here("report", tmp_path / "model.keras", "--data-dir", cifar_dir,
                          "--output-dir", tmp_path / "figures")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert message in lines[0]
    assert not os.path.exists(tmp_path / "figures")


# In a fresh process: SIGTERM once the report has drawn its second figure.
SIGNALLED_REPORT = r"""
import os, signal, sys, time
from keras_alexnet import cli
from keras_alexnet.utils.native_stderr import native_stderr_silenced

with native_stderr_silenced():  # TensorFlow's start-up lines, as the command drops them
    from keras_alexnet.plots import blog

save, saved = blog.save_figure, []

def save_then_stop(figure, path):
    save(figure, path)
    saved.append(path)
    if len(saved) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler runs before this ends

blog.save_figure = save_then_stop
sys.exit(cli.main(["report", sys.argv[1]]))
"""


@pytest.mark.slow
def test_sigterm_during_the_report_is_one_line_and_leaves_no_figure(finished_run):
    import subprocess
    import sys

    before = listing(finished_run)
    result = subprocess.run([sys.executable, "-c", SIGNALLED_REPORT, str(finished_run)],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 75 and len(lines) == 1, result.stderr
    assert lines[0] == ("keras-alexnet: stopped by SIGTERM while drawing the report; nothing was "
                        "left half-written: run the same command again")
    assert listing(finished_run) == before
