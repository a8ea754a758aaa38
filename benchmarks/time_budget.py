"""Time budgets kept on this host: `keras-alexnet train --time-budget B` as a user runs it, in a
fresh process (optionally on fewer cores: `--cores 0` runs it under `taskset -c 0`), timed from
its start to its exit, beside the host's measured float32 and bfloat16 matrix-product peaks.

    python benchmarks/time_budget.py --budgets 8m 20m [--cores 0] [--data-dir DIR]

One JSON line per run: the budget and the whole process's wall seconds (and their ratio: at most
1.05 is the promise), the seconds to the SavedModel that metrics.json records, the test
accuracy, the plan (recipe, epochs planned and trained, re-plans), the precision the probe chose
with the rates it measured, the run's phases and its log lines, and the peaks, the CPU model and
the cores used. Not a test: the numbers are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA_DIR, cpu_model, emit, matmul_peaks  # noqa: E402


def run_budget(budget: str, data_dir: str, prefix: tuple, extra: list[str]) -> dict:
    """One budgeted `keras-alexnet train` in a fresh process under `prefix`; what it recorded."""
    run_dir = tempfile.mkdtemp(prefix="time_budget_")
    command = [*prefix, sys.executable, "-m", "keras_alexnet.cli", "train", "--time-budget", budget,
               "--data-dir", data_dir, "--output-dir", os.path.join(run_dir, "run"),
               "--saved-models-dir", os.path.join(run_dir, "saved_models"), "--verbose", "2",
               *extra]
    start = time.perf_counter()
    try:
        finished = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if finished.returncode != 0:
            return {"budget": budget, "exit_status": finished.returncode,
                    "error": finished.stderr.strip().splitlines()[-1:], "wall_seconds": wall}
        with open(os.path.join(run_dir, "run", "metrics.json"), encoding="utf-8") as file:
            metrics = json.load(file)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    recorded = metrics["time_budget"]
    return {"budget_seconds": recorded["budget_seconds"], "wall_seconds": round(wall, 1),
            "wall_share_of_budget": round(wall / recorded["budget_seconds"], 3),
            "seconds_to_savedmodel": recorded["seconds"],
            "test_accuracy": metrics["test_accuracy"],
            "test_accuracy_single_view": metrics["test_accuracy_single_view"],
            "plan": recorded["plan"], "trained_epochs": recorded["trained_epochs"],
            "replans": recorded["replans"], "at_stop": recorded.get("at_stop"),
            "mixed_precision": recorded["mixed_precision"],
            "measured_images_per_second": recorded["measured_images_per_second"],
            "train_images_per_second": metrics.get("train_images_per_second"),
            "phase_seconds": {name: round(value, 1)
                              for name, value in metrics["phase_seconds"].items()},
            "log": [line for line in finished.stderr.splitlines()
                    if line.startswith("keras-alexnet: ")]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", default=["8m"])
    parser.add_argument("--cores", default=None,
                        help="run under `taskset -c CORES` (e.g. 0: one core)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--train-subset", type=int, default=None,
                        help="train on the first N images only (a check of the script)")
    args = parser.parse_args(argv)
    prefix = ("taskset", "-c", args.cores) if args.cores is not None else ()
    extra = ["--train-subset", str(args.train_subset)] if args.train_subset else []
    peaks = matmul_peaks(prefix)
    for budget in args.budgets:
        emit("time_budget", **run_budget(budget, args.data_dir, prefix, extra),
             matmul_peak_gflops=peaks, cpu=cpu_model(),
             cores=args.cores if args.cores is not None else str(len(os.sched_getaffinity(0))))


if __name__ == "__main__":
    main()
