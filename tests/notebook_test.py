"""CI runs the Colab notebook top to bottom, small, so it cannot rot.

nbclient executes it: it is the library Jupyter itself runs notebooks with, needs no command-line
wrapper, and lets the test override the notebook's one parameters cell in place.
"""

import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

# Every test here trains or starts processes; every stack CI tests runs them.
pytestmark = [pytest.mark.slow, pytest.mark.large, pytest.mark.stack]

NOTEBOOK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "colab",
                        "keras_alexnet.ipynb")


def test_committed_notebook_has_no_outputs_and_one_parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


@pytest.fixture(scope="module")
def preset_accuracy(e2e_data_dir):
    """The long preset's flip test accuracy on the test set the notebook is given, measured here
    once for both backends' runs."""
    from keras_alexnet import AlexNet, evaluate

    preset = AlexNet.from_preset("alexnet_long_cifar10")
    return evaluate(preset, data_dir=e2e_data_dir, test_time_augmentation="flip")["test_accuracy"]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_notebook_runs_small_on_cpu(e2e_data_dir, preset_accuracy, tmp_path, monkeypatch,
                                    backend):
    """On TensorFlow (the notebook's choice without a GPU) and on JAX (its choice on a GPU, which
    it makes by setting `KERAS_BACKEND` before Keras starts, as the kernel's environment does
    here)."""
    monkeypatch.setenv("KERAS_BACKEND", backend)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source += (
        "\n# CI: one small epoch\n"
        f"EPOCHS = 1\nTRAIN_SUBSET = 300\nVALIDATION_SIZE = 500\nDATA_DIR = {e2e_data_dir!r}\n"
        f"OUTPUT_DIR = {str(tmp_path / 'run')!r}\nSAVED_MODELS_DIR = {str(tmp_path / 'saved')!r}\n")
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # The preset's confusion matrix and four pictures; the run's Figures 1–4 and confusion matrix
    assert len(images) >= 10
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Not in Colab" in text and "test accuracy" in text and "exported to" in text
    assert f"Keras backend: {backend}" in text
    # It opens with the shipped preset, measured on the test set it was given.
    assert f"alexnet_long_cifar10: test accuracy {preset_accuracy:.2%}" in text
    with open(tmp_path / "run" / "metrics.json") as file:
        metrics = json.load(file)
    assert metrics["epochs_completed"] == 1
    assert metrics["performance"]["augmentation"] == {"jax": "device", "tensorflow": "pipeline"}[
        backend]
    assert f"test accuracy {metrics['test_accuracy']:.2%}" in text  # the notebook reports the run's
    assert f"exported to {tmp_path / 'saved' / 'alexnet_cifar10' / '1'}" in text
