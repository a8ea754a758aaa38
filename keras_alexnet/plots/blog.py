"""The seed blog's figures (Figures 1–4 and the confusion matrix), drawn from the package's own
data, layers and run outputs (matplotlib).

Each function returns a `matplotlib.figure.Figure`; `save_figure` writes it as a PNG.
`write_blog_figures` draws all of them for a run directory (`keras-alexnet report RUN_DIR`).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import CLASS_NAMES, PreparedData
from keras_alexnet.data.image_sets import RunData, load_run_data
from keras_alexnet.errors import RunDirError
from keras_alexnet.run_dir import CONFIG, HISTORY, METRICS, read_history
from keras_alexnet.utils.atomic import atomic_path
from keras_alexnet.utils.bounded_files import read_json_file

FIGURE_FILES = {
    "samples": "figure1_samples.png",
    "crop_flip": "figure2_crop_flip.png",
    "pca_jitter": "figure3_pca_jitter.png",
    "curves": "figure4_training_curves.png",
    "confusion": "confusion_matrix.png",
}
DPI = 100
HISTORY_COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy")  # what Figure 4 draws
MAX_CONFUSION_CLASSES = 20  # beyond, a confusion matrix figure is unreadable; metrics.json has it


def sample_grid(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str] = CLASS_NAMES,
                per_class: int = 4) -> plt.Figure:
    """Figure 1: `per_class` images of every class, one class per column, named."""
    figure, axes = plt.subplots(per_class, len(class_names),
                                figsize=(len(class_names), per_class + 0.4))
    for column, name in enumerate(class_names):
        picks = np.flatnonzero(labels == column)[:per_class]
        for row in range(per_class):
            axis = axes[row, column]
            axis.axis("off")
            if row < len(picks):
                axis.imshow(images[picks[row]])
        axes[0, column].set_title(name, fontsize=9)
    figure.suptitle("CIFAR-10 samples")
    figure.tight_layout()
    return figure


def crop_flip_figure(image: np.ndarray, pad: int = 4, seed: int = 0) -> plt.Figure:
    """Figure 2: an image, after pad + random crop (`RandomPadCrop`), and that crop flipped."""
    from keras import ops

    from keras_alexnet.data.augment import RandomPadCrop

    cropped = ops.convert_to_numpy(
        RandomPadCrop(pad=pad, seed=seed)(image[None].astype("float32"), training=True))[0]
    panels = [("original", image), (f"pad {pad} + random crop", cropped),
              ("horizontal flip", cropped[:, ::-1])]
    return _image_row(panels, "Padding, random cropping and horizontal reflection")


def pca_jitter_figure(image: np.ndarray, eigenvalues: Sequence[float],
                      eigenvectors: Sequence[Sequence[float]], stddev: float = 0.1, draws: int = 5,
                      seed: int = 0) -> plt.Figure:
    """Figure 3: an image and `draws` PCA colour jitters of it (`PCAColorJitter`)."""
    from keras import ops

    from keras_alexnet.data.augment import PCAColorJitter

    jitter = PCAColorJitter(eigenvalues, eigenvectors, stddev=stddev, seed=seed)
    batch = np.repeat(image[None].astype("float32"), draws, axis=0)
    jittered = ops.convert_to_numpy(jitter(batch, training=True))
    panels = [("original", image)] + [(f"jitter {i + 1}", jittered[i]) for i in range(draws)]
    return _image_row(panels, f"PCA colour jitter (σ = {stddev})")


MAX_EPOCH_TICKS = 12  # up to this many epochs each gets its tick


def training_curves(history: dict[str, Sequence[float]], lr_schedule: str = "step"
                    ) -> plt.Figure:
    """Figure 4: training and validation loss and accuracy per epoch, and the learning rate.

    Args:
        history: `history.csv` columns (`loss`, `accuracy`, `val_loss`, `val_accuracy`,
            optionally `learning_rate`), as `TrainResult.history` or `run_dir.read_history` give.
        lr_schedule: The run's `TrainConfig.lr_schedule`. `"step"` marks each drop of the
            learning rate (with its factor); any other schedule changes the rate every epoch,
            so its rate is drawn on the loss panel's right axis instead.
    """
    epochs = np.arange(1, len(history["loss"]) + 1)
    rates = history.get("learning_rate", [])
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in [(axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")]:
        axis.plot(epochs, history[metric], marker=".", label=f"training {label}")
        axis.plot(epochs, history[f"val_{metric}"], marker=".", label=f"validation {label}")
        if lr_schedule == "step":
            for epoch in _learning_rate_drops(rates):
                axis.axvline(epoch + 0.5, color="grey", linestyle="--", linewidth=1,
                             label=f"learning rate ×{rates[epoch] / rates[epoch - 1]:.2g}")
        axis.set_xlabel("epoch")
        if len(epochs) <= MAX_EPOCH_TICKS:
            axis.set_xticks(epochs)  # whole epochs, also for a run of one or two
        else:
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    if lr_schedule != "step" and len(rates):
        rate_axis = axes[0].twinx()
        rate_axis.plot(epochs, rates, color="grey", linestyle="--", linewidth=1)
        rate_axis.set_ylabel("learning rate (end of epoch)", color="grey")
    figure.suptitle("Training and validation loss and accuracy")
    figure.tight_layout()
    return figure


def confusion_matrix_figure(confusion: Sequence[Sequence[int]],
                            class_names: Sequence[str] = CLASS_NAMES) -> plt.Figure:
    """The row-normalised test confusion matrix and the per-class accuracy."""
    confusion = np.asarray(confusion, dtype=float)
    normalised = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5), width_ratios=(1.3, 1))
    shown = left.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    left.set_xticks(ticks, class_names, rotation=45, ha="right")
    left.set_yticks(ticks, class_names)
    left.set_xlabel("predicted class")
    left.set_ylabel("true class")
    for row, column in np.ndindex(normalised.shape):
        value = normalised[row, column]
        left.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7,
                  color="white" if value > 0.5 else "black")
    figure.colorbar(shown, ax=left, fraction=0.046)
    right.barh(ticks, normalised.diagonal())
    right.set_yticks(ticks, class_names)
    right.invert_yaxis()
    right.set_xlim(0, 1)
    right.set_xlabel("test accuracy")
    right.grid(axis="x", alpha=0.3)
    figure.suptitle(f"Test set: {np.trace(confusion) / confusion.sum():.2%} accuracy")
    figure.tight_layout()
    return figure


def save_figure(figure: plt.Figure, path: str) -> str:
    """Writes `figure` as a PNG through a temporary file renamed into place; closes it."""
    try:
        with atomic_path(path) as staging:
            figure.savefig(staging, dpi=DPI)
    finally:
        plt.close(figure)
    return path


def write_blog_figures(run_dir: str, data_dir: Optional[str] = None,
                       output_dir: Optional[str] = None) -> list[str]:
    """Draws the seed blog's figures of a finished run into `output_dir` (default: `run_dir`);
    returns the PNG paths.

    Figures 1–3 (CIFAR-10 runs) use the run's data (`data_dir`, default: the one in
    `config.json`) and its training split's PCA; Figure 4 uses `history.csv`; the confusion
    matrix `metrics.json`.

    Raises:
        RunDirError: `run_dir` lacks `config.json`, `history.csv` or `metrics.json`, or one of
            them is damaged (`read_finished_run`), or its confusion matrix is not one of the
            data's classes.
    """
    config, history, confusion = read_finished_run(run_dir)
    data = load_run_data(config.replace(data_dir=data_dir or config.data_dir))
    if confusion.shape != (data.num_classes,) * 2:
        raise RunDirError(f"{os.path.join(run_dir, METRICS)}: its confusion matrix is "
                          f"{' × '.join(map(str, confusion.shape))}, not one row and column for "
                          f"each of the data's {data.num_classes} classes")
    return write_figures(output_dir or run_dir, data, history, confusion.tolist(), config)


def read_finished_run(run_dir: str) -> tuple[TrainConfig, dict[str, list[float]], np.ndarray]:
    """A finished run's config, history and test confusion matrix, each checked: `RunDirError`
    in one line when a file is missing, not a small regular file, not UTF-8 JSON, or holds
    other values (a `ConfigError` for a config `TrainConfig` refuses)."""
    paths = {name: os.path.join(run_dir, name) for name in (CONFIG, HISTORY, METRICS)}
    for path in paths.values():
        if not os.path.isfile(path):
            raise RunDirError(f"{run_dir} is not a finished run: {os.path.basename(path)} missing")
    values = read_json_file(paths[CONFIG], f"the run's {paths[CONFIG]}", error=RunDirError)
    if not isinstance(values, dict):
        raise RunDirError(f"{paths[CONFIG]} does not hold a config (a JSON object)")
    try:
        config = TrainConfig.from_dict(values)
    except (TypeError, ValueError) as error:  # a ConfigError names the field
        raise RunDirError(f"{paths[CONFIG]}: {error}") from error
    history = read_history(paths[HISTORY])
    missing = [name for name in HISTORY_COLUMNS if not history.get(name)]
    if missing:
        raise RunDirError(f"{paths[HISTORY]} has no {', '.join(missing)} values")
    metrics = read_json_file(paths[METRICS], f"the run's {paths[METRICS]}", error=RunDirError)
    try:
        confusion = np.asarray(metrics["confusion_matrix"], dtype=np.float64)
    except (TypeError, KeyError, ValueError) as error:
        raise RunDirError(f"{paths[METRICS]} holds no confusion matrix of numbers") from error
    if confusion.ndim != 2 or not np.isfinite(confusion).all() or (confusion < 0).any():
        raise RunDirError(f"{paths[METRICS]} holds no confusion matrix of counts")
    return config, history, confusion


def write_figures(run_dir: str, data: RunData, history: dict[str, Sequence[float]],
                  confusion: Sequence[Sequence[int]], config: TrainConfig) -> list[str]:
    """Writes the figures of a run on `data` into `run_dir`; returns the PNG paths: Figures 1–4
    and the confusion matrix for CIFAR-10 in memory; Figure 4 and (up to
    `MAX_CONFUSION_CLASSES` classes) the confusion matrix for streamed images."""
    figures = {"curves": training_curves(history, config.lr_schedule)}
    if isinstance(data, PreparedData):
        images, labels, stats = data.split.x_train, data.split.y_train, data.stats
        figures = {
            "samples": sample_grid(images, labels),
            "crop_flip": crop_flip_figure(images[0], pad=config.pad, seed=config.seed),
            "pca_jitter": pca_jitter_figure(images[0], stats.eigenvalues, stats.eigenvectors,
                                            stddev=config.pca_stddev, seed=config.seed),
            **figures}
    if data.num_classes <= MAX_CONFUSION_CLASSES:
        figures["confusion"] = confusion_matrix_figure(confusion, data.class_names)
    return [save_figure(figure, os.path.join(run_dir, FIGURE_FILES[name]))
            for name, figure in figures.items()]


def _image_row(panels, title: str) -> plt.Figure:
    figure, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6))
    for axis, (label, image) in zip(axes, panels):
        axis.imshow(np.clip(image, 0, 255).astype(np.uint8))
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _learning_rate_drops(rates: Sequence[float]) -> list[int]:
    """1-based epochs after which the learning rate fell."""
    return [epoch for epoch in range(1, len(rates)) if rates[epoch] < rates[epoch - 1]]
