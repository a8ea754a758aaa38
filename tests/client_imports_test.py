"""The serving clients (REST and gRPC) import without Keras, TensorFlow or JAX."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("keras", "tensorflow", "jax")


def modules_after_import(module: str) -> list[str]:
    """The heavy top-level modules in `sys.modules` of a fresh interpreter that imported
    `module` and nothing else."""
    code = (f"import sys, json, {module}; "
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO}, check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["keras_alexnet.serving.client",
                                    "keras_alexnet.serving.grpc_client"])
def test_client_imports_no_keras_tensorflow_or_jax(module):
    assert modules_after_import(module) == []


def test_the_check_sees_keras_when_a_module_imports_it():
    # the check itself: a module that imports Keras is reported
    assert "keras" in modules_after_import("keras_alexnet.serving.export")
