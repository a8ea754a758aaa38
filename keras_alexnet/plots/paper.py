"""The paper's pictures of what the network learned, for any trained model or preset: conv1's
kernels (its Figure 3), test images with the training images nearest in fc7's space and with
their top-5 predictions (its Figure 4), and Grad-CAM heat maps of where each class was found.

`learned_figures` draws all four and `write_learned_figures` saves them (`keras-alexnet
report`); the computations are in `keras_alexnet.evaluation.learned`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_alexnet.data.cifar10 import Cifar10
from keras_alexnet.evaluation.learned import (
    first_conv_kernels,
    grad_cam,
    layer_features,
    nearest_neighbours,
    top_k,
)
from keras_alexnet.plots.blog import save_figure

LEARNED_FIGURE_FILES = {
    "kernels": "paper_figure3_conv1_kernels.png",
    "neighbours": "paper_figure4_nearest_neighbours.png",
    "top5": "paper_figure4_top5.png",
    "grad_cam": "grad_cam.png",
}
KERNEL_COLUMNS = 16
# Training images searched for neighbours: the first this many, so the figure takes seconds.
SEARCHED_TRAINING_IMAGES = 10_000


def kernel_grid_figure(kernels: np.ndarray) -> plt.Figure:
    """conv1's kernels `[filters, h, w, 3]` as colour tiles, each stretched to the full range
    (the paper's Figure 3)."""
    rows = -(-len(kernels) // KERNEL_COLUMNS)
    figure, axes = plt.subplots(rows, KERNEL_COLUMNS,
                                figsize=(KERNEL_COLUMNS * 0.6, rows * 0.6 + 0.6), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(kernels):
            kernel = kernels[index]
            span = kernel.max() - kernel.min()
            axis.imshow((kernel - kernel.min()) / (span if span > 0 else 1.0),
                        interpolation="nearest")
    figure.suptitle(f"conv1: {len(kernels)} kernels of {kernels.shape[1]}×{kernels.shape[2]}×3")
    figure.tight_layout()
    return figure


def neighbours_figure(queries: np.ndarray, neighbours: np.ndarray) -> plt.Figure:
    """Each query image (first column) beside its nearest training images in fc7's space,
    nearest first (the paper's Figure 4, right)."""
    rows, columns = neighbours.shape[0], neighbours.shape[1] + 1
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1), squeeze=False)
    for row in range(rows):
        for column, image in enumerate([queries[row], *neighbours[row]]):
            axes[row, column].imshow(image.astype(np.uint8))
            axes[row, column].axis("off")
    axes[0, 0].set_title("test", fontsize=9)
    axes[0, 1].set_title("nearest in fc7 →", fontsize=9, loc="left")
    figure.tight_layout()
    return figure


def top5_figure(images: np.ndarray, labels: np.ndarray, class_ids: np.ndarray,
                probabilities: np.ndarray, class_names: Sequence[str],
                label_names: Optional[Sequence[str]] = None) -> plt.Figure:
    """Each test image above its five most probable classes as bars, the true class red (the
    paper's Figure 4, left); `label_names` name `labels` (default: `class_names`, the model's
    classes)."""
    label_names = class_names if label_names is None else label_names
    figure, axes = plt.subplots(2, len(images), figsize=(2.0 * len(images), 3.6), squeeze=False,
                                gridspec_kw={"height_ratios": [1.2, 1]})
    for column, image in enumerate(images):
        axes[0, column].imshow(image.astype(np.uint8))
        truth = label_names[labels[column]]
        axes[0, column].set_title(truth, fontsize=9)
        axes[0, column].axis("off")
        bars = axes[1, column]
        colours = ["tab:red" if class_names[c] == truth else "tab:blue" for c in class_ids[column]]
        bars.barh(range(len(class_ids[column]))[::-1], probabilities[column], color=colours)
        bars.set_yticks(range(len(class_ids[column]))[::-1],
                        [class_names[c] for c in class_ids[column]], fontsize=8)
        bars.set_xlim(0, 1)
        bars.tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    return figure


def grad_cam_figure(images: np.ndarray, heatmaps: Sequence[np.ndarray],
                    titles: Sequence[str]) -> plt.Figure:
    """Each image with its Grad-CAM heat map laid over it."""
    figure, axes = plt.subplots(1, len(images), figsize=(2.0 * len(images), 2.4), squeeze=False)
    for axis, image, heatmap, title in zip(axes[0], images, heatmaps, titles):
        axis.imshow(image.astype(np.uint8))
        axis.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        axis.set_title(title, fontsize=9)
        axis.axis("off")
    figure.suptitle("Grad-CAM: where the predicted class was found")
    figure.tight_layout()
    return figure


def learned_figures(model: keras.Model, data: Cifar10, class_names: Sequence[str],
                    count: int = 5, neighbours: int = 6,
                    label_names: Optional[Sequence[str]] = None) -> dict[str, plt.Figure]:
    """The four pictures for the first `count` test images, by `LEARNED_FIGURE_FILES` key;
    neighbours are searched among the first `SEARCHED_TRAINING_IMAGES` training images.
    `label_names` name the data's labels (default: `class_names`, the model's classes)."""
    queries, labels = data.x_test[:count], data.y_test[:count]
    searched = data.x_train[:SEARCHED_TRAINING_IMAGES]
    nearest = nearest_neighbours(layer_features(model, queries), layer_features(model, searched),
                                 k=neighbours)
    logits = keras.ops.convert_to_numpy(model.predict(queries, verbose=0))
    class_ids, probabilities = top_k(keras.ops.convert_to_numpy(keras.ops.softmax(logits)), k=5)
    cams = [grad_cam(model, image) for image in queries]
    return {
        "kernels": kernel_grid_figure(first_conv_kernels(model)),
        "neighbours": neighbours_figure(queries, searched[nearest]),
        "top5": top5_figure(queries, labels, class_ids, probabilities, class_names,
                            label_names),
        "grad_cam": grad_cam_figure(queries, [cam.heatmap for cam in cams],
                                    [class_names[cam.class_id] for cam in cams]),
    }


def write_learned_figures(model: keras.Model, data: Cifar10, directory: str,
                          class_names: Sequence[str],
                          label_names: Optional[Sequence[str]] = None) -> list[str]:
    """Draws `learned_figures` into `directory`; returns the PNG paths."""
    os.makedirs(directory, exist_ok=True)
    figures = learned_figures(model, data, class_names, label_names=label_names)
    return [save_figure(figure, os.path.join(directory, LEARNED_FIGURE_FILES[name]))
            for name, figure in figures.items()]
