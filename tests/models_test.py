import inspect

import keras
import numpy as np
import pytest

from keras_alexnet.models.alexnet import AlexNet, conv_filters
from keras_alexnet.models.build import build_model
from keras_alexnet.models.layers import LocalResponseNormalization
from keras_alexnet.models.paper_alexnet import PaperAlexNet

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


def test_initial_weights_are_independent_across_seeds_and_layers():
    """Each weight of each seed is its own random stream: the first values of any two of the
    32 kernels of seeds 0-3 (drawn in C order) are uncorrelated, whatever their scales."""
    draws = {}
    for seed in range(4):
        model = build_model(seed=seed)
        for name in PARAMETRIC:
            kernel = model.get_layer(name).kernel.numpy().ravel()
            draws[seed, name] = kernel / np.abs(kernel).max()
    length = min(len(values) for values in draws.values())  # conv1: 1,728 values
    stacked = np.stack([values[:length] for values in draws.values()])
    correlations = np.abs(np.corrcoef(stacked)[np.triu_indices(len(stacked), k=1)])
    # independent draws: |r| ~ 1/sqrt(1728) = 0.024 each; a shared stream would give 1.0
    assert correlations.max() < 0.15, correlations.max()


def test_seeded_models_are_identical_and_seeds_differ():
    first, second, other = build_model(seed=3), build_model(seed=3), build_model(seed=4)
    w1, w2, w3 = (keras.ops.convert_to_numpy(m.get_layer("fc7").kernel)
                  for m in (first, second, other))
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


# Every constructor argument away from its default, so that one a config lost would show.
CIFAR_ARGS = {"num_classes": 7, "init": "paper", "dropout": 0.25, "mean": [10.0, 20.0, 30.0],
              "std": [2.0, 4.0, 5.0], "seed": 5, "conv1_stride": 1, "batch_norm": True,
              "width_multiplier": 0.5, "dense_units": 64, "name": "my_alexnet"}
PAPER_ARGS = {"num_classes": 5, "input_shape": [67, 67, 3], "groups": 1, "lrn": False,
              "init": "torch", "dropout": 0.25, "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.6, 0.7],
              "seed": 6, "name": "my_paper_alexnet"}
NETWORKS = [(AlexNet, CIFAR_ARGS), (PaperAlexNet, PAPER_ARGS)]


def perturbed(model, seed=1):
    """`model` with every float weight moved by noise: it then differs from a fresh build of its
    own config (the same seed), so a reload that loaded no weights shows."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "float" in variable.dtype:
            value = keras.ops.convert_to_numpy(variable)
            noise = rng.normal(scale=0.1 * (value.std() + 1e-3), size=value.shape)
            variable.assign((value + noise).astype(value.dtype))
    return model


def layer_summary(model):
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape),
             getattr(layer, "rate", None)) for layer in model.layers]


@pytest.mark.parametrize("network, args", NETWORKS)
def test_get_config_holds_every_constructor_argument_as_given(network, args):
    model = network(**args)
    config = model.get_config()
    assert set(inspect.signature(network).parameters) - {"kwargs"} <= set(config)  # dtype too
    assert {name: config[name] for name in args} == args
    assert layer_summary(network.from_config(config)) == layer_summary(model)


@pytest.mark.parametrize("network, args", NETWORKS)
def test_config_and_keras_file_round_trip(network, args, tmp_path):
    model = perturbed(network(**args))
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored) is network and restored.get_config() == model.get_config()
    shape = (3, *args.get("input_shape", (32, 32, 3)))
    images = np.random.default_rng(1).uniform(0, 255, shape).astype(np.float32)
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(restored.predict(images, verbose=0), expected, rtol=1e-5,
                               atol=1e-6)
    unloaded = network.from_config(model.get_config()).predict(images, verbose=0)
    assert np.abs(unloaded - expected).max() > 1e-3  # the weights came from the file


def test_a_mixed_precision_model_reloads_in_its_precision(tmp_path):
    """A `best.keras` of a `mixed_bfloat16` run reloads computing in bfloat16 (its config keeps
    the policy) in a process whose global policy is float32; logits and the input
    standardisation stay float32."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = perturbed(AlexNet(**{**CIFAR_ARGS, "name": "mixed"}))
    finally:
        keras.config.set_dtype_policy("float32")
    model.save(tmp_path / "mixed.keras")
    restored = keras.saving.load_model(tmp_path / "mixed.keras")
    policies = {layer.name: layer.dtype_policy.name for layer in restored.layers}
    assert policies["conv1"] == policies["fc7"] == "mixed_bfloat16"
    assert policies["normalize"] == policies["fc8"] == "float32"
    assert restored.get_layer("conv1").kernel.dtype == "float32"  # variables stay float32
    images = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(restored.predict(images, verbose=0),
                                  model.predict(images, verbose=0))


def test_unknown_init_is_rejected():
    with pytest.raises(ValueError, match="init must be"):
        build_model(init="xavier")


# The paper's network, from its Section 3.5 and Figure 2: (name, kernel, input maps, filters,
# convolution split across the two GPUs). A split layer's kernels see half the input maps.
PAPER_LAYERS = (("conv1", 11, 3, 96, False), ("conv2", 5, 96, 256, True),
                ("conv3", 3, 256, 384, False), ("conv4", 3, 384, 384, True),
                ("conv5", 3, 384, 256, True), ("fc6", 1, 6 * 6 * 256, 4096, False),
                ("fc7", 1, 4096, 4096, False), ("fc8", 1, 4096, 1000, False))


@pytest.fixture(scope="module")
def paper_model():
    return build_model("paper", num_classes=1000, input_shape=(224, 224, 3), groups=2, lrn=True,
                       seed=0)


def expected_paper_parameters(groups):
    total = 0
    for _, kernel, inputs, filters, split in PAPER_LAYERS:
        layer_groups = groups if split else 1
        total += kernel * kernel * (inputs // layer_groups) * filters + filters
    return total


@pytest.mark.parametrize("groups", [2, 1])
def test_paper_parameter_count_by_hand(groups, paper_model):
    model = paper_model if groups == 2 else build_model("paper", groups=1, seed=0)
    assert model.count_params() == expected_paper_parameters(groups)
    assert model.count_params() == {2: 60_965_224, 1: 62_378_344}[groups]
    for name, kernel, inputs, filters, split in PAPER_LAYERS:
        weights = model.get_layer(name).kernel
        shape = (inputs, filters) if name.startswith("fc") else (
            kernel, kernel, inputs // (groups if split else 1), filters)
        assert tuple(weights.shape) == shape, name


def test_paper_output_shapes_per_layer(paper_model):
    shapes = [(layer.name, tuple(layer.output.shape[1:])) for layer in paper_model.layers]
    assert shapes == [
        ("images", (224, 224, 3)), ("normalize", (224, 224, 3)), ("conv1_pad", (228, 228, 3)),
        ("conv1", (55, 55, 96)), ("conv1_lrn", (55, 55, 96)), ("conv1_pool", (27, 27, 96)),
        ("conv2", (27, 27, 256)), ("conv2_lrn", (27, 27, 256)), ("conv2_pool", (13, 13, 256)),
        ("conv3", (13, 13, 384)), ("conv4", (13, 13, 384)), ("conv5", (13, 13, 256)),
        ("conv5_pool", (6, 6, 256)), ("flatten", (9216,)), ("fc6", (4096,)),
        ("fc7_dropout", (4096,)), ("fc7", (4096,)), ("fc8_dropout", (4096,)), ("fc8", (1000,))]


def test_paper_without_lrn_has_no_lrn_layers():
    model = build_model("paper", num_classes=10, lrn=False, seed=0)
    assert not any(isinstance(layer, LocalResponseNormalization) for layer in model.layers)
    assert model.output.shape == (None, 10)


def test_grouped_convolution_sees_only_its_half(paper_model):
    """conv4's first 192 filters do not change when the second half of its input changes."""
    conv4 = paper_model.get_layer("conv4")
    features = np.random.default_rng(0).normal(size=(1, 13, 13, 384)).astype(np.float32)
    changed = features.copy()
    changed[..., 192:] += 1.0
    before, after = (keras.ops.convert_to_numpy(conv4(x)) for x in (features, changed))
    np.testing.assert_array_equal(before[..., :192], after[..., :192])
    assert not np.allclose(before[..., 192:], after[..., 192:])


def test_paper_init_and_biases(paper_model):
    for name, *_ in PAPER_LAYERS:
        kernel, bias = [keras.ops.convert_to_numpy(w) for w in paper_model.get_layer(name).weights]
        assert kernel.std() == pytest.approx(0.01, rel=0.05), name
        expected_bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(bias, expected_bias)


def paper_lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """Section 3.3: b_i = a_i / (k + α Σ_{j=max(0, i−n/2)}^{min(N−1, i+n/2)} a_j²)^β."""
    channels = a.shape[-1]
    b = np.empty_like(a, dtype=np.float64)
    for i in range(channels):
        low, high = max(0, i - n // 2), min(channels - 1, i + n // 2)
        b[..., i] = a[..., i] / (k + alpha * np.sum(a[..., low:high + 1] ** 2, axis=-1)) ** beta
    return b


@pytest.mark.parametrize("size,k,alpha,beta", [(5, 2.0, 1e-4, 0.75), (3, 1.0, 0.01, 0.5)])
def test_lrn_matches_the_papers_formula(size, k, alpha, beta):
    # Large activations, so the normalisation changes them by far more than the tolerance.
    a = np.random.default_rng(0).uniform(0, 60, (2, 3, 4, 12)).astype(np.float32)
    layer = LocalResponseNormalization(size=size, k=k, alpha=alpha, beta=beta)
    expected = paper_lrn(a, size, k, alpha, beta)
    assert np.abs(expected - a / k ** beta).max() > 1.0
    for got in (layer(a), layer.normalize(keras.ops.convert_to_tensor(a))):  # backend op, keras.ops
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5, atol=1e-5)
    restored = LocalResponseNormalization.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()


def test_lrn_rejects_an_even_size():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(size=4)


@pytest.mark.parametrize("kwargs,message", [
    ({"variant": "vgg"}, "variant must be one of cifar, paper"),
    ({"variant": "paper", "groups": 3}, "groups must be 1 or 2"),
    # An argument of the other network is refused, not ignored.
    ({"variant": "cifar", "input_shape": (64, 64, 3)},
     r"the cifar network \(AlexNet\) does not take input_shape; it takes num_classes, init"),
    ({"groups": 2, "lrn": False}, "does not take groups, lrn"),
    ({"variant": "paper", "batch_norm": True}, r"\(PaperAlexNet\) does not take batch_norm"),
    # Values out of range are refused, not replaced by a default.
    ({"num_classes": 0}, "num_classes must be an integer >= 1, got 0"),
    ({"variant": "paper", "num_classes": 0}, "num_classes must be an integer >= 1, got 0"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
])
def test_bad_variant_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_conv1_stride_1_keeps_the_resolution_and_the_parameter_count_follows():
    model = build_model(conv1_stride=1, seed=0)
    sizes = {name: model.get_layer(name).output.shape[1:] for name in PARAMETRIC[:5]}
    assert sizes == {"conv1": (32, 32, 64), "conv2": (16, 16, 192), "conv3": (8, 8, 384),
                     "conv4": (8, 8, 256), "conv5": (8, 8, 256)}
    # Only fc6 grows: its input is the 4×4×256 = 4096 flatten instead of 2×2×256 = 1024.
    assert model.count_params() == 23_272_266 + (4096 - 1024) * 4096


def test_batch_norm_sits_between_each_convolution_and_its_relu():
    model = build_model(batch_norm=True, seed=0)
    for name in PARAMETRIC[:5]:
        conv = model.get_layer(name)
        assert not conv.use_bias and conv.activation.__name__ == "linear"
        norm = model.get_layer(f"{name}_bn")
        assert norm.input is conv.output
        assert model.get_layer(f"{name}_relu").input is norm.output
        assert (norm.momentum, norm.epsilon) == (0.9, 1e-5)  # PyTorch's 0.1 and 1e-5
    # Each convolution drops its bias and its norm adds γ and β (trainable) per channel.
    filters = 64 + 192 + 384 + 256 + 256
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == 23_272_266 - filters + 2 * filters


def test_batch_norm_inference_uses_the_moving_statistics():
    model = build_model(batch_norm=True, conv1_stride=1, seed=0)
    rng = np.random.default_rng(0)
    norm = model.get_layer("conv1_bn")
    norm.moving_mean.assign(rng.normal(size=64).astype(np.float32))
    norm.moving_variance.assign(rng.uniform(0.5, 2.0, size=64).astype(np.float32))
    image = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    conv1 = keras.Model(model.input, model.get_layer("conv1").output)
    conv = keras.ops.convert_to_numpy(conv1(image))
    relu = keras.Model(model.input, model.get_layer("conv1_relu").output)
    scale = np.sqrt(norm.moving_variance.numpy() + 1e-5)
    expected = np.maximum((conv - norm.moving_mean.numpy()) / scale, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(relu(image, training=False)), expected,
                               rtol=1e-4, atol=1e-4)


def test_conv1_stride_is_1_or_2():
    with pytest.raises(ValueError, match="conv1_stride must be 1 or 2, got 3"):
        AlexNet(conv1_stride=3)


def test_width_multiplier_and_dense_units_set_the_layer_widths_and_the_parameter_count():
    model = build_model(width_multiplier=0.5, dense_units=512, conv1_stride=1, seed=0)
    widths = [model.get_layer(name).filters for name in PARAMETRIC[:5]]
    assert widths == [32, 96, 192, 128, 128]  # 64, 192, 384, 256, 256 halved (multiples of 16)
    assert [model.get_layer(name).units for name in ("fc6", "fc7", "fc8")] == [512, 512, 10]
    # By hand: 3×3 kernels plus biases, then the 4×4×128 flatten into 512, 512 and 10 units.
    fan_ins = [3, 32, 96, 192, 128]
    convs = sum(9 * fan_in * width + width for fan_in, width in zip(fan_ins, widths))
    dense = (4 * 4 * 128 + 1) * 512 + (512 + 1) * 512 + (512 + 1) * 10
    assert model.count_params() == convs + dense
    rebuilt = AlexNet.from_config(model.get_config())
    assert [rebuilt.get_layer(name).filters for name in PARAMETRIC[:5]] == widths
    assert rebuilt.get_config()["dense_units"] == 512


@pytest.mark.parametrize("multiplier, expected", [
    (1.0, (64, 192, 384, 256, 256)), (0.75, (48, 144, 288, 192, 192)),
    (0.1, (16, 16, 32, 32, 32)), (2.0, (128, 384, 768, 512, 512))])
def test_conv_filters_round_to_multiples_of_16(multiplier, expected):
    assert conv_filters(multiplier) == expected
