"""What a trained network learned, as the paper showed it: conv1's kernels (its Figure 3), the
training images nearest to a test image in fc7's space and the top-5 predictions (its Figure 4),
and where in an image the predicted class was found (Grad-CAM, Selvaraju et al. 2017)."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import keras
import numpy as np

from keras_alexnet.models.preset_mapping import as_one_model

FEATURE_LAYER = "fc7"  # the paper's "last, 4096-dimensional hidden layer"
FEATURE_BATCH = 500


def first_conv_kernels(model: keras.Model) -> np.ndarray:
    """conv1's kernels as `[filters, height, width, 3]` float32, on the standardised input's
    scale (the weights `conv1` multiplies each pixel by)."""
    kernel = keras.ops.convert_to_numpy(as_one_model(model).get_layer("conv1").kernel)
    return np.transpose(kernel, (3, 0, 1, 2)).astype(np.float32)


def layer_features(model: keras.Model, images: np.ndarray, layer: str = FEATURE_LAYER,
                   batch_size: int = FEATURE_BATCH) -> np.ndarray:
    """The outputs of `layer` (after its ReLU) for raw-pixel `images`, `[N, units]` float32."""
    model = as_one_model(model)
    features = keras.Model(model.input, model.get_layer(layer).output)
    return np.asarray(features.predict(images, batch_size=batch_size, verbose=0), np.float32)


def nearest_neighbours(queries: np.ndarray, candidates: np.ndarray, k: int = 6) -> np.ndarray:
    """For each query vector, the indices of the `k` candidates at the smallest Euclidean
    distance, nearest first (ties: the lower index), `[Q, k]`.

    Example:

    >>> nearest_neighbours(np.array([[0.0], [5.0]]), np.array([[4.0], [1.0], [9.0]]), k=2)
    array([[1, 0],
           [0, 1]])
    """
    if not 1 <= k <= len(candidates):
        raise ValueError(f"k must be in 1..{len(candidates)}, got {k}")
    queries = np.asarray(queries, np.float64)
    candidates = np.asarray(candidates, np.float64)
    # |q - c|² = |q|² - 2 q·c + |c|²; |q|² is the same for every candidate of a query.
    distances = (candidates * candidates).sum(axis=1)[None, :] - 2.0 * queries @ candidates.T
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
    order = np.lexsort((nearest, np.take_along_axis(distances, nearest, axis=1)), axis=1)
    return np.take_along_axis(nearest, order, axis=1)


def top_k(probabilities: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The `k` most probable classes of each row, most probable first: `(class_ids,
    probabilities)`, each `[N, k]`."""
    ids = np.argsort(-np.asarray(probabilities), axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(np.asarray(probabilities), ids, axis=1)


@dataclasses.dataclass(frozen=True)
class GradCam:
    """A Grad-CAM heat map and what it was computed from.

    Attributes:
        heatmap: `[height, width]` in [0, 1], the image's size: where the class was found.
        class_id: The class explained.
        channel_weights: One weight per feature map of the last convolution: the mean over its
            positions of the class logit's gradient.
        feature_maps: The last convolution's maps (after ReLU) `[h, w, channels]`.
    """

    heatmap: np.ndarray
    class_id: int
    channel_weights: np.ndarray
    feature_maps: np.ndarray


def grad_cam(model: keras.Model, image: np.ndarray, class_id: Optional[int] = None) -> GradCam:
    """Grad-CAM of one raw-pixel image for `class_id` (default: the predicted class), on the
    maps the last convolution block gives its max-pooling (`conv5_pool`'s input).

    Example:

    >>> model = keras_alexnet.AlexNetImageClassifier.from_preset("alexnet_fast_cifar10")
    >>> cam = grad_cam(model, np.zeros((32, 32, 3), "uint8"), class_id=3)
    >>> cam.heatmap.shape, cam.class_id, cam.channel_weights.shape
    ((32, 32), 3, (128,))
    """
    model = as_one_model(model)
    maps_tensor = model.get_layer("conv5_pool").input
    features = keras.Model(model.input, maps_tensor)
    head = keras.Model(maps_tensor, model.output)
    maps = keras.ops.convert_to_numpy(features(image[None].astype(np.float32), training=False))
    if class_id is None:
        logits = keras.ops.convert_to_numpy(head(maps, training=False))
        class_id = int(np.argmax(logits[0]))
    gradient = _gradient(lambda x: head(x, training=False)[:, class_id], maps)[0]
    weights = gradient.mean(axis=(0, 1))
    cam = np.maximum((maps[0] * weights).sum(axis=-1), 0.0)
    heatmap = keras.ops.convert_to_numpy(keras.ops.image.resize(
        cam[None, :, :, None], image.shape[:2], interpolation="bilinear"))[0, :, :, 0]
    heatmap = np.clip(heatmap, 0.0, None)
    heatmap = heatmap / heatmap.max() if heatmap.max() > 0 else heatmap
    return GradCam(heatmap.astype(np.float32), class_id, weights.astype(np.float32), maps[0])


def _gradient(function: Callable, x: np.ndarray) -> np.ndarray:
    """The gradient of `function(x).sum()` at `x`, on the Keras backend in use."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(function(x))
        return tape.gradient(total, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: function(v).sum())(x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        function(x).sum().backward()
        return x.grad.numpy()
    raise NotImplementedError(f"Grad-CAM needs gradients, which the {backend} backend lacks")
