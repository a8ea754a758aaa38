"""The public names: a short top level, `keras_alexnet.models` and `keras_alexnet.layers`, the
names of earlier releases still importable, and all of it importable without Keras until used."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

import keras_alexnet

TOP_LEVEL = ["AlexNetBackbone", "AlexNetImageClassifier", "AlexNetImageClassifierPreprocessor",
             "KerasAlexNetError", "TrainConfig", "TrainResult", "evaluate", "export", "layers",
             "models", "recipes", "train"]
EARLIER_NAMES = {  # name → the module that defines it
    "AlexNet": "keras_alexnet.models.alexnet", "PaperAlexNet": "keras_alexnet.models.paper_alexnet",
    "Cutout": "keras_alexnet.data.augment", "RandomPadCrop": "keras_alexnet.data.augment",
    "PCAColorJitter": "keras_alexnet.data.augment",
    "RandomHorizontalFlip": "keras_alexnet.data.augment",
    "LocalResponseNormalization": "keras_alexnet.models.layers",
    "build_model": "keras_alexnet.models.build", "load_preset": "keras_alexnet.models.build",
    "TorchSGD": "keras_alexnet.training.optimizer",
    "save_to_preset": "keras_alexnet.serving.presets",
    "export_onnx": "keras_alexnet.serving.onnx_export", "ModelError": "keras_alexnet.errors",
}


def test_the_top_level_lists_what_a_user_needs_first():
    assert dir(keras_alexnet) == TOP_LEVEL
    for name in TOP_LEVEL:
        assert getattr(keras_alexnet, name) is not None


def test_the_names_of_earlier_releases_still_import_from_the_top_level():
    import importlib

    for name, module in EARLIER_NAMES.items():
        assert getattr(keras_alexnet, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'AlexNetHead'"):
        keras_alexnet.AlexNetHead  # noqa: B018


def test_models_and_layers_hold_the_classes_by_their_keras_names():
    from keras_alexnet.data import augment
    from keras_alexnet.models.image_classifier import AlexNetImageClassifier
    from keras_alexnet.models.layers import LocalResponseNormalization

    assert keras_alexnet.models.AlexNetImageClassifier is AlexNetImageClassifier
    assert keras_alexnet.AlexNetImageClassifier is AlexNetImageClassifier
    assert keras_alexnet.layers.Cutout is augment.Cutout
    assert keras_alexnet.layers.LocalResponseNormalization is LocalResponseNormalization
    assert "AlexNet" not in dir(keras_alexnet.models)  # deprecated: importable, not listed
    assert "RandomHorizontalFlip" not in dir(keras_alexnet.layers)


def test_importing_the_package_and_its_namespaces_imports_no_keras():
    code = ("import sys, json, keras_alexnet, keras_alexnet.models, keras_alexnet.layers; "
            "print(json.dumps(sorted(m for m in ('keras', 'tensorflow', 'jax') "
            "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO}, check=True, timeout=120)
    assert json.loads(done.stdout.splitlines()[-1]) == []
