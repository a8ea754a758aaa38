"""The named recipes: each a one-line description and the `TrainConfig` values it changes
(every technique a recipe uses is a field; a recipe only sets values)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from keras_alexnet.config.migration import warn_renamed
from keras_alexnet.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named recipe: a one-line description and the `TrainConfig` values it changes."""

    description: str
    values: dict[str, Any]


_TWEAKED = {
    "conv1_stride": 1, "batch_norm": True, "dropout": 0.25, "global_clipnorm": None,
    "lr_schedule": "cosine", "learning_rate": 0.05, "warmup_epochs": 2.0, "nesterov": True,
    "label_smoothing": 0.1, "test_time_augmentation": "flip", "epochs": 20,
}
# Time to accuracy on a CPU: a quarter of the convolutions' compute, big steps in the precision
# this host runs faster (measured: `mixed_precision="auto"`), a schedule that ends at 0, and only
# 2,000 validation images (benchmarks/time_to_accuracy.py).
_FAST = {
    "conv1_stride": 1, "batch_norm": True, "width_multiplier": 0.5, "dense_units": 512,
    "dropout": 0.1, "global_clipnorm": None, "batch_size": 512,
    "lr_schedule": "linear", "learning_rate": 0.2, "warmup_epochs": 1.2, "nesterov": True,
    "label_smoothing": 0.2, "pca_stddev": 0.0, "validation_size": 2000,
    "test_time_augmentation": "flip", "epochs": 6,
}
# The 2012 paper's recipe for its own network: batch 128, SGD 0.01 with momentum 0.9 and weight
# decay 5e-4 (the defaults), the learning rate ÷10 when the validation error stalls (three times at
# most), 90 epochs, the paper's initialisation, ten-crop test.
_PAPER = {
    "network": "paper", "init": "paper", "lr_schedule": "plateau", "global_clipnorm": None,
    "test_time_augmentation": "ten_crop", "epochs": 90, "eval_batch_size": 128,
    "output_dir": os.path.join("runs", "alexnet_paper"), "model_name": "alexnet_paper",
}
# Accuracy within two CPU hours: what fast teaches, wider, with Cutout and more epochs.
_LONG = {**_FAST, "width_multiplier": 0.75, "dense_units": 1024, "cutout": 8, "epochs": 40}
RECIPES = {
    "seed": Recipe("the seed blog's recipe, as TrainConfig() (49 epochs, ~80 % test accuracy)", {}),
    "tweaked": Recipe("AlexNet with conv1 at stride 1 and batch norm, Nesterov SGD, warm-up + "
                      "cosine LR, label smoothing, flip test-time augmentation; 20 epochs",
                      _TWEAKED),
    "long": Recipe("fast at three-quarter width (fc6/fc7 of 1024) with Cutout 8×8; 40 epochs, "
                   "under 2 hours on a CPU", _LONG),
    "fast": Recipe("a half-width AlexNet (conv1 at stride 1, batch norm, fc6/fc7 of 512) at batch "
                   "512 in the faster of float32 and bfloat16 on this host, one-cycle LR, label "
                   "smoothing, flip test-time augmentation; 6 epochs, minutes on a CPU", _FAST),
    "paper": Recipe("the 2012 paper's network and recipe: 224×224 crops of images resized to 256, "
                    "flips, PCA jitter, SGD 0.01 ÷10 on plateaus, 90 epochs, ten-crop test "
                    "(pass --dataset)", _PAPER),
}


def recipe_values(name: str, overrides: dict[str, Any], default_epochs: int) -> dict[str, Any]:
    """The `TrainConfig` values of recipe `name` with `overrides`: a recipe's warm-up is a share
    of its run, so overriding `epochs` without `warmup_epochs` scales it (logged at INFO)."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; the recipes are {', '.join(RECIPES)}")
    recipe = RECIPES[name].values
    values = {**recipe, **overrides}
    if "warmup_epochs" in recipe and "warmup_epochs" not in overrides:
        values["warmup_epochs"] = _scaled_warmup(name, values.get("epochs", default_epochs))
    return values


def _scaled_warmup(name: str, epochs: Any) -> float:
    """The recipe's `warmup_epochs` for a run of `epochs`: the same share of the run."""
    recipe = RECIPES[name].values
    warmup, recipe_epochs = recipe["warmup_epochs"], recipe["epochs"]
    if epochs == recipe_epochs or not isinstance(epochs, int) or epochs < 1:
        return warmup  # nothing to scale, or a bad `epochs` that validation reports
    scaled = warmup * epochs / recipe_epochs
    logger.info("warmup_epochs=%g, the %s recipe's share of the run (%g of its %d epochs)",
                scaled, name, warmup, recipe_epochs)
    return scaled


def recipes() -> dict[str, str]:
    """Each recipe's name with its one-line description.

    Example:

    >>> sorted(recipes())
    ['fast', 'long', 'paper', 'seed', 'tweaked']
    """
    return {name: recipe.description for name, recipe in RECIPES.items()}


def presets() -> dict[str, str]:
    """Deprecated spelling of `recipes()`; the trained models are `AlexNet.presets`."""
    warn_renamed("keras_alexnet.presets()", "keras_alexnet.recipes() (trained models: "
                 "keras_alexnet.AlexNet.presets)")
    return recipes()
