import keras
import numpy as np
import pytest

from keras_alexnet.model import AlexNet, build_model

PARAMETRIC = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
FAN_IN = {"conv1": 27, "conv2": 576, "conv3": 1728, "conv4": 3456, "conv5": 2304,
          "fc6": 1024, "fc7": 4096, "fc8": 4096}


@pytest.fixture(scope="module")
def model():
    return build_model(seed=0)


def test_parameter_count_and_layer_names(model):
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == 23_272_266
    names = [layer.name for layer in model.layers if layer.trainable_weights]
    assert names == list(PARAMETRIC)
    assert model.get_layer("flatten").output.shape == (None, 1024)
    assert model.output.shape == (None, 10)


def test_feature_map_sizes(model):
    sizes = {name: model.get_layer(name).output.shape[1:] for name in PARAMETRIC[:5]}
    assert sizes == {"conv1": (16, 16, 64), "conv2": (8, 8, 192), "conv3": (4, 4, 384),
                     "conv4": (4, 4, 256), "conv5": (4, 4, 256)}


def test_conv1_pads_like_pytorch(model):
    """conv1 (3×3, stride 2, padding 1 on every side) against a NumPy convolution."""
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    conv1 = keras.Model(model.input, model.get_layer("conv1").output)
    got = keras.ops.convert_to_numpy(conv1(image))[0]
    mean, std = np.array(model.mean), np.array(model.std)
    padded = np.pad((image[0] - mean) / std, ((1, 1), (1, 1), (0, 0)))
    kernel, bias = [keras.ops.convert_to_numpy(w) for w in model.get_layer("conv1").weights]
    expected = np.zeros((16, 16, 64))
    for i in range(16):
        for j in range(16):
            patch = padded[2 * i:2 * i + 3, 2 * j:2 * j + 3, :]
            expected[i, j] = np.tensordot(patch, kernel, axes=3) + bias
    np.testing.assert_allclose(got, np.maximum(expected, 0), rtol=1e-4, atol=1e-4)


def test_raw_uint8_pixels_give_the_same_logits_as_float(model):
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               model.predict(images.astype(np.float32), verbose=0), rtol=1e-6)


def test_inference_is_deterministic_and_training_uses_dropout(model):
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    first = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_array_equal(first, keras.ops.convert_to_numpy(model(images, training=False)))
    assert not np.allclose(first, keras.ops.convert_to_numpy(model(images, training=True)))


def test_torch_init_is_uniform_within_one_over_sqrt_fan_in(model):
    for name in PARAMETRIC:
        bound = 1 / np.sqrt(FAN_IN[name])
        kernel, bias = [keras.ops.convert_to_numpy(w) for w in model.get_layer(name).weights]
        for values in (kernel, bias):
            assert np.abs(values).max() <= bound * (1 + 1e-6)
        # U(−b, b) has standard deviation b/√3 and a maximum close to b.
        assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
        assert np.abs(kernel).max() > 0.95 * bound
        assert np.abs(kernel.mean()) < 0.05 * bound


def test_paper_init_is_gaussian_with_biases_one_where_the_paper_says():
    paper = build_model(init="paper", seed=0)
    for name in PARAMETRIC:
        kernel, bias = [keras.ops.convert_to_numpy(w) for w in paper.get_layer(name).weights]
        assert kernel.std() == pytest.approx(0.01, rel=0.05)
        assert abs(kernel.mean()) < 0.002
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(bias, expected_bias)


def test_normalizes_by_the_given_channel_statistics():
    model = build_model(mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0), seed=0)
    normalize = keras.Model(model.input, model.get_layer("normalize").output)
    image = np.full((1, 32, 32, 3), 40.0, np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(normalize(image))[0, 0, 0], [15, 5, 2],
                               rtol=1e-5)


def test_seeded_models_are_identical_and_seeds_differ():
    first, second, other = build_model(seed=3), build_model(seed=3), build_model(seed=4)
    w1, w2, w3 = (keras.ops.convert_to_numpy(m.get_layer("fc7").kernel) for m in (first, second, other))
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)


def test_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(seed=0)
        assert model.get_layer("conv2").compute_dtype == "bfloat16"
        logits = model(np.zeros((2, 32, 32, 3), np.float32), training=False)
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_config_and_keras_file_round_trip(model, tmp_path):
    config = model.get_config()
    assert set(config) >= {"num_classes", "init", "dropout", "mean", "std", "seed", "name"}
    rebuilt = AlexNet.from_config(config)
    assert rebuilt.get_config() == config
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="init must be"):
        build_model(init="xavier")
