"""The whole seed recipe with keras_alexnet: 49 epochs of training with validation, then the test,
timed end to end, with the test accuracy.

    KERAS_BACKEND=jax python benchmarks/seed_recipe.py --data-dir DIR [--epochs 49] [--quick]

Runs `keras_alexnet.train()` with the recipe's defaults (figures and export off: they are not part
of the recipe's time) and prints one JSON line: wall seconds, split into training, validation
and the rest (data loading, model building, test, checkpoint writes); compilation apart (on JAX
measured through `jax.monitoring`, everywhere estimated as the first epoch's and first
validation's excess over steady ones), and the wall time without it; on JAX the programs compiled
and how many came from the persistent compilation cache; train images/s; test accuracy.
Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from common import DEFAULT_DATA_DIR, CompileClock, emit  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=49)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--validation-size", type=int, default=10_000)
    parser.add_argument("--mixed-precision", default="auto")
    parser.add_argument("--augmentation", default="auto")
    parser.add_argument("--checkpoint-every", type=int, default=1,
                        help="epochs between backup/best.keras writes; 0: none "
                             "(default: %(default)s)")
    parser.add_argument("--compilation-cache-dir", default=None,
                        help="JAX's persistent compilation cache (default: the package's; "
                             "'none': off)")
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch on 256 images, 500 validation images (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_subset, args.validation_size = 1, 256, 500

    import keras_alexnet

    cache = {} if args.compilation_cache_dir is None else {
        "compilation_cache_dir": (None if args.compilation_cache_dir.lower() == "none"
                                  else args.compilation_cache_dir)}
    run_dir = tempfile.mkdtemp(prefix="seed_recipe_")
    compile_clock = CompileClock()
    try:
        start = time.perf_counter()
        result = keras_alexnet.train(data_dir=args.data_dir, epochs=args.epochs,
                                     train_subset=args.train_subset,
                                     validation_size=args.validation_size,
                                     mixed_precision=args.mixed_precision,
                                     augmentation=args.augmentation,
                                     checkpoint_every=args.checkpoint_every, output_dir=run_dir,
                                     export=False, figures=False, verbose=0, **cache)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    seconds = result.history["epoch_seconds"]
    validation = result.history["validation_seconds"]
    steady = float(np.median(seconds[1:] or seconds))
    steady_validation = float(np.median(validation[1:] or validation))
    compile_estimate = (seconds[0] - steady) + (validation[0] - steady_validation)
    compiling = compile_clock.seconds
    emit("seed_recipe", epochs=args.epochs, checkpoint_every=args.checkpoint_every,
         wall_seconds=round(wall, 1),
         wall_seconds_without_compile=round(wall - (compile_estimate if compiling is None
                                                    else compiling), 1),
         train_seconds=round(sum(seconds), 1), validation_seconds=round(sum(validation), 1),
         other_seconds=round(wall - sum(seconds) - sum(validation), 1),
         first_epoch_seconds=round(seconds[0], 2), steady_epoch_seconds=round(steady, 3),
         compile_seconds_estimate=round(compile_estimate, 2),
         compile_seconds=None if compiling is None else round(compiling, 2),
         compiled_programs=compile_clock.programs, compilation_cache_hits=compile_clock.cache_hits,
         train_images_per_second=round(result.metrics["train_images_per_second"]),
         test_accuracy=result.metrics["test_accuracy"],
         best_val_accuracy=result.metrics["best_val_accuracy"],
         performance=result.metrics["performance"])


if __name__ == "__main__":
    main()
