"""`keras-alexnet predict`: what it checks before anything is imported or read, and then does:
classify image files with a local SavedModel, a preset, or a TF Serving server."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

from keras_alexnet.cli.commands import (
    UserError,
    check_flag,
    check_server_url,
    stopped_by_signals,
)
from keras_alexnet.cli.flags import PROG
from keras_alexnet.config import check_timeout
from keras_alexnet.data.cifar10 import CLASS_NAMES
from keras_alexnet.models.catalogue import DEFAULT_PRESET, shipped_presets
from keras_alexnet.run_dir import read_class_names
from keras_alexnet.serving.classify import classify_locally, classify_on_server, read_image_file


def check_predict(args: argparse.Namespace) -> None:
    """Checks the flags and reads `--class-names` (into `args.names`, `None` without it)."""
    if not 1 <= args.top_k <= 10:
        raise UserError(f"--top-k must be in 1..10, got {args.top_k}")
    check_flag(check_timeout, args.timeout, "--timeout")
    if args.server is not None:
        check_server_url(args.server)
    args.names = (None if args.class_names is None
                  else read_class_names(args.class_names, f"--class-names {args.class_names}"))


def run_predict(args: argparse.Namespace) -> int:
    """Classifies the images one file at a time, printing each answer as it comes: memory stays
    that of one image, however many files are given."""
    with stopped_by_signals("while classifying"):
        return _predict(args)


def _predict(args: argparse.Namespace) -> int:
    if args.server:
        names = args.names or CLASS_NAMES
        classify = classify_on_server(args.server, args.model_name, args.timeout, len(names))
    else:
        from keras_alexnet.serving.export import saved_model_class_names

        model = local_saved_model(args.model)
        names = saved_model_class_names(model)
        if args.names is not None:
            if len(args.names) != len(names):
                raise UserError(f"--class-names {args.class_names} names {len(args.names)} "
                                f"classes; the model {model} has {len(names)}")
            names = args.names
        classify = classify_locally(model, len(names))
    results = []
    for path in args.images:
        top = classify(path, read_image_file(path)).top_k(args.top_k, names)
        if args.json:
            results.append({"image": path, "top": [{"class_name": name, "probability": p}
                                                   for name, p in top]})
        else:
            print(f"{path}: {', '.join(f'{name} {p:.3f}' for name, p in top)}", flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def local_saved_model(model: Optional[str]) -> str:
    """The SavedModel `predict` runs: `--model`'s, a preset's (exported once, then cached), or
    without `--model` the default shipped preset's, said on stderr."""
    if model is None:
        accuracy = shipped_presets()[DEFAULT_PRESET]["test_accuracy"]
        print(f"{PROG}: no --model: using the shipped preset {DEFAULT_PRESET} ({accuracy:.2%} "
              f"on CIFAR-10's test images)", file=sys.stderr)
        model = DEFAULT_PRESET
    from keras_alexnet.serving.presets import saved_model_of

    return saved_model_of(model)
