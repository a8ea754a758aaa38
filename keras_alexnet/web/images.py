"""The demo's images: uploads read within the same bounds as `predict`'s files, CIFAR-10 test
images as PNG bytes, and Grad-CAM heat maps laid over an image."""

from __future__ import annotations

import io
import os

import numpy as np

from keras_alexnet.errors import ImageError
from keras_alexnet.serving.classify import read_image_file

OVERLAY_SCALE = 6  # a 32 × 32 view shown at 192 × 192, its pixels kept sharp
HEATMAP_OPACITY = 0.45  # as `plots.paper.grad_cam_figure` lays it


def read_upload(path: str, upload_folder: str) -> tuple[str, bytes]:
    """`(file name, bytes)` of a file Gradio received, read as `predict` reads a file (a regular
    file of at most `MAX_IMAGE_FILE_BYTES`, of a format the model decodes).

    Raises:
        ImageError: `path` is not inside `upload_folder` (Gradio's uploads): no other path is
            ever opened.
        UserError: The file is too large, or not a PNG, JPEG or BMP image.
    """
    name = os.path.basename(path)
    folder = os.path.realpath(upload_folder)
    if os.path.commonpath([os.path.realpath(path), folder]) != folder:
        raise ImageError(f"{name} was not uploaded: only uploaded files are read")
    return name, read_image_file(path, name)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 RGB image encoded as PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def overlay(pixels: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """`pixels` (uint8 `[h, w, 3]`) with a heat map in [0, 1] laid over them in matplotlib's
    `jet` colours, each pixel drawn `OVERLAY_SCALE` times larger."""
    import matplotlib

    colours = matplotlib.colormaps["jet"](heatmap)[..., :3] * 255.0
    blend = (1 - HEATMAP_OPACITY) * pixels.astype(np.float64) + HEATMAP_OPACITY * colours
    image = np.clip(np.round(blend), 0, 255).astype(np.uint8)
    return image.repeat(OVERLAY_SCALE, axis=0).repeat(OVERLAY_SCALE, axis=1)
