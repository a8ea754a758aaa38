"""What each command checks before anything is imported or read (`check_*`) and then does
(`run_*`): `train`, `evaluate`, `export`, `report` (`predict`: `cli.predict`)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import urllib.parse
from typing import Any, Iterator, Optional

from keras_alexnet.cli.flags import PROG
from keras_alexnet.config import (
    FILE_EXTENSIONS,
    TrainConfig,
    check_export_format,
    check_packages,
)
from keras_alexnet.errors import ConfigError, KerasAlexNetError
from keras_alexnet.evaluation.test_time import check_ten_crop_pad
from keras_alexnet.models.catalogue import is_preset
from keras_alexnet.run_dir import (
    BACKUP,
    CHECKPOINT,
    CONFIG,
    METRICS,
    check_directory,
    check_output_file,
    read_json,
)
from keras_alexnet.serving.image_bytes import check_pixel_limit

FORMAT_TITLES = {"savedmodel": "SavedModel", "litert": "LiteRT", "onnx": "ONNX"}


class UserError(KerasAlexNetError):
    """An error in the user's input, reported as one line."""


def check_train(args: argparse.Namespace) -> None:
    """Builds the run's config into `args.config`; a bad value is named by its flag."""
    overrides = {name: value for name, value in vars(args).items()
                 if name in {f.name for f in dataclasses.fields(TrainConfig)}}
    if args.preset:
        if args.recipe:
            raise UserError("--preset is the old spelling of --recipe: give only --recipe")
        print(f"{PROG}: --preset is deprecated: use --recipe {args.preset} (a preset is now a "
              f"trained model)", file=sys.stderr)
        args.recipe = args.preset
    if args.resume:
        if overrides or args.recipe:
            raise UserError("--resume takes no other flags: the run's config.json is used")
        args.config = _resumed_config(args.resume)
        return
    try:
        args.config = TrainConfig.from_recipe(args.recipe or "seed", **overrides)
        check_packages(args.config)
    except ConfigError as error:
        raise UserError(re.sub(r"TrainConfig\.(\w+)",
                               lambda field: "--" + field.group(1).replace("_", "-"),
                               str(error))) from error


def run_train(args: argparse.Namespace) -> int:
    from keras_alexnet.training.recipe import train

    result = train(args.config)
    metrics = result.metrics
    if not metrics:  # another process than process 0 of a multi-host run, which writes the run
        print(f"trained {_count(len(result.history['epoch']), 'epoch')}; process 0 tests and "
              f"writes the run")
        return 0
    print(f"{_test_summary(metrics)}, best val accuracy {metrics['best_val_accuracy']:.4f}, "
          f"{_count(metrics['epochs_completed'], 'epoch')} in {metrics['train_seconds']:.1f} s "
          f"({metrics['train_images_per_second']:.0f} images/s)")
    print(f"run directory: {result.run_dir}")
    if result.export_dir:
        print(f"SavedModel: {result.export_dir}")
    return 0


def _resumed_config(run_dir: str) -> TrainConfig:
    path = os.path.join(run_dir, CONFIG)
    try:
        with open(path) as file:
            values = json.load(file)
    except OSError as error:
        raise UserError(f"{run_dir} is not a run directory: cannot read config.json") from error
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not valid JSON") from error
    fields = {field.name for field in dataclasses.fields(TrainConfig)}
    if not isinstance(values, dict) or not fields & set(values):
        raise UserError(f"{path} does not hold a TrainConfig")
    if values.get("time_budget") is not None:
        raise UserError(f"{run_dir} ran with a time budget, counted from its start: it cannot "
                        f"resume; train it again with --time-budget and --overwrite")
    missing = sorted(fields - set(values) - {"output_dir", "overwrite"})
    if missing:
        print(f"{PROG}: {path} lacks {', '.join(missing)}: their defaults are used",
              file=sys.stderr)
    config = TrainConfig.from_dict({**values, "output_dir": run_dir, "overwrite": False})
    if not os.path.isdir(os.path.join(run_dir, BACKUP)):
        if os.path.isfile(os.path.join(run_dir, METRICS)):
            raise UserError(f"{run_dir} has no interrupted run to resume: it finished")
        print(f"{PROG}: {run_dir} was stopped before its first backup: training starts again "
              f"from epoch 1", file=sys.stderr)
    return config


def check_evaluate(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_flag(check_ten_crop_pad, args.ten_crop_pad, "--ten-crop-pad")
    if args.ten_crop:
        if args.test_time_augmentation not in ("none", "ten_crop"):
            raise UserError("--ten-crop is the old spelling of --test-time-augmentation ten_crop: "
                            "give only --test-time-augmentation")
        print(f"{PROG}: --ten-crop is deprecated: use --test-time-augmentation ten_crop",
              file=sys.stderr)
        args.test_time_augmentation = "ten_crop"


def run_evaluate(args: argparse.Namespace) -> int:
    from keras_alexnet.evaluation.evaluate import evaluate

    config = _run_config(args.model)
    data_dir = args.data_dir or (config.data_dir if config else None)
    model = args.model
    if is_preset(model):
        from keras_alexnet.models.build import load_preset

        model = load_preset(model)
    metrics = evaluate(model, data_dir=data_dir, batch_size=args.batch_size,
                       ten_crop_pad=args.ten_crop_pad,
                       test_time_augmentation=args.test_time_augmentation, config=config)
    if args.json:
        print(_json_with_flat_lists(metrics))
    else:
        print(_test_summary(metrics))
    return 0


def _test_summary(metrics: dict) -> str:
    """`test accuracy 0.8123, [top-5 accuracy 0.9912, ]test loss 0.5678`."""
    top5 = metrics.get("test_top5_accuracy")
    return (f"test accuracy {metrics['test_accuracy']:.4f}, "
            + ("" if top5 is None else f"top-5 accuracy {top5:.4f}, ")
            + f"test loss {metrics['test_loss']:.4f}")


def check_export(args: argparse.Namespace) -> None:
    if not is_preset(args.model):
        if os.path.isdir(args.model):
            if not os.path.isfile(os.path.join(args.model, CHECKPOINT)):
                raise UserError(f"{args.model} is not a run directory: it has no "
                                f"{CHECKPOINT}")
        elif not args.model.endswith(".keras"):
            raise UserError(f"the model must be a .keras file, a run directory or a preset, got "
                            f"{args.model}")
        elif not os.path.isfile(args.model):
            raise UserError(f"no model at {args.model}")
    check_pixel_limit(args.max_image_pixels, "--max-image-pixels")
    check_pixel_limit(args.max_request_pixels, "--max-request-pixels")
    try:
        check_export_format(args.format, args.quantize)
    except ConfigError as error:
        raise UserError(str(error)) from error
    if args.format == "savedmodel":
        if args.output:
            raise UserError("--output is for --format litert or onnx: a SavedModel goes to "
                            "SAVED_MODELS_DIR/MODEL_NAME/<version>/")
        check_directory(os.path.join(args.saved_models_dir, args.model_name), "model directory")
    elif args.output and not args.output.endswith(FILE_EXTENSIONS[args.format]):
        raise UserError(f"--output: a {FORMAT_TITLES[args.format]} file's name ends in "
                        f"{FILE_EXTENSIONS[args.format]}, got {args.output}")
    elif args.output:
        check_output_file(args.output, f"{FORMAT_TITLES[args.format]} file")
    else:  # the file goes there
        check_directory(args.saved_models_dir, "saved models directory")


def _run_config(model: str) -> Optional[TrainConfig]:
    """The `TrainConfig` of the run a `.keras` file belongs to (its `config.json`), if it has
    one: a run is evaluated on the data it was trained with, as `report` draws it."""
    path = os.path.join(os.path.dirname(model), CONFIG)
    if not model.endswith(".keras") or not os.path.isfile(path):
        return None
    try:
        return TrainConfig.from_dict(read_json(path))
    except (OSError, ValueError, TypeError, ConfigError):
        return None


def _json_with_flat_lists(value: Any) -> str:
    """JSON indented by two, each list of numbers on one line (a confusion matrix: a row a
    line)."""
    return re.sub(r"\[([^\[\]{}\"]*)\]",
                  lambda found: "[" + ", ".join(item.strip() for item in found.group(1).split(","))
                  + "]", json.dumps(value, indent=2))


def run_export(args: argparse.Namespace) -> int:
    from keras_alexnet.serving.formats import export

    with stopped_by_signals("while exporting"):
        exported = export(args.model, args.format, output=args.output, quantize=args.quantize,
                          data_dir=args.data_dir, saved_models_dir=args.saved_models_dir,
                          model_name=args.model_name, max_image_pixels=args.max_image_pixels,
                          max_request_pixels=args.max_request_pixels)
    print(f"{FORMAT_TITLES[args.format]}: {exported}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from keras_alexnet.plots.report import write_report

    with stopped_by_signals("while drawing the report"):
        paths = write_report(args.source, data_dir=args.data_dir, output_dir=args.output_dir)
    for path in paths:
        print(path)
    return 0


@contextlib.contextmanager
def stopped_by_signals(phase: str) -> Iterator[None]:
    """For the block, SIGTERM or SIGINT ends the command with one line naming `phase` and exit
    status 75 or 130 (`TrainingStopped`); the files being written are removed as the stop
    passes through their writers (each stages its files and renames them into place)."""
    from keras_alexnet.training.interruption import stop_on_signals

    with stop_on_signals() as request:
        request.enter(phase, "nothing was left half-written: run the same command again")
        yield


def check_server_url(url: str) -> None:
    """`UserError` unless `--server` is an `http://` or `https://` URL naming a host (TF
    Serving's REST address)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--server must be an http:// or https:// URL of TF Serving's REST API "
                        f"(e.g. http://localhost:8501), got {url!r}")


def check_flag(check, value: Any, flag: str) -> None:
    """Runs one of `config`'s value checks on a flag's `value`, naming it `flag`."""
    try:
        check(value, flag)
    except ConfigError as error:
        raise UserError(str(error)) from error


def _count(number: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
