"""Time to accuracy: a recipe trained as a user runs it, timed from process start, one JSON line
per run, beside this host's measured float32 and bfloat16 matrix-product peaks
(`common.matmul_peaks`); or, with `--torch`, the same recipe in PyTorch on the same machine
(`seed`: the seed blog's code; `fast`: `torch_fast.py`); with `--side-by-side`, both, one after
the other.

    python benchmarks/time_to_accuracy.py --recipe fast [--epochs N] [--seeds 0 1] [--data-dir DIR]
                                          [--batch-size B --learning-rate LR]
    python benchmarks/time_to_accuracy.py --torch --torch-python PY [--recipe seed|fast] ...
    python benchmarks/time_to_accuracy.py --side-by-side --torch-python PY --recipe fast ...

Every run is a fresh child process (imports, data, compilation, training, test and export all
count, as for `keras-alexnet train`). A keras_alexnet line has the recipe, epochs, seed, the test
accuracy with the recipe's test-time augmentation and in a single view, the wall seconds from
process start to the end of `train()` and per phase (imports, data, build, fit, test, figures,
export), train images/s, the training's FLOPs per image (`common.training_flops_per_image`) and,
given `--peak-gflops`, the floor those FLOPs set at that peak, and the machine, backend and
date. `--torch` runs
`../shared/reference/seed_torch.py` (the seed recipe, single view, no export) or
`benchmarks/torch_fast.py` (`fast`: flip TTA, no export) with `PY`, an interpreter that has
PyTorch, and reports the same fields it can; every line has `seconds_per_epoch` (training and
validation). After the runs, one `mean`
line per recipe and epochs. Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # before the imports, which are part of what a user waits for

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import (  # noqa: E402
    DEFAULT_DATA_DIR,
    cpu_model,
    emit,
    matmul_peaks,
    training_flops_per_image,
)

CIFAR10_TRAIN = 50_000  # training images, before the validation split
TORCH_REFERENCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                "..", "shared", "reference", "seed_torch.py"))
TORCH_FAST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_fast.py")


def run_recipe(args: argparse.Namespace) -> None:
    """One keras_alexnet run in this process (the child): `train()` timed from process start."""
    import keras_alexnet

    run_dir = tempfile.mkdtemp(prefix="time_to_accuracy_")
    overrides = {name: getattr(args, name) for name in ("epochs", "batch_size", "learning_rate")
                 if getattr(args, name)}
    if args.train_subset:
        overrides.update(train_subset=args.train_subset, validation_size=100)
    config = keras_alexnet.TrainConfig.from_recipe(
        args.recipe, data_dir=args.data_dir, seed=args.seed, verbose=0,
        output_dir=os.path.join(run_dir, "run"),
        saved_models_dir=os.path.join(run_dir, "saved_models"), **overrides)
    train = keras_alexnet.train  # imports Keras and TensorFlow
    imported = time.perf_counter() - START
    try:
        result = train(config)
        wall = time.perf_counter() - START
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    metrics = result.metrics
    flops = training_flops_per_image(result.model)
    train_size = min(config.train_subset or CIFAR10_TRAIN, CIFAR10_TRAIN - config.validation_size)
    trained_images = train_size * config.epochs
    floor = ({"floor_seconds": round(flops * trained_images / (args.peak_gflops * 1e9), 1)}
             if args.peak_gflops else {})
    emit("time_to_accuracy", recipe=args.recipe, epochs=len(result.history["loss"]),
         seed=args.seed, test_accuracy=metrics["test_accuracy"],
         test_accuracy_single_view=metrics["test_accuracy_single_view"],
         wall_seconds=round(wall, 1),
         seconds={"imports": round(imported, 1),
                  **{name: round(value, 1) for name, value in result.phase_seconds.items()}},
         train_images_per_second=round(metrics["train_images_per_second"]),
         seconds_per_epoch=round(result.phase_seconds["fit"] / len(result.history["loss"]), 1),
         batch_size=config.batch_size, learning_rate=config.learning_rate,
         train_flops_per_image=flops, trained_images=trained_images, **floor,
         performance=metrics["performance"])


def run_torch(args: argparse.Namespace, seed: int) -> dict:
    """One run of the recipe in PyTorch in a child process, timed from its start."""
    if args.recipe == "fast":
        return run_torch_fast(args, seed)
    if args.recipe != "seed":
        raise SystemExit(f"--torch runs the seed and fast recipes, not {args.recipe}")
    command = [args.torch_python, TORCH_REFERENCE, "--data", args.data_dir, "--workers", "0",
               "--epochs", str(args.epochs or 49), "--seed", str(seed)]
    if args.train_subset:
        command += ["--limit-train", str(args.train_subset)]
    start = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    summary = json.loads(output.strip().splitlines()[-1])
    return {"benchmark": "time_to_accuracy", "recipe": "pytorch-reference",
            "epochs": summary["epochs"], "seed": seed, "test_accuracy": summary["test_acc"],
            "test_accuracy_single_view": summary["test_acc"], "wall_seconds": round(wall, 1),
            "train_images_per_second": round(summary["train_images_per_s"]),
            "seconds_per_epoch": summary["median_train_epoch_s"],
            "backend": "pytorch", "device": summary["device"], "cpu_count": os.cpu_count(),
            "machine": platform.node(), "date": datetime.date.today().isoformat()}


def run_torch_fast(args: argparse.Namespace, seed: int) -> dict:
    """One run of `torch_fast.py` (the `fast` recipe in PyTorch), timed from its start; the
    recipe's own epochs, batch size and learning rate unless the flags override them."""
    from keras_alexnet.config import RECIPES

    fast = RECIPES["fast"].values
    command = [args.torch_python, TORCH_FAST, "--data-dir", args.data_dir, "--seed", str(seed),
               "--epochs", str(args.epochs or fast["epochs"]),
               "--batch-size", str(args.batch_size or fast["batch_size"]),
               "--learning-rate", str(args.learning_rate or fast["learning_rate"])]
    if args.train_subset:
        command += ["--train-subset", str(args.train_subset)]
    if args.torch_float32:
        command += ["--float32"]
    start = time.perf_counter()
    lines = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    *epochs, summary = (json.loads(line) for line in lines.strip().splitlines())
    return {"benchmark": "time_to_accuracy", "recipe": "fast-pytorch", "epochs": summary["epochs"],
            "seed": seed, "test_accuracy": summary["test_accuracy"],
            "test_accuracy_single_view": summary["test_accuracy_single_view"],
            "wall_seconds": round(wall, 1),
            "train_images_per_second": summary["images_per_second"],
            "seconds_per_epoch": round(sum(epoch["seconds"] for epoch in epochs) / len(epochs), 1),
            "batch_size": summary["batch_size"], "compile": summary["compile"],
            "bfloat16": summary["bfloat16"], "backend": "pytorch", "torch": summary["torch"],
            "cpu_count": os.cpu_count(), "machine": platform.node(),
            "date": datetime.date.today().isoformat()}


def run_child(args: argparse.Namespace, seed: int) -> dict:
    """One keras_alexnet run in a fresh Python process; its JSON line."""
    command = [sys.executable, os.path.abspath(__file__), "--child", "--recipe", args.recipe,
               "--seeds", str(seed), "--data-dir", args.data_dir]
    for flag, value in (("--epochs", args.epochs), ("--train-subset", args.train_subset),
                        ("--peak-gflops", args.peak_gflops), ("--batch-size", args.batch_size),
                        ("--learning-rate", args.learning_rate)):
        if value:
            command += [flag, str(value)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def mean_line(runs: list[dict]) -> dict:
    """The runs' mean test accuracies and wall seconds, with their spread."""
    def summary(key: str) -> dict:
        values = [run[key] for run in runs]
        return {"mean": round(statistics.fmean(values), 4), "min": min(values),
                "max": max(values)}

    return {"benchmark": "time_to_accuracy", "mean_of_seeds": [run["seed"] for run in runs],
            "recipe": runs[0]["recipe"], "epochs": runs[0]["epochs"],
            "test_accuracy": summary("test_accuracy"),
            "test_accuracy_single_view": summary("test_accuracy_single_view"),
            "wall_seconds": summary("wall_seconds")}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fast")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the recipe's epochs (its schedule scales with them)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N images only (smoke runs)")
    parser.add_argument("--peak-gflops", type=float, default=None,
                        help="the cores' peak GFLOP/s: adds floor_seconds, the training's "
                             "FLOPs at that peak")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="override the recipe's batch size")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="override the recipe's learning rate")
    parser.add_argument("--torch", action="store_true",
                        help="run the recipe (seed or fast) in PyTorch instead")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run each seed in keras_alexnet, then in PyTorch")
    parser.add_argument("--torch-float32", action="store_true",
                        help="PyTorch's fast recipe in float32 (default: bfloat16 autocast); "
                             "run both on a new host and compare with its best")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="an interpreter with PyTorch for --torch (default: this one)")
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch on 256 images, 100 validation images (CI)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.train_subset = 1, 256
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        args.seed = args.seeds[0]
        run_recipe(args)
        return
    runners = ([run_child, run_torch] if args.side_by_side
               else [run_torch] if args.torch else [run_child])
    # The host's own peaks beside every run (not in --quick, a check of the script).
    host = {} if args.quick else {"matmul_peak_gflops": matmul_peaks(), "cpu": cpu_model()}
    for runner in runners:
        runs = []
        for seed in args.seeds:
            run = {**runner(args, seed), **host}
            print(json.dumps(run), flush=True)
            runs.append(run)
        print(json.dumps(mean_line(runs)), flush=True)


if __name__ == "__main__":
    main()
