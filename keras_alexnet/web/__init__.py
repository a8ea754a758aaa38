"""The browser demo of a trained model (Gradio, the `demo` extra): `keras-alexnet demo` and
`keras_alexnet.demo(...)` (this package's `demo`), which returns the page so that a notebook
shows it inline.

The page classifies uploads and CIFAR-10 test images with the probabilities `predict` gives,
explains them with Grad-CAM, and shows the model's card and the paper's pictures; with a TF
Serving server it sends the images there instead. Uploads are read within `predict`'s bounds
(`MAX_IMAGE_FILE_BYTES` a file, the export's pixel limits); only Gradio's own uploads are read,
and nothing is written outside temporary directories.

Example:

>>> from keras_alexnet.web import launch
>>> app = keras_alexnet.demo("alexnet_fast_cifar10", data_dir="cifar-10-batches-py")
>>> launch(app)  # http://127.0.0.1:7860; launch(app, inline=True) in a notebook
"""

from __future__ import annotations

import os
from typing import Optional

from keras_alexnet.data.cifar10 import DATA_ENV_VAR
from keras_alexnet.errors import ConfigError
from keras_alexnet.serving.image_bytes import MAX_IMAGE_FILE_BYTES

INSTALL = "the demo needs Gradio: pip install 'keras_alexnet[demo]'"
LOOPBACK = "127.0.0.1"


def demo(model: Optional[str] = None, server: Optional[str] = None,
         model_name: str = "alexnet_cifar10", data_dir: Optional[str] = None,
         timeout: float = 10.0):
    """The demo's page, a `gradio.Blocks` (launch it with `launch`, or show it in a notebook).

    Args:
        model: A preset, a run directory or a `.keras` file (default: the shipped preset
            `predict` uses); not with `server`.
        server: A TF Serving REST base URL (e.g. `http://localhost:8501`): the page sends the
            images there, through the package's client.
        model_name: The model's name on `server`.
        data_dir: A CIFAR-10 copy for the gallery and the nearest neighbours (default:
            `$KERAS_ALEXNET_DATA`; without one, uploads only).
        timeout: Seconds each request to `server` may take.

    Raises:
        ConfigError: Gradio is not installed, or both `model` and `server` are given.
        ModelError: No readable model at `model`.
        DataError: `data_dir` is not a CIFAR-10 copy.
    """
    gradio = _gradio()
    from keras_alexnet.web.page import NO_DATA, build_page

    if model is not None and server is not None:
        raise ConfigError("give a model or a server, not both")
    data_dir = data_dir or os.environ.get(DATA_ENV_VAR) or None
    gallery = _gallery(data_dir)
    classifier = _classifier(model, server, model_name, timeout)
    return build_page(classifier, gallery, NO_DATA, gradio.utils.get_upload_folder(), data_dir)


def launch(app, host: str = LOOPBACK, port: Optional[int] = None, **options):
    """Starts serving `app` at `host:port` (loopback unless told; a free port from 7860 when
    `port` is `None`) without blocking, refusing uploads over `MAX_IMAGE_FILE_BYTES`; returns
    what `Blocks.launch` returns. `options` go to `Blocks.launch` (e.g. `inline=True`)."""
    return app.launch(server_name=host, server_port=port, prevent_thread_lock=True,
                      max_file_size=MAX_IMAGE_FILE_BYTES, show_error=True, quiet=True, **options)


def _gradio():
    """Gradio, or `ConfigError` saying what to install."""
    try:
        import gradio
    except ImportError as error:
        raise ConfigError(INSTALL) from error
    return gradio


def _classifier(model: Optional[str], server: Optional[str], model_name: str, timeout: float):
    from keras_alexnet.web.classifier import LocalClassifier, ServerClassifier

    if server is not None:
        return ServerClassifier(server, model_name, timeout)
    return LocalClassifier(model)


def _gallery(data_dir: Optional[str]):
    """CIFAR-10's first test images and labels from `data_dir`, or `None` without one."""
    if data_dir is None:
        return None
    from keras_alexnet.data.cifar10 import load_cifar10
    from keras_alexnet.web.page import GALLERY_IMAGES

    data = load_cifar10(data_dir)
    return data.x_test[:GALLERY_IMAGES].copy(), data.y_test[:GALLERY_IMAGES].copy()


__all__ = ["INSTALL", "LOOPBACK", "demo", "launch"]
