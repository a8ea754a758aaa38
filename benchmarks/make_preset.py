"""Makes a shipped preset from a finished run: its best model, stored compactly, with a
`metadata.json` that records what produced it and the accuracy measured here.

    python benchmarks/make_preset.py RUN_DIR NAME --recipe fast --description "…" \
        [--data-dir DIR] [--presets-dir keras_alexnet/pretrained]

The preset's kernels are stored in float16 and its accuracy measured on CIFAR-10's 10,000 test
images as a user loads it (float32 compute), in a single view and with the recipe's test-time
augmentation. The same weights stored in float32 are measured too: a float16 preset whose
accuracy moves by more than `--max-float16-drop` points in either view is refused. The command
of the run is derived from its `config.json` against the recipe's values; neither it nor the
recorded config holds a path of the machine that trained it. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import DEFAULT_DATA_DIR, context, emit  # noqa: E402

# Where the machine that trained it kept the data, the run's files and its caches: no part of
# the preset, so left out of its config and its command (which says `--data-dir DIR` for a run
# on a local CIFAR-10 copy).
MACHINE_PATH_FIELDS = ("data_dir", "output_dir", "saved_models_dir", "compilation_cache_dir")
PRESETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "keras_alexnet", "pretrained")


def training_command(config, recipe: str) -> str:
    """`keras-alexnet train --recipe RECIPE` with a flag for every value of the run that the
    recipe does not give, the machine's paths left out, and `--data-dir DIR` if the run read a
    local copy: a command a user can run."""
    from keras_alexnet.config import TrainConfig

    base = TrainConfig.from_recipe(recipe, epochs=config.epochs)  # its warm-up scaled alike
    changed = [field.name for field in dataclasses.fields(config)
               if getattr(config, field.name) != getattr(base, field.name)
               and field.name not in MACHINE_PATH_FIELDS]
    if config.epochs != TrainConfig.from_recipe(recipe).epochs:
        changed.insert(0, "epochs")
    return " ".join(["keras-alexnet train --recipe", recipe,
                     *(flag(name, getattr(config, name)) for name in changed),
                     *(["--data-dir DIR"] if config.data_dir else [])])


def portable_config(config) -> dict:
    """The run's config without the paths of the machine that trained it."""
    return {name: value for name, value in config.to_dict().items()
            if name not in MACHINE_PATH_FIELDS}


def flag(name: str, value) -> str:
    """A config value as its `train` flag: `--x`/`--no-x` for a boolean, else `--x VALUE`."""
    from keras_alexnet.cli.flags import shown

    option = name.replace("_", "-")
    if isinstance(value, bool):
        return f"--{option}" if value else f"--no-{option}"
    return f"--{option} {shown(value)}"


def accuracies(preset: str, data_dir: str, test_time_augmentation: str) -> dict[str, float]:
    """The preset's test accuracy in a single view and with the recipe's test-time
    augmentation, loaded as a user loads it."""
    import keras_alexnet

    model = keras_alexnet.AlexNetImageClassifier.from_preset(preset)
    single = keras_alexnet.evaluate(model, data_dir=data_dir)["test_accuracy"]
    augmented = keras_alexnet.evaluate(model, data_dir=data_dir,
                                       test_time_augmentation=test_time_augmentation)
    return {"test_accuracy": augmented["test_accuracy"], "test_accuracy_single_view": single}


def cpu_name() -> str:
    """The processor's model name and the cores this process may use, e.g. `AMD EPYC 9R14
    (2 cores)`."""
    name = platform.processor() or platform.machine()
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as file:
            name = next((line.split(":", 1)[1].strip() for line in file
                         if line.startswith("model name")), name)
    return f"{name} ({len(os.sched_getaffinity(0))} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--recipe", required=True, help="the recipe the run started from")
    parser.add_argument("--description", required=True)
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--presets-dir", default=PRESETS_DIR)
    parser.add_argument("--max-float16-drop", type=float, default=0.1,
                        help="most accuracy points float16 storage may cost (default: 0.1)")
    args = parser.parse_args()

    from keras_alexnet.config import TrainConfig
    from keras_alexnet.models.model_files import load_keras_model
    from keras_alexnet.models.preset_files import METADATA_FILE, save_to_preset
    from keras_alexnet.run_dir import class_names_in, read_json

    config = TrainConfig.from_dict(read_json(os.path.join(args.run_dir, "config.json")))
    metrics_path = os.path.join(args.run_dir, "metrics.json")
    run_metrics = read_json(metrics_path)
    model = load_keras_model(os.path.join(args.run_dir, "best.keras"))
    names = class_names_in(os.path.join(args.run_dir, "class_names.txt"))
    view = config.test_time_augmentation
    measured = {}
    with tempfile.TemporaryDirectory() as scratch:
        for dtype in ("float32", "float16"):
            path = save_to_preset(model, os.path.join(scratch, dtype), names, weights_dtype=dtype)
            measured[dtype] = accuracies(path, args.data_dir, view)
        drop = max(abs(measured["float32"][key] - measured["float16"][key]) * 100
                   for key in measured["float16"])
        if drop > args.max_float16_drop:
            sys.exit(f"make_preset: float16 storage moves the accuracy by {drop:.2f} points, more "
                     f"than {args.max_float16_drop}: not written")
        metadata = {
            "description": args.description, "recipe": args.recipe,
            "command": training_command(config, args.recipe), "seed": config.seed,
            "config": portable_config(config),
            **measured["float16"],
            "test_time_augmentation": view, "test_images": 10_000,
            "float32_weights": measured["float32"],
            "trained": {
                "date": datetime.date.fromtimestamp(os.path.getmtime(metrics_path)).isoformat(),
                "machine": cpu_name(),
                **{key: run_metrics[key] for key in
                   ("test_accuracy", "test_accuracy_single_view", "train_seconds",
                    "epochs_completed", "performance") if key in run_metrics}},
            "measured_on": {**context(), "machine": cpu_name()}}
        target = os.path.join(args.presets_dir, args.name)
        save_to_preset(model, target, names, metadata, weights_dtype="float16", overwrite=True)
    size = sum(os.path.getsize(os.path.join(target, name)) for name in os.listdir(target))
    emit("make_preset", name=args.name, bytes=size, float16_drop_points=round(drop, 3),
         **{key: value for key, value in json.load(open(os.path.join(target, METADATA_FILE)))
            .items() if key.startswith("test_accuracy")})


if __name__ == "__main__":
    main()
