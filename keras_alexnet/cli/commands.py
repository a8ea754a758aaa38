"""What each command checks before anything is imported or read (`check_*`) and then does
(`run_*`): `train`, `evaluate`, `export`, `report`, `predict`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from typing import Any, Optional, Sequence

from keras_alexnet.cli.flags import PROG
from keras_alexnet.config import TrainConfig, check_packages, check_timeout
from keras_alexnet.errors import ConfigError, ImageError, KerasAlexNetError
from keras_alexnet.evaluation.test_time import check_ten_crop_pad
from keras_alexnet.models.catalogue import DEFAULT_PRESET, is_preset, shipped_presets
from keras_alexnet.run_dir import (
    BACKUP,
    CONFIG,
    METRICS,
    check_directory,
    class_names_in,
    read_json,
)
from keras_alexnet.serving.image_bytes import MAX_IMAGE_FILE_BYTES
from keras_alexnet.utils.image_files import FORMATS, NotARegularFile, open_regular_file
from keras_alexnet.utils.native_stderr import native_stderr_silenced


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
    _check_flag(check_ten_crop_pad, args.ten_crop_pad, "--ten-crop-pad")


def run_evaluate(args: argparse.Namespace) -> int:
    from keras_alexnet.evaluation.evaluate import evaluate

    config = _run_config(args.model)
    data_dir = args.data_dir or (config.data_dir if config else None)
    model = args.model
    if is_preset(model):
        from keras_alexnet.models.build import load_preset

        model = load_preset(model)
    metrics = evaluate(model, data_dir=data_dir, batch_size=args.batch_size,
                       ten_crop=args.ten_crop, ten_crop_pad=args.ten_crop_pad,
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
        if not args.model.endswith(".keras"):
            raise UserError(f"the model must be a .keras file or a preset, got {args.model}")
        if not os.path.isfile(args.model):
            raise UserError(f"no model at {args.model}")
    for flag, value in (("--max-image-pixels", args.max_image_pixels),
                        ("--max-request-pixels", args.max_request_pixels)):
        if value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    check_directory(os.path.join(args.saved_models_dir, args.model_name), "model directory")


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
    from keras_alexnet.serving.export import export_saved_model
    from keras_alexnet.serving.presets import model_and_class_names

    model, names = model_and_class_names(args.model)
    exported = export_saved_model(model, args.saved_models_dir, args.model_name,
                                  class_names=names,
                                  max_image_pixels=args.max_image_pixels,
                                  max_request_pixels=args.max_request_pixels)
    print(f"SavedModel: {exported}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from keras_alexnet.plots.report import write_report

    for path in write_report(args.source, data_dir=args.data_dir, output_dir=args.output_dir):
        print(path)
    return 0


def _check_flag(check, value: Any, flag: str) -> None:
    """Runs one of `config`'s value checks on a flag's `value`, naming it `flag`."""
    try:
        check(value, flag)
    except ConfigError as error:
        raise UserError(str(error)) from error


def check_predict(args: argparse.Namespace) -> None:
    if not 1 <= args.top_k <= 10:
        raise UserError(f"--top-k must be in 1..10, got {args.top_k}")
    _check_flag(check_timeout, args.timeout, "--timeout")
    if args.class_names is not None and not os.path.isfile(args.class_names):
        raise UserError(f"--class-names: no file {args.class_names}")


def run_predict(args: argparse.Namespace) -> int:
    from keras_alexnet.serving import client

    encoded = [_read_image_file(path) for path in args.images]
    if args.server:
        names = class_names_in(args.class_names)
        predictions = client.predict(args.server, args.model_name,
                                     client.image_bytes_request(encoded), timeout=args.timeout,
                                     num_classes=len(names))
    else:
        from keras_alexnet.serving.export import saved_model_class_names

        model = _local_saved_model(args.model)
        names = saved_model_class_names(model)
        if args.class_names:
            given, names = names, class_names_in(args.class_names)
            if len(names) != len(given):
                raise UserError(f"--class-names {args.class_names} names {len(names)} classes; "
                                f"the model {model} has {len(given)}")
        predictions = _predict_locally(model, args.images, encoded, len(names))
    tops = [prediction.top_k(args.top_k, names) for prediction in predictions]
    if args.json:
        print(json.dumps([{"image": path, "top": [{"class_name": name, "probability": p}
                                                  for name, p in top]}
                          for path, top in zip(args.images, tops)], indent=2))
    else:
        for path, top in zip(args.images, tops):
            print(f"{path}: {', '.join(f'{name} {p:.3f}' for name, p in top)}")
    return 0


def _local_saved_model(model: Optional[str]) -> str:
    """The SavedModel `predict` runs: `--model`'s, a preset's (exported once, then cached), or
    without `--model` the default shipped preset's, said on stderr."""
    if model is None:
        accuracy = shipped_presets()[DEFAULT_PRESET]["test_accuracy"]
        print(f"{PROG}: no --model: using the shipped preset {DEFAULT_PRESET} ({accuracy:.2%} "
              f"on CIFAR-10's test images)", file=sys.stderr)
        model = DEFAULT_PRESET
    from keras_alexnet.serving.presets import saved_model_of

    return saved_model_of(model)


def _read_image_file(path: str) -> bytes:
    """The bytes of an image file, after checking that it is a regular file of at most
    `MAX_IMAGE_FILE_BYTES` (a FIFO, a device or a huge sparse file are never read whole)."""
    from keras_alexnet.serving.client import check_encoded_image

    too_large = UserError(f"{path} is larger than {MAX_IMAGE_FILE_BYTES // 2 ** 20} MiB, the "
                          f"most an image file may be")
    try:
        with open_regular_file(path) as file:
            if os.fstat(file.fileno()).st_size > MAX_IMAGE_FILE_BYTES:
                raise too_large
            data = file.read(MAX_IMAGE_FILE_BYTES + 1)
    except NotARegularFile as error:
        raise UserError(str(error)) from error
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from error
    if len(data) > MAX_IMAGE_FILE_BYTES:  # it grew after fstat
        raise too_large
    check_encoded_image(data, path)
    return data


def _predict_locally(model: str, paths: Sequence[str], encoded: Sequence[bytes],
                     num_classes: int):
    import tensorflow as tf

    from keras_alexnet.serving.client import predictions_from_outputs
    from keras_alexnet.serving.export import IMAGE_BYTES_SIGNATURE, load_saved_model
    from keras_alexnet.serving.image_bytes import refusal

    classify = load_saved_model(model, IMAGE_BYTES_SIGNATURE)
    predictions = []
    for path, data in zip(paths, encoded):  # one at a time, so an error names its file
        try:
            # TF's C++ side logs a failed decode as well ("Local rendezvous is aborting…") on
            # some runs; the Python error below is the one line the user gets.
            with native_stderr_silenced():
                outputs = classify(image_bytes=tf.constant([data]))
            predictions += predictions_from_outputs(outputs, num_classes=num_classes)
        except tf.errors.InvalidArgumentError as error:
            reason = refusal(error.message)
            detail = (reason.split("] ", 1)[-1] if reason
                      else f"could not be decoded as {FORMATS}")
            raise ImageError(f"{path} {detail}") from error
    return predictions


def _count(number: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
