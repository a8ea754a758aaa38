"""Every example in the package's docstrings runs and shows what it says, except the few that
need what a test machine lacks (named below, with why)."""

import doctest
import importlib
import os
import pkgutil

import keras
import numpy as np
import pytest
from conftest import SHARED_CIFAR

import keras_alexnet

# Docstrings whose examples are not run, and why.
NOT_RUN = {
    "keras_alexnet": "trains for minutes",
    "keras_alexnet.training.recipe.train": "trains the tweaked recipe for hours",
    "keras_alexnet.data.device_pipeline.DeviceAugmentedModel": "trains 49 epochs",
    "keras_alexnet.evaluation.evaluate.evaluate": "needs an exported model",
    "keras_alexnet.serving.client": "needs a TF Serving server",
    "keras_alexnet.serving.grpc_client": "needs a TF Serving server",
    "keras_alexnet.data.imagenet.load_tfds": "downloads Imagenette",
    "keras_alexnet.data.imagenet.train_dataset": "downloads Imagenette and trains 90 epochs",
    "keras_alexnet.data.imagenet.eval_dataset": "downloads Imagenette",
    "keras_alexnet.serving.presets.save_to_preset": "needs a finished run",
}
# These read a CIFAR-10 copy (CI has one at ../shared/data; a user's machine may not).
NEEDS_SHARED_DATA = {"keras_alexnet.data.cifar10.prepare",
                     "keras_alexnet.data.cifar10.load_cifar10",
                     "keras_alexnet.data.image_sets.load_image_set",
                     "keras_alexnet.plots.report.write_report"}


def docstrings_with_examples():
    found = []
    for module in pkgutil.walk_packages(keras_alexnet.__path__, "keras_alexnet."):
        if not module.name.endswith(".__main__"):  # importing it runs the command
            found += doctest.DocTestFinder().find(importlib.import_module(module.name))
    found += doctest.DocTestFinder().find(keras_alexnet)
    return {test.name: test for test in found if test.examples}


DOCSTRINGS = docstrings_with_examples()


def test_every_docstring_left_unrun_exists_and_most_run():
    assert set(NOT_RUN) | NEEDS_SHARED_DATA <= set(DOCSTRINGS)
    assert len(DOCSTRINGS) - len(NOT_RUN) >= 30


@pytest.mark.parametrize("name", sorted(set(DOCSTRINGS) - set(NOT_RUN)))
def test_the_docstring_examples_run_as_shown(name, tmp_path, monkeypatch):
    if name in NEEDS_SHARED_DATA and not os.path.isdir(SHARED_CIFAR):
        pytest.skip("needs the CIFAR-10 copy at ../shared/data")
    # In a scratch directory that holds the CIFAR-10 copy as `cifar-10-batches-py`, as a user's
    # may: files the examples write (runs/, saved_models/) land there.
    if os.path.isdir(SHARED_CIFAR):
        os.symlink(os.path.abspath(SHARED_CIFAR), tmp_path / "cifar-10-batches-py")
    monkeypatch.chdir(tmp_path)
    test = DOCSTRINGS[name]
    test.globs = {**test.globs, "np": np, "keras": keras, "keras_alexnet": keras_alexnet}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
