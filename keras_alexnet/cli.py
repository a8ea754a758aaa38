"""The `keras-alexnet` command: `train` (every `TrainConfig` field is a flag), `evaluate`, `export`,
`report`, `predict`.

Errors in what the user gave (a bad flag or value, missing or corrupt data, a missing model) end
with one `keras-alexnet: error: …` line and exit status 2, before anything is written.
TensorFlow's C++ start-up messages (oneDNN, CUDA probing), which no environment variable silences
in TF 2.21, are dropped while it is imported; Python warnings and errors still show.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import stat
import sys
import typing
from typing import Any, Optional, Sequence

from keras_alexnet.config import (
    MAX_TEN_CROP_PAD,
    PRESETS,
    TEST_TIME_AUGMENTATIONS,
    TrainConfig,
    check_ten_crop_pad,
    check_timeout,
    presets,
)
from keras_alexnet.errors import (
    ConfigError,
    ImageError,
    KerasAlexNetError,
    TrainingStopped,
    disk_full_reason,
)
from keras_alexnet.image_bytes import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
    MAX_IMAGE_FILE_BYTES,
)
from keras_alexnet.native_stderr import native_stderr_silenced
from keras_alexnet.run_dir import BACKUP, CONFIG, METRICS, check_directory, read_json

PROG = "keras-alexnet"


class UserError(KerasAlexNetError):
    """An error in the user's input, reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(message)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser().parse_args(argv)
        args.check(args)  # every flag, before TensorFlow or JAX is imported
        if args.command == "export" and "keras" not in sys.modules:
            # A SavedModel of plain TensorFlow ops (what TF Serving runs) comes from the
            # TensorFlow backend, whatever backend trained the weights.
            os.environ["KERAS_BACKEND"] = "tensorflow"
        _import_tensorflow_quietly()
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except TrainingStopped as stopped:
        print(f"{PROG}: {stopped}", file=sys.stderr)
        return stopped.status
    except KerasAlexNetError as error:  # the user's input; anything else is a bug and raises
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:
        reason = disk_full_reason(error)
        if reason is None:
            raise
        print(f"{PROG}: error: cannot write ({reason}): every file written before is whole and "
              f"nothing was left half-written; free some space and run again (training resumes "
              f"from its last backup)", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG,
                     description="Train, evaluate and export the seed's CIFAR-10 AlexNet.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train with the seed recipe or a preset (flags override it)",
        description="Train AlexNet on CIFAR-10. Defaults are the seed recipe.")
    train.add_argument("--preset", choices=list(PRESETS), default=None,
                       help="start from a named recipe; other flags override its values: "
                            + "; ".join(f"{name}: {text}" for name, text in presets().items())
                            .replace("%", "%%"))
    descriptions = _field_descriptions()
    for field in dataclasses.fields(TrainConfig):
        _add_field_flag(train, field, descriptions.get(field.name, ""))
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue an interrupted run from its last backup, with the "
                            "config.json it was started with (no other flags)")
    train.set_defaults(run=_run_train, check=_check_train)

    evaluate = commands.add_parser("evaluate", help="test accuracy of a checkpoint or SavedModel")
    evaluate.add_argument("model", help="a .keras checkpoint, a SavedModel version directory, or a "
                                        "model directory (its newest version is used)")
    evaluate.add_argument("--data-dir", default=None,
                          help="local CIFAR-10 copy (default: $KERAS_ALEXNET_DATA, else "
                               "tensorflow-datasets)")
    evaluate.add_argument("--batch-size", type=int, default=500)
    evaluate.add_argument("--ten-crop", action="store_true",
                          help="average the paper's ten crops (corners, centre, mirrored) of each "
                               "image zero-padded by --ten-crop-pad")
    evaluate.add_argument("--ten-crop-pad", type=int, default=4,
                          help=f"padding per side before the ten 32×32 crops, 0 to "
                               f"{MAX_TEN_CROP_PAD} (default: %(default)s)")
    evaluate.add_argument("--test-time-augmentation", "--tta", choices=TEST_TIME_AUGMENTATIONS,
                          default="none",
                          help="flip: average each image's and its mirror image's probabilities "
                               "(default: %(default)s)")
    evaluate.add_argument("--json", action="store_true", help="print all metrics as JSON")
    evaluate.set_defaults(run=_run_evaluate, check=_check_evaluate)

    export = commands.add_parser("export", help="export a .keras model as a SavedModel (e.g. one "
                                                "trained where TensorFlow was not installed)")
    export.add_argument("--weights", required=True, metavar="MODEL.keras",
                        help="the trained model: a run's final.keras or best.keras")
    export.add_argument("--saved-models-dir", default="saved_models",
                        help="base directory of the exports (default: %(default)s)")
    export.add_argument("--model-name", default="alexnet_cifar10",
                        help="model name: SAVED_MODELS_DIR/MODEL_NAME/<version>/ "
                             "(default: %(default)s)")
    export.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="classify_image_bytes refuses images whose header declares more "
                             "pixels (width × height) than this (default: %(default)s)")
    export.add_argument("--max-request-pixels", type=int, default=DEFAULT_MAX_REQUEST_PIXELS,
                        help="classify_image_bytes refuses requests whose images declare more "
                             "pixels in all than this, before decoding any (default: "
                             "%(default)s)")
    export.set_defaults(run=_run_export, check=_check_export)

    report = commands.add_parser("report", help="draw the seed's figures for a finished run")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a train() output directory")
    report.add_argument("--data-dir", default=None, help="CIFAR-10 copy (default: the run's own)")
    report.set_defaults(run=_run_report, check=lambda args: None)

    predict = commands.add_parser("predict",
                                  help="classify PNG/JPEG files with a SavedModel or TF Serving")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="PNG or JPEG files, any size")
    predict.add_argument("--model", default=os.path.join("saved_models", "alexnet_cifar10"),
                         help="local SavedModel: a model directory (newest version) or a version "
                              "directory (default: %(default)s)")
    predict.add_argument("--server", default=None,
                         help="TF Serving REST base URL (e.g. http://localhost:8501) instead "
                              "of --model")
    predict.add_argument("--model-name", default="alexnet_cifar10",
                         help="model name on the server (default: %(default)s)")
    predict.add_argument("--top-k", type=int, default=1, help="classes to show per image")
    predict.add_argument("--timeout", type=float, default=10.0,
                         help="seconds the whole request to the server may take (default: "
                              "%(default)s)")
    predict.add_argument("--json", action="store_true", help="print the results as JSON")
    predict.set_defaults(run=_run_predict, check=_check_predict)
    return parser


def _check_train(args: argparse.Namespace) -> None:
    """Builds the run's config into `args.config`; a bad value is named by its flag."""
    overrides = {name: value for name, value in vars(args).items()
                 if name in {f.name for f in dataclasses.fields(TrainConfig)}}
    if args.resume:
        if overrides or args.preset:
            raise UserError("--resume takes no other flags: the run's config.json is used")
        args.config = _resumed_config(args.resume)
        return
    try:
        args.config = TrainConfig.from_preset(args.preset or "seed", **overrides)
    except ConfigError as error:
        raise UserError(re.sub(r"TrainConfig\.(\w+)",
                               lambda field: "--" + field.group(1).replace("_", "-"),
                               str(error))) from error


def _run_train(args: argparse.Namespace) -> int:
    from keras_alexnet.training import train

    result = train(args.config)
    metrics = result.metrics
    print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}, "
          f"best val accuracy {metrics['best_val_accuracy']:.4f}, "
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


def _check_evaluate(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    _check_flag(check_ten_crop_pad, args.ten_crop_pad, "--ten-crop-pad")


def _run_evaluate(args: argparse.Namespace) -> int:
    from keras_alexnet.evaluation import evaluate

    metrics = evaluate(args.model, data_dir=args.data_dir or _run_data_dir(args.model),
                       batch_size=args.batch_size,
                       ten_crop=args.ten_crop, ten_crop_pad=args.ten_crop_pad,
                       test_time_augmentation=args.test_time_augmentation)
    if args.json:
        print(_json_with_flat_lists(metrics))
    else:
        print(f"test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")
    return 0


def _check_export(args: argparse.Namespace) -> None:
    if not args.weights.endswith(".keras"):
        raise UserError(f"--weights must be a .keras file, got {args.weights}")
    if not os.path.isfile(args.weights):
        raise UserError(f"no model at {args.weights}")
    for flag, value in (("--max-image-pixels", args.max_image_pixels),
                        ("--max-request-pixels", args.max_request_pixels)):
        if value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    check_directory(os.path.join(args.saved_models_dir, args.model_name), "model directory")


def _run_data_dir(model: str) -> Optional[str]:
    """The `data_dir` of the run a `.keras` file belongs to (its `config.json`), if it has one:
    a run is evaluated on the data it was trained with, as `report` draws it."""
    path = os.path.join(os.path.dirname(model), CONFIG)
    if not model.endswith(".keras") or not os.path.isfile(path):
        return None
    try:
        data_dir = read_json(path).get("data_dir")
    except (OSError, ValueError, AttributeError):
        return None
    return data_dir if isinstance(data_dir, str) else None


def _json_with_flat_lists(value: Any) -> str:
    """JSON indented by two, each list of numbers on one line (a confusion matrix: a row a
    line)."""
    return re.sub(r"\[([^\[\]{}\"]*)\]",
                  lambda found: "[" + ", ".join(item.strip() for item in found.group(1).split(","))
                  + "]", json.dumps(value, indent=2))


def _run_export(args: argparse.Namespace) -> int:
    from keras_alexnet.evaluation import load_keras_model
    from keras_alexnet.export import export_saved_model

    model = load_keras_model(args.weights)
    exported = export_saved_model(model, args.saved_models_dir, args.model_name,
                                  max_image_pixels=args.max_image_pixels,
                                  max_request_pixels=args.max_request_pixels)
    print(f"SavedModel: {exported}")
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from keras_alexnet.plots import write_report

    for path in write_report(args.run_dir, data_dir=args.data_dir):
        print(path)
    return 0


def _check_flag(check, value: Any, flag: str) -> None:
    """Runs one of `config`'s value checks on a flag's `value`, naming it `flag`."""
    try:
        check(value, flag)
    except ConfigError as error:
        raise UserError(str(error)) from error


def _check_predict(args: argparse.Namespace) -> None:
    if not 1 <= args.top_k <= 10:
        raise UserError(f"--top-k must be in 1..10, got {args.top_k}")
    _check_flag(check_timeout, args.timeout, "--timeout")


def _run_predict(args: argparse.Namespace) -> int:
    from keras_alexnet import serving

    encoded = [_read_image_file(path) for path in args.images]
    if args.server:
        predictions = serving.predict(args.server, args.model_name,
                                      serving.image_bytes_request(encoded), timeout=args.timeout)
    else:
        predictions = _predict_locally(args.model, args.images, encoded)
    if args.json:
        print(json.dumps([{"image": path, "top": [{"class_name": name, "probability": p}
                                                  for name, p in prediction.top_k(args.top_k)]}
                          for path, prediction in zip(args.images, predictions)], indent=2))
    else:
        for path, prediction in zip(args.images, predictions):
            top = ", ".join(f"{name} {p:.3f}" for name, p in prediction.top_k(args.top_k))
            print(f"{path}: {top}")
    return 0


def _read_image_file(path: str) -> bytes:
    """The bytes of an image file, after checking that it is a regular file of at most
    `MAX_IMAGE_FILE_BYTES` (a FIFO, a device or a huge sparse file are never read whole)."""
    from keras_alexnet.serving import check_encoded_image

    too_large = UserError(f"{path} is larger than {MAX_IMAGE_FILE_BYTES // 2 ** 20} MiB, the "
                          f"most an image file may be")
    try:  # without blocking: opening a FIFO would wait for a writer
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb", buffering=0) as file:
            found = os.fstat(file.fileno())
            if not stat.S_ISREG(found.st_mode):
                raise UserError(f"{path} is not a regular file")
            if found.st_size > MAX_IMAGE_FILE_BYTES:
                raise too_large
            data = file.read(MAX_IMAGE_FILE_BYTES + 1)
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from error
    if len(data) > MAX_IMAGE_FILE_BYTES:  # it grew after fstat
        raise too_large
    check_encoded_image(data, path)
    return data


def _predict_locally(model: str, paths: Sequence[str], encoded: Sequence[bytes]):
    import tensorflow as tf

    from keras_alexnet.export import IMAGE_BYTES_SIGNATURE, load_saved_model
    from keras_alexnet.image_bytes import refusal
    from keras_alexnet.serving import predictions_from_outputs

    classify = load_saved_model(model, IMAGE_BYTES_SIGNATURE)
    predictions = []
    for path, data in zip(paths, encoded):  # one at a time, so an error names its file
        try:
            # TF's C++ side logs a failed decode as well ("Local rendezvous is aborting…") on
            # some runs; the Python error below is the one line the user gets.
            with native_stderr_silenced():
                outputs = classify(image_bytes=tf.constant([data]))
            predictions += predictions_from_outputs(outputs)
        except tf.errors.InvalidArgumentError as error:
            reason = refusal(error.message)
            detail = (reason.split("] ", 1)[-1] if reason
                      else "could not be decoded as PNG or JPEG")
            raise ImageError(f"{path} {detail}") from error
    return predictions


def _add_field_flag(parser: argparse.ArgumentParser, field: dataclasses.Field, help_text: str):
    flag = "--" + field.name.replace("_", "-")
    annotation = typing.get_type_hints(TrainConfig)[field.name]
    help_text = f"{help_text} (default: {field.default})"
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=help_text)
        return
    kinds = typing.get_args(annotation) or (annotation,)
    kind = next(k for k in kinds if k is not type(None))
    parser.add_argument(flag, type=value_parser(kind, optional=type(None) in kinds),
                        choices=field.metadata.get("choices"), default=argparse.SUPPRESS,
                        metavar=None if "choices" in field.metadata else kind.__name__.upper(),
                        help=help_text)


def value_parser(kind: type, optional: bool):
    """An argparse `type` that converts to `kind`, and, when `optional`, 'none' to `None`."""
    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        return kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value" messages.
    return parse


def _field_descriptions() -> dict[str, str]:
    """Each field's description from `TrainConfig`'s docstring `Args:` section."""
    args = (TrainConfig.__doc__ or "").split("Args:", 1)[-1].split("Example:", 1)[0]
    found = re.findall(r"^\s{8}(\w+): (.*?)(?=^\s{8}\w+: |\Z)", args, flags=re.M | re.S)
    return {name: " ".join(text.split()).replace("%", "%%") for name, text in found}


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow, where it is installed, with file descriptor 2 sent to /dev/null: on
    any backend, since `keras.utils.set_random_seed` imports it to seed it too. On the
    TensorFlow backend it also finds its devices here (more start-up messages)."""
    with native_stderr_silenced():
        try:
            import tensorflow as tf
        except ImportError:
            return
        if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
            tf.config.list_physical_devices()


def _count(number: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())
