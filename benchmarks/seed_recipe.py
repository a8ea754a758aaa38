"""The whole seed recipe with keras_alexnet, as a user runs it: `train()` with its defaults (49
epochs with validation, the test, checkpoints, figures, export), timed from process start.

    KERAS_BACKEND=jax python benchmarks/seed_recipe.py --data-dir DIR [--epochs 49] [--quick]

Prints one JSON line: the wall seconds from process start to `metrics.json` (what a user waits
for a trained, tested model) and to the end of `train()`; where they went (`seconds`: imports,
data loading, model build, training epochs, validation, checkpoint writes, the rest of `fit`,
test, figures, export); compilation apart (on JAX measured through `jax.monitoring`, with the
programs compiled and how many came from the persistent compilation cache; everywhere estimated
as the first epoch's and first validation's excess over steady ones) and the wall time without
it; train images/s; test accuracy. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before the imports, which are part of what a user waits for

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA_DIR, CompileClock, emit  # noqa: E402

from keras_alexnet.cli import value_parser  # noqa: E402
from keras_alexnet.evaluation.metrics import steady_seconds  # noqa: E402


def main(argv=None) -> None:
    args = parse_args(argv)
    import keras_alexnet

    run_dir = tempfile.mkdtemp(prefix="seed_recipe_")
    config = keras_alexnet.TrainConfig(
        data_dir=args.data_dir, epochs=args.epochs, train_subset=args.train_subset,
        validation_size=args.validation_size, output_dir=os.path.join(run_dir, "run"),
        saved_models_dir=os.path.join(run_dir, "saved_models"), figures=args.figures,
        export=args.export, verbose=0, **{name: getattr(args, name) for name in TRAIN_SETTINGS
                                          if hasattr(args, name)})
    compile_clock = CompileClock()
    try:
        result = keras_alexnet.train(config)
        wall = time.perf_counter() - START
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    history, phases = result.history, result.phase_seconds
    compiling = compile_clock.seconds
    compile_estimate = first_excess(history["epoch_seconds"]) + first_excess(
        history["validation_seconds"])
    emit("seed_recipe", epochs=config.epochs, checkpoint_every=config.checkpoint_every,
         wall_seconds_to_metrics=round(wall - phases["figures"] - phases["export"], 1),
         wall_seconds=round(wall, 1),
         wall_seconds_without_compile=round(wall - (compile_estimate if compiling is None
                                                    else compiling), 1),
         seconds={name: round(value, 2) for name, value in where_the_time_went(
             wall, phases, history).items()},
         first_epoch_seconds=round(history["epoch_seconds"][0], 2),
         steady_epoch_seconds=round(steady_seconds(history["epoch_seconds"]), 3),
         compile_seconds_estimate=round(compile_estimate, 2),
         compile_seconds=None if compiling is None else round(compiling, 2),
         compiled_programs=compile_clock.programs, compilation_cache_hits=compile_clock.cache_hits,
         train_images_per_second=round(result.metrics["train_images_per_second"]),
         test_accuracy=result.metrics["test_accuracy"],
         best_val_accuracy=result.metrics["best_val_accuracy"],
         performance=result.metrics["performance"])


def where_the_time_went(wall: float, phases: dict[str, float],
                        history: dict[str, list[float]]) -> dict[str, float]:
    """`wall` split into the imports before `train()`, its phases, and `fit`'s parts: training
    epochs, validation, checkpoint writes and the rest (callbacks, input pipeline set-up)."""
    train, validation = sum(history["epoch_seconds"]), sum(history["validation_seconds"])
    writes = phases["checkpoint_writes"]
    return {"imports": wall - sum(v for k, v in phases.items() if k != "checkpoint_writes"),
            "data": phases["data"], "build": phases["build"], "train": train,
            "validation": validation, "checkpoint_writes": writes,
            "fit_other": phases["fit"] - train - validation - writes, "test": phases["test"],
            "figures": phases["figures"], "export": phases["export"]}


# TrainConfig fields these flags set when given (else train()'s defaults).
TRAIN_SETTINGS = ("checkpoint_every", "compilation_cache_dir", "mixed_precision", "augmentation")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--epochs", type=int, default=49)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--validation-size", type=int, default=10_000)
    parser.add_argument("--mixed-precision", default=argparse.SUPPRESS)
    parser.add_argument("--augmentation", default=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-every", type=value_parser(int, optional=True),
                        default=argparse.SUPPRESS,
                        help="epochs between backup/best.keras writes; 0: none; 'none': "
                             "automatic (default: train()'s)")
    parser.add_argument("--compilation-cache-dir", type=value_parser(str, optional=True),
                        default=argparse.SUPPRESS,
                        help="JAX's persistent compilation cache (default: train()'s; "
                             "'none': off)")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--export", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch on 256 images, 500 validation images (CI)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_subset, args.validation_size = 1, 256, 500
    return args


def first_excess(seconds: list[float]) -> float:
    """How much longer the first of `seconds` took than a steady one: its compilation."""
    return seconds[0] - steady_seconds(seconds)


if __name__ == "__main__":
    main()
