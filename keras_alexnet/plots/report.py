"""`write_report`: every figure there is for a finished run, a `.keras` model or a preset
(`keras-alexnet report`).

Everything the figures come from is read and checked first; the figures are drawn into a staging
directory beside their place and moved in once all are drawn, so a failure or a signal leaves
none of them (nor a staging file) behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator, Optional, Sequence

import keras

from keras_alexnet.data.cifar10 import CLASS_NAMES, IMAGE_SHAPE, load_cifar10
from keras_alexnet.errors import ModelError, RunDirError
from keras_alexnet.evaluation.learned import FEATURE_LAYER
from keras_alexnet.models.catalogue import is_preset
from keras_alexnet.models.preset_mapping import as_one_model
from keras_alexnet.plots.blog import read_finished_run, write_blog_figures
from keras_alexnet.plots.paper import write_learned_figures
from keras_alexnet.run_dir import CHECKPOINT, CONFIG, check_directory, new_directory
from keras_alexnet.serving.presets import model_and_class_names

LEARNED_LAYERS = ("conv1", FEATURE_LAYER, "conv5_pool")  # what the paper's pictures look at


def write_report(source: str, data_dir: Optional[str] = None,
                 output_dir: Optional[str] = None) -> list[str]:
    """Draws the figures of `source`; returns the PNG paths.

    Args:
        source: A finished run directory (the seed blog's figures, and for a CIFAR-10 run the
            paper's pictures of what its `best.keras` learned), or a `.keras` file or preset
            of a network on 32 × 32 images, of any number of classes (the paper's pictures).
        data_dir: Local CIFAR-10 copy; default: a run's own, else tensorflow-datasets.
        output_dir: Where the figures go; default: the run directory, or `report/` for a model
            or preset.

    Raises:
        RunDirError: `source` is neither a finished run, a `.keras` file nor a preset, one of
            the run's files is damaged, or `output_dir` cannot be written.
        ModelError: The model is not a network whose learned features the pictures show.

    Example:

    >>> write_report("alexnet_fast_cifar10", "cifar-10-batches-py", "figures")
    ['figures/paper_figure3_conv1_kernels.png', ...]
    """
    is_run = os.path.isfile(os.path.join(source, CONFIG)) and not is_preset(source)
    if not (is_run or is_preset(source) or source.endswith(".keras")):
        raise RunDirError(f"{source} is neither a finished run directory, a .keras model nor a "
                          f"preset")
    directory = output_dir or (source if is_run else "report")
    check_directory(directory, "report directory")
    if not is_run:
        learned = _learned_model(source)
        with _staged(directory) as staging:
            return _moved(_learned(learned, data_dir, staging), directory)
    config = read_finished_run(source)[0]  # each file checked before anything is drawn
    learned = None if config.streams_images else _learned_model(os.path.join(source, CHECKPOINT))
    with _staged(directory) as staging:
        paths = write_blog_figures(source, data_dir, staging)
        if learned is not None:
            paths += _learned(learned, data_dir or config.data_dir, staging)
        return _moved(paths, directory)


def _learned_model(path: str) -> tuple[keras.Model, Sequence[str]]:
    """The model at `path` (a `.keras` file or a preset) and its class names, once checked to be
    what the paper's pictures can show: a network on CIFAR-10's 32 × 32 images with AlexNet's
    layers, and a class name for each output."""
    model, class_names = model_and_class_names(path)
    model = as_one_model(model)  # a task's layers in one graph, as the figures read them
    if tuple(model.input_shape[1:]) != IMAGE_SHAPE:
        raise ModelError(f"{path} takes {' × '.join(map(str, model.input_shape[1:]))} images: "
                         f"the paper's pictures are drawn on CIFAR-10's 32 × 32 × 3 images "
                         f"(use evaluate for it)")
    names = {layer.name for layer in model.layers}
    missing = [layer for layer in LEARNED_LAYERS if layer not in names]
    if missing:
        raise ModelError(f"{path} has no {', '.join(missing)} layer: the paper's pictures show "
                         f"what an AlexNet's layers learned")
    if len(class_names) != model.output_shape[-1]:
        raise ModelError(f"{path}: the model has {model.output_shape[-1]} classes but its class "
                         f"names are {len(class_names)}")
    return model, class_names


def _learned(learned: tuple[keras.Model, Sequence[str]], data_dir: Optional[str],
             directory: str) -> list[str]:
    model, class_names = learned
    return write_learned_figures(model, load_cifar10(data_dir), directory, class_names,
                                 label_names=CLASS_NAMES)


@contextlib.contextmanager
def _staged(directory: str) -> Iterator[str]:
    """A staging directory inside `directory` (made for the block, and removed again if the
    block raises while it is empty) for figures the block draws; always removed at the end."""
    with new_directory(directory, "report directory"):
        staging = tempfile.mkdtemp(prefix=".report.tmp-", dir=directory)
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _moved(paths: list[str], directory: str) -> list[str]:
    """Moves the staged files at `paths` into `directory`; returns their new paths."""
    moved = [os.path.join(directory, os.path.basename(path)) for path in paths]
    for source, target in zip(paths, moved):
        os.replace(source, target)
    return moved
