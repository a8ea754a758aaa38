"""The `keras-alexnet` command: `train` (every `TrainConfig` field is a flag), `evaluate`, `export`,
`report`, `predict`, `demo`.

Errors in what the user gave (a bad flag or value, missing or corrupt data, a missing model) end
with one `keras-alexnet: error: …` line and exit status 2, before anything is written; a run
whose loss diverged ends with such a line and status 3, one stopped by SIGTERM or SIGINT with a
line saying how to resume and status 75 or 130, a process of a multi-host run whose peer stopped
with such a line and status 75 (at once: JAX's own exit would wait for the lost peer). The parser
is built here; `flags` turns `TrainConfig`'s fields into `train` flags and `commands` holds what
each command checks and does.
TensorFlow's C++ start-up messages (oneDNN, CUDA probing), which no environment variable silences
in TF 2.21, are dropped while it is imported; Python warnings and errors still show.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from typing import Optional, Sequence

from keras_alexnet.cli.commands import (
    UserError,
    check_evaluate,
    check_export,
    check_train,
    run_evaluate,
    run_export,
    run_report,
    run_train,
)
from keras_alexnet.cli.demo import check_demo, run_demo
from keras_alexnet.cli.flags import (
    PROG,
    add_field_flag,
    choice_parser,
    field_descriptions,
    shown,
    value_parser,
)
from keras_alexnet.cli.predict import check_predict, run_predict
from keras_alexnet.cli.watcher import needs_watcher, run_watched
from keras_alexnet.config import (
    EXPORT_FORMATS,
    QUANTIZATIONS,
    RECIPES,
    TEST_TIME_AUGMENTATIONS,
    TrainConfig,
)
from keras_alexnet.errors import KerasAlexNetError, PeerLost, TrainingStopped, disk_full_reason
from keras_alexnet.evaluation.test_time import MAX_TEN_CROP_PAD
from keras_alexnet.models.catalogue import DEFAULT_PRESET, shipped_presets
from keras_alexnet.serving.image_bytes import DEFAULT_MAX_PIXELS, DEFAULT_MAX_REQUEST_PIXELS
from keras_alexnet.utils.native_stderr import native_stderr_silenced

# What tests and scripts use of the command line besides `main`.
__all__ = ["PROG", "UserError", "build_parser", "choice_parser", "main", "shown", "value_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(message)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _log_to_stderr()
    try:
        args = build_parser().parse_args(argv)
        args.check(args)  # every flag, before TensorFlow or JAX is imported
        if args.command == "train" and needs_watcher():  # another process of a multi-host run
            return run_watched(sys.argv[1:] if argv is None else list(argv))
        if args.command in ("export", "predict", "demo") and "keras" not in sys.modules:
            # A SavedModel of plain TensorFlow ops (what TF Serving runs, and `predict` with a
            # preset exports once) comes from the TensorFlow backend, whatever backend trained
            # the weights.
            os.environ["KERAS_BACKEND"] = "tensorflow"
        _import_tensorflow_quietly()
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except TrainingStopped as stopped:
        print(f"{PROG}: {stopped}", file=sys.stderr)
        return stopped.exit_status
    except PeerLost as lost:  # at exit JAX would wait for the lost process, then abort
        print(f"{PROG}: error: {_one_line(lost)}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(lost.exit_status)
    except KerasAlexNetError as error:  # the user's input; anything else is a bug and raises
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_status
    except Exception as error:
        reason = disk_full_reason(error)
        if reason is None:
            raise
        print(f"{PROG}: error: cannot write ({reason}): every file written before is whole and "
              f"nothing was left half-written; free some space and run again (training resumes "
              f"from its last backup)", file=sys.stderr)
        return 2


def _log_to_stderr() -> None:
    """Shows the package's log messages (INFO and above) on stderr as `keras-alexnet: …`
    lines."""
    logger = logging.getLogger("keras_alexnet")
    if not any(getattr(handler, "is_cli_handler", False) for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
        handler.is_cli_handler = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG,
                     description="Train, evaluate and export the seed's CIFAR-10 AlexNet.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train", help="train with the seed recipe or another recipe (flags override it)",
        description="Train AlexNet on CIFAR-10. Defaults are the seed recipe.")
    train.add_argument("--recipe", choices=list(RECIPES), default=None,
                       help="start from a named recipe; other flags override its values: "
                            + "; ".join(f"{name}: {recipe.description}"
                                        for name, recipe in RECIPES.items())
                            .replace("%", "%%"))
    train.add_argument("--preset", choices=list(RECIPES), default=None,
                       help="deprecated spelling of --recipe")
    descriptions = field_descriptions()
    for field in dataclasses.fields(TrainConfig):
        add_field_flag(train, field, descriptions.get(field.name, ""))
    train.add_argument("--resume", metavar="RUN_DIR", default=None,
                       help="continue an interrupted run from its last backup, with the "
                            "config.json it was started with (no other flags)")
    train.set_defaults(run=run_train, check=check_train)

    evaluate = commands.add_parser("evaluate", help="test accuracy of a checkpoint or SavedModel")
    evaluate.add_argument("model", metavar="MODEL",
                          help="a .keras checkpoint, a SavedModel version directory, a model "
                               "directory (its newest version is used), or a preset "
                               f"({', '.join(shipped_presets())}, or a preset directory)")
    evaluate.add_argument("--data-dir", default=None,
                          help="local CIFAR-10 copy (default: $KERAS_ALEXNET_DATA, else "
                               "tensorflow-datasets)")
    evaluate.add_argument("--batch-size", type=int, default=500,
                          help="test images per batch (default: %(default)s)")
    evaluate.add_argument("--ten-crop", action="store_true",
                          help="deprecated: --test-time-augmentation ten_crop")
    evaluate.add_argument("--ten-crop-pad", type=int, default=4,
                          help=f"padding per side before the ten 32×32 crops, 0 to "
                               f"{MAX_TEN_CROP_PAD} (default: %(default)s)")
    evaluate.add_argument("--test-time-augmentation", "--tta", choices=TEST_TIME_AUGMENTATIONS,
                          default="none",
                          help="flip: average each image's and its mirror image's probabilities; "
                               "ten_crop: the paper's ten crops (corners, centre, mirrored) of "
                               "each image zero-padded by --ten-crop-pad (default: %(default)s)")
    evaluate.add_argument("--json", action="store_true", help="print all metrics as JSON")
    evaluate.set_defaults(run=run_evaluate, check=check_evaluate)

    export = commands.add_parser("export", help="export a trained model as a SavedModel for TF "
                                                "Serving, a LiteRT file or an ONNX file")
    export.add_argument("model", metavar="MODEL",
                        help="the trained model: a .keras file, a run directory (its best.keras) "
                             f"or a preset ({', '.join(shipped_presets())}, or a preset "
                             "directory)")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="savedmodel",
                        help="savedmodel: SAVED_MODELS_DIR/MODEL_NAME/<version>/ for TF Serving; "
                             "litert, onnx: one file taking serving_default's uint8 pixels and "
                             "giving its probabilities (default: %(default)s)")
    export.add_argument("--quantize", choices=QUANTIZATIONS,
                        help="litert only: int8 weights and activations, calibrated on 200 "
                             "CIFAR-10 training images")
    export.add_argument("--output", metavar="FILE",
                        help="the LiteRT or ONNX file (default: "
                             "SAVED_MODELS_DIR/MODEL_NAME[_int8].tflite or .onnx)")
    export.add_argument("--data-dir",
                        help="a local CIFAR-10 copy for --quantize's calibration images "
                             "(default: tensorflow-datasets)")
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
    export.set_defaults(run=run_export, check=check_export)

    report = commands.add_parser("report", help="draw the figures of a finished run, a model or "
                                                "a preset")
    report.add_argument("source", metavar="RUN_DIR|MODEL",
                        help="a train() output directory (the seed's figures, and the paper's "
                             "pictures of what its best.keras learned), or a .keras model or "
                             "preset (the paper's pictures only)")
    report.add_argument("--data-dir", default=None,
                        help="the data's directory (default: the run's own, else "
                             "tensorflow-datasets' CIFAR-10)")
    report.add_argument("--output-dir", default=None,
                        help="where the figures go (default: the run directory; report for a "
                             "model or preset)")
    report.set_defaults(run=run_report, check=lambda args: None)

    predict = commands.add_parser("predict",
                                  help="classify PNG, JPEG or BMP files with a SavedModel or TF "
                                       "Serving")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="PNG, JPEG or BMP files, any size")
    predict.add_argument("--model", default=None,
                         help="local SavedModel (a model directory, whose newest version is "
                              "used, or a version directory) or a preset (default: the shipped "
                              f"preset {DEFAULT_PRESET})")
    predict.add_argument("--server", default=None,
                         help="TF Serving REST base URL (e.g. http://localhost:8501) instead "
                              "of --model")
    predict.add_argument("--model-name", default="alexnet_cifar10",
                         help="model name on the server (default: %(default)s)")
    predict.add_argument("--top-k", type=int, default=1, help="classes to show per image")
    predict.add_argument("--class-names", default=None, metavar="FILE",
                         help="the model's class names, one a line, to name the --top-k classes "
                              "(default: a local --model's own; CIFAR-10's for --server)")
    predict.add_argument("--timeout", type=float, default=10.0,
                         help="seconds each request to the server (one an image) may take "
                              "(default: %(default)s)")
    predict.add_argument("--json", action="store_true", help="print the results as JSON")
    predict.set_defaults(run=run_predict, check=check_predict)

    demo = commands.add_parser("demo", help="a browser page that classifies uploaded images, with "
                                            "Grad-CAM, the model's card and its pictures "
                                            "(needs keras_alexnet[demo])")
    demo.add_argument("--model", default=None, metavar="PRESET|RUN_DIR|FILE.keras",
                      help=f"the model (default: the shipped preset {DEFAULT_PRESET})")
    demo.add_argument("--server", default=None,
                      help="TF Serving REST base URL (e.g. http://localhost:8501): the page sends "
                           "the images there instead of --model")
    demo.add_argument("--model-name", default="alexnet_cifar10",
                      help="model name on the server (default: %(default)s)")
    demo.add_argument("--data-dir", default=None,
                      help="local CIFAR-10 copy for the gallery of test images and the nearest "
                           "neighbours (default: $KERAS_ALEXNET_DATA; without one, uploads only)")
    demo.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default: %(default)s, this machine only)")
    demo.add_argument("--port", type=int, default=None,
                      help="port (default: the first free one from 7860)")
    demo.add_argument("--timeout", type=float, default=10.0,
                      help="seconds each request to the server may take (default: %(default)s)")
    demo.set_defaults(run=run_demo, check=check_demo)
    return parser


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


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__
