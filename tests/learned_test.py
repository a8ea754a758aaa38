"""What a network learned, each computation against one done another way: fc7 features through
fc8's weights in NumPy, conv1's kernels applied by hand, neighbours by brute force, Grad-CAM's
channel weights by finite differences and its heat map upsampled bilinearly in NumPy."""

import os

import numpy as np
import pytest

from keras_alexnet import AlexNet
from keras_alexnet.evaluation.learned import (
    first_conv_kernels,
    grad_cam,
    layer_features,
    nearest_neighbours,
    top_k,
)

IMAGES = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")


@pytest.fixture(scope="module")
def model():
    """A small AlexNet without batch norm (conv1 then has a bias and a ReLU of its own)."""
    return AlexNet(width_multiplier=0.25, dense_units=48, conv1_stride=1, seed=3)


def test_fc7_features_give_the_logits_through_fc8(model):
    features = layer_features(model, IMAGES)
    fc8 = model.get_layer("fc8")
    logits = features @ fc8.kernel.numpy() + fc8.bias.numpy()
    assert features.shape == (8, 48) and (features >= 0).all()  # after fc7's ReLU
    np.testing.assert_allclose(logits, model.predict(IMAGES, verbose=0), rtol=1e-4, atol=1e-4)


def test_conv1_kernels_applied_by_hand_give_conv1s_output(model):
    kernels = first_conv_kernels(model)
    assert kernels.shape == (16, 3, 3, 3)
    mean, std = np.array(model.mean), np.array(model.std)
    padded = np.pad((IMAGES[0].astype(np.float64) - mean) / std, ((1, 1), (1, 1), (0, 0)))
    bias = model.get_layer("conv1").bias.numpy()
    by_hand = np.array([[[max(0.0, (kernels[f] * padded[i:i + 3, j:j + 3]).sum() + bias[f])
                          for f in range(16)] for j in range(32)] for i in range(32)])
    import keras

    conv1 = keras.Model(model.input, model.get_layer("conv1").output)
    np.testing.assert_allclose(conv1.predict(IMAGES[:1], verbose=0)[0], by_hand, atol=1e-3)


def test_nearest_neighbours_are_a_brute_force_search():
    rng = np.random.default_rng(1)
    queries, candidates = rng.normal(size=(7, 20)), rng.normal(size=(300, 20))
    found = nearest_neighbours(queries, candidates, k=6)
    for query, indices in zip(queries, found):
        distances = [np.sqrt(((query - candidate) ** 2).sum()) for candidate in candidates]
        assert list(indices) == sorted(range(300), key=lambda i: distances[i])[:6]
    with pytest.raises(ValueError, match="k must be in 1..300"):
        nearest_neighbours(queries, candidates, k=301)


def test_top_k_orders_the_most_probable_first():
    probabilities = np.array([[0.1, 0.5, 0.05, 0.3, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]])
    ids, values = top_k(probabilities, k=3)
    assert ids.tolist() == [[1, 3, 0], [0, 1, 2]]
    np.testing.assert_array_equal(values, [[0.5, 0.3, 0.1], [0.6, 0.1, 0.1]])


def test_grad_cams_channel_weights_are_the_mean_gradient_by_finite_differences(model):
    import keras

    cam = grad_cam(model, IMAGES[2])
    maps = cam.feature_maps
    head = keras.Model(model.get_layer("conv5_pool").input, model.output)
    # The head is piecewise linear (max-pool, ReLU, dense), so central differences of a small
    # step are its gradient wherever no ReLU or max switches.
    step = 1e-2
    flat = maps.reshape(-1)
    eye = np.eye(flat.size, dtype=np.float32) * step
    plus = head.predict((flat + eye).reshape(-1, *maps.shape), batch_size=512, verbose=0)
    minus = head.predict((flat - eye).reshape(-1, *maps.shape), batch_size=512, verbose=0)
    gradient = ((plus - minus)[:, cam.class_id] / (2 * step)).reshape(maps.shape)
    np.testing.assert_allclose(cam.channel_weights, gradient.mean(axis=(0, 1)), atol=2e-3)
    assert cam.class_id == int(np.argmax(model.predict(IMAGES[2:3], verbose=0)[0]))


def bilinear(image, size):
    """`image` (H, W) resized to (size, size) by bilinear interpolation with half-pixel centres
    (each output pixel's centre mapped back into the input), in NumPy."""

    def along(values, axis):
        length = values.shape[axis]
        source = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0, length - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, length - 1)
        weight = source - low
        shape = [1, 1]
        shape[axis] = size
        weight = weight.reshape(shape)
        return (np.take(values, low, axis) * (1 - weight) + np.take(values, high, axis) * weight)

    return along(along(np.asarray(image, np.float64), 0), 1)


def test_grad_cam_heat_map_is_the_weighted_maps_at_the_images_size(model):
    cam = grad_cam(model, IMAGES[4], class_id=7)
    weighted = (cam.feature_maps * cam.channel_weights).sum(axis=-1)
    assert weighted.min() < 0 < weighted.max()  # so that the ReLU matters
    expected = bilinear(np.maximum(weighted, 0), 32)
    assert cam.class_id == 7 and cam.heatmap.shape == (32, 32)
    np.testing.assert_allclose(cam.heatmap, expected / expected.max(), atol=1e-5)


@pytest.mark.slow
def test_grad_cam_on_jax_gives_the_tensorflow_backends_answer(model, tmp_path):
    """The gradient is taken by each backend's own autodiff; both must agree."""
    import json
    import subprocess
    import sys

    pytest.importorskip("jax")
    model.save_to_preset(str(tmp_path / "preset"))
    np.save(tmp_path / "image.npy", IMAGES[5])
    script = (
        "import json, sys, numpy as np, keras_alexnet\n"
        "from keras_alexnet.evaluation.learned import grad_cam\n"
        "cam = grad_cam(keras_alexnet.AlexNet.from_preset(sys.argv[1]), np.load(sys.argv[2]))\n"
        "print(json.dumps({'class_id': cam.class_id,"
        " 'weights': cam.channel_weights.tolist(), 'heatmap': cam.heatmap.tolist()}))\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "preset"),
                             str(tmp_path / "image.npy")], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    on_jax = json.loads(result.stdout.strip().splitlines()[-1])
    here = grad_cam(model, IMAGES[5])
    assert on_jax["class_id"] == here.class_id
    np.testing.assert_allclose(on_jax["weights"], here.channel_weights, atol=1e-4)
    np.testing.assert_allclose(on_jax["heatmap"], here.heatmap, atol=1e-3)
