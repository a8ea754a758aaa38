"""`write_report`: every figure there is for a finished run, a `.keras` model or a preset
(`keras-alexnet report`)."""

from __future__ import annotations

import os
from typing import Optional

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import load_cifar10
from keras_alexnet.errors import RunDirError
from keras_alexnet.models.catalogue import is_preset
from keras_alexnet.plots.blog import write_blog_figures
from keras_alexnet.plots.paper import write_learned_figures
from keras_alexnet.run_dir import CHECKPOINT, CONFIG, read_json
from keras_alexnet.serving.presets import model_and_class_names


def write_report(source: str, data_dir: Optional[str] = None,
                 output_dir: Optional[str] = None) -> list[str]:
    """Draws the figures of `source`; returns the PNG paths.

    Args:
        source: A finished run directory (the seed blog's figures, and for a CIFAR-10 run the
            paper's pictures of what its `best.keras` learned, into the run directory), or a
            `.keras` file or preset (the paper's pictures, into `output_dir`).
        data_dir: Local CIFAR-10 copy; default: a run's own, else tensorflow-datasets.
        output_dir: Where a model's or preset's figures go; default: `report/`.

    Raises:
        RunDirError: `source` is neither a finished run, a `.keras` file nor a preset.

    Example:

    >>> write_report("alexnet_fast_cifar10", "cifar-10-batches-py", "figures")
    ['figures/paper_figure3_conv1_kernels.png', ...]
    """
    if os.path.isfile(os.path.join(source, CONFIG)) and not is_preset(source):
        paths = write_blog_figures(source, data_dir)
        config = TrainConfig.from_dict(read_json(os.path.join(source, CONFIG)))
        if config.streams_images:
            return paths
        return paths + _learned(os.path.join(source, CHECKPOINT),
                                data_dir or config.data_dir, source)
    if is_preset(source) or source.endswith(".keras"):
        return _learned(source, data_dir, output_dir or "report")
    raise RunDirError(f"{source} is neither a finished run directory, a .keras model nor a "
                      f"preset")


def _learned(model_path: str, data_dir: Optional[str], directory: str) -> list[str]:
    model, class_names = model_and_class_names(model_path)
    return write_learned_figures(model, load_cifar10(data_dir), directory, class_names)
