"""Ablation of the recipes: the seed recipe, `tweaked` and `fast`, each without one technique at
a time, trained on the same short budget, one JSON line per run.

    python benchmarks/recipes.py --data-dir DIR [--epochs 3] [--train-subset 5000] [--only NAME ...]

Each run is `keras_alexnet.train(recipe=…, **changes)` with the budget's epochs, training subset
and validation size, figures and export off. Every line has the recipe, the changes, the
epochs, the test accuracy (with the run's test-time augmentation) and the single-view test
accuracy (`tweaked` tests with flip TTA; the single view is the same run without it), the best
validation accuracy, the wall time, and the machine, backend and date. A short budget ranks the
techniques; it does not give their full-length accuracy. Not a test: the numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA_DIR, emit  # noqa: E402

# (name, recipe, changes): the seed recipe, `tweaked`, and `tweaked` at conv1 stride 2 (a third of
# the compute) without one of its techniques each, or with Cutout added (what `long` adds); `fast`
# and `fast` with one technique set back to `tweaked`'s (batch 128 at its learning rate 0.05 with
# the linear scaling rule's ratio, full width, cosine, label smoothing 0.1) or off; and `fast` at
# batch 256 (learning rate 0.1), the README's 4- and 20-minute rows.
_STRIDE_2 = {"conv1_stride": 2}
VARIANTS = (
    ("seed", "seed", {}),
    ("tweaked", "tweaked", {}),
    ("tweaked@stride2", "tweaked", _STRIDE_2),
    ("tweaked@stride2-batch_norm", "tweaked", {**_STRIDE_2, "batch_norm": False}),
    ("tweaked@stride2-nesterov", "tweaked", {**_STRIDE_2, "nesterov": False}),
    ("tweaked@stride2-cosine", "tweaked", {**_STRIDE_2, "lr_schedule": "step",
                                           "lr_decay_epoch": 10 ** 6}),
    ("tweaked@stride2-label_smoothing", "tweaked", {**_STRIDE_2, "label_smoothing": 0.0}),
    ("tweaked@stride2-dropout_0.25", "tweaked", {**_STRIDE_2, "dropout": 0.5}),
    ("tweaked@stride2+cutout", "tweaked", {**_STRIDE_2, "cutout": 8}),
    # `fast` without one of its speed or accuracy techniques at a time.
    ("fast", "fast", {}),
    ("fast-mixed_bfloat16", "fast", {"mixed_precision": "float32"}),
    ("fast-batch_size_512", "fast", {"batch_size": 128, "learning_rate": 0.05}),
    ("fast@batch256", "fast", {"batch_size": 256, "learning_rate": 0.1}),
    ("fast-width_multiplier_0.5", "fast", {"width_multiplier": 1.0, "dense_units": 4096}),
    ("fast-linear", "fast", {"lr_schedule": "cosine"}),
    ("fast-label_smoothing_0.2", "fast", {"label_smoothing": 0.1}),
    ("fast-nesterov", "fast", {"nesterov": False}),
)


def run(name: str, recipe: str, changes: dict, args: argparse.Namespace) -> None:
    import keras_alexnet

    budget = {"epochs": args.epochs, "train_subset": args.train_subset,
              "validation_size": args.validation_size}
    if "warmup_epochs" not in changes and recipe != "seed":
        budget["warmup_epochs"] = min(2.0, args.epochs / 4)  # the same share of a short run
    run_dir = tempfile.mkdtemp(prefix="recipes_")
    try:
        start = time.perf_counter()
        result = keras_alexnet.train(recipe=recipe, data_dir=args.data_dir, output_dir=run_dir,
                                     export=False, figures=False, checkpoint_every=0, verbose=0,
                                     **budget, **changes)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    metrics = result.metrics
    emit("recipes", name=name, recipe=recipe, changes=changes, **budget,
         test_accuracy=metrics["test_accuracy"],
         test_accuracy_single_view=metrics["test_accuracy_single_view"],
         best_val_accuracy=round(metrics["best_val_accuracy"], 4),
         wall_seconds=round(wall, 1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--validation-size", type=int, default=2000)
    parser.add_argument("--only", nargs="+", choices=[name for name, _, _ in VARIANTS],
                        help="run only these variants")
    parser.add_argument("--quick", action="store_true",
                        help="2 variants, 1 epoch on 64 images (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_subset, args.validation_size = 1, 64, 100
        args.only = args.only or ["seed", "tweaked@stride2-batch_norm"]
    for name, recipe, changes in VARIANTS:
        if args.only is None or name in args.only:
            run(name, recipe, changes, args)


if __name__ == "__main__":
    main()
