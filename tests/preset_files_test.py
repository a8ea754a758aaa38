"""Presets in keras-hub's layout: save → load bit for bit, float16 kernels, the metadata, and one
line for every damaged, foreign or unknown preset."""

import hashlib
import json
import os
import re

import h5py
import numpy as np
import pytest
from conftest import assert_holds_stored_weights, perturbed

import keras_alexnet
from keras_alexnet import AlexNet, ModelError, PaperAlexNet
from keras_alexnet.models import footprint
from keras_alexnet.models.backbone import AlexNetBackbone
from keras_alexnet.models.deprecation import rebuilding
from keras_alexnet.models.footprint import network_footprint
from keras_alexnet.models.network import AlexNetNetwork
from keras_alexnet.models.preset_files import save_to_preset

IMAGES = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3)).astype("uint8")


def tiny(seed=0, **changes):
    """A ~0.2 M-parameter AlexNet with batch norm (so the preset has vectors of each kind)."""
    values = {"width_multiplier": 0.25, "dense_units": 64, "conv1_stride": 1,
              "batch_norm": True, "seed": seed, **changes}
    return AlexNet(**values)


def stored_arrays(path):
    """Every array in an HDF5 file by its path in the file, read with h5py."""
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: arrays.update({name: item[()]})
                        if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_a_float32_preset_round_trips_bit_for_bit(tmp_path):
    model = perturbed(tiny())
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = AlexNet.from_preset(str(tmp_path / "preset"))
    assert type(loaded) is AlexNet and len(loaded.weights) == len(model.weights)
    for ours, theirs in zip(model.weights, loaded.weights):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0),
                                  loaded.predict(IMAGES, verbose=0))
    expected = {key: value for key, value in model.get_config().items() if key != "dtype"}
    assert {key: value for key, value in loaded.get_config().items() if key != "dtype"} == expected


def test_float16_storage_halves_the_kernels_and_keeps_the_vectors(tmp_path):
    model = tiny()
    save_to_preset(model, str(tmp_path / "f32"))
    save_to_preset(model, str(tmp_path / "f16"), weights_dtype="float16")
    full = stored_arrays(str(tmp_path / "f32" / "model.weights.h5"))
    half = stored_arrays(str(tmp_path / "f16" / "model.weights.h5"))
    assert sorted(full) == sorted(half)
    for name, values in full.items():
        if values.ndim >= 2:
            assert half[name].dtype == np.float16, name
            np.testing.assert_array_equal(half[name], values.astype(np.float16))
        else:
            assert half[name].dtype == np.float32, name
            np.testing.assert_array_equal(half[name], values)
    kernel_bytes = sum(values.nbytes for values in full.values() if values.ndim >= 2)
    saved = (os.path.getsize(tmp_path / "f32" / "model.weights.h5")
             - os.path.getsize(tmp_path / "f16" / "model.weights.h5"))
    assert saved >= 0.95 * kernel_bytes / 2  # the file shrank by half its kernels' bytes
    loaded = AlexNet.from_preset(str(tmp_path / "f16")).get_layer("fc6").kernel.numpy()
    np.testing.assert_array_equal(
        loaded, model.get_layer("fc6").kernel.numpy().astype(np.float16).astype(np.float32))


def test_the_metadata_records_the_weights_hash_count_and_what_the_caller_adds(tmp_path):
    model = tiny()
    directory = str(tmp_path / "preset")
    save_to_preset(model, directory, class_names=list("abcdefghij"), metadata={"seed": 7})
    metadata = json.load(open(os.path.join(directory, "metadata.json")))
    weights = open(os.path.join(directory, "model.weights.h5"), "rb").read()
    assert metadata["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert metadata["parameter_count"] == sum(int(np.prod(w.shape)) for w in model.weights)
    assert (metadata["class_names"], metadata["seed"], metadata["class_name"]) == (
        list("abcdefghij"), 7, "AlexNet")
    config = json.load(open(os.path.join(directory, "config.json")))
    assert config["registered_name"] == "keras_alexnet>AlexNet"
    assert config["config"]["dtype"] == "float32" and config["config"]["dense_units"] == 64


def test_a_mixed_precision_model_becomes_a_float32_preset_unless_asked(tmp_path):
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # as train() sets it
    try:
        model = tiny()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("fc6").compute_dtype == "bfloat16"
    save_to_preset(perturbed(model), str(tmp_path / "preset"))
    loaded = AlexNet.from_preset(str(tmp_path / "preset"))
    assert loaded.get_layer("fc6").compute_dtype == "float32"
    for ours, theirs in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    again = AlexNet.from_preset(str(tmp_path / "preset"), dtype="mixed_bfloat16")
    assert again.get_layer("fc6").compute_dtype == "bfloat16"


def test_an_existing_directory_is_kept_unless_overwrite_and_nothing_half_written(tmp_path):
    directory = tmp_path / "preset"
    save_to_preset(tiny(seed=0), str(directory))
    before = open(directory / "model.weights.h5", "rb").read()
    with pytest.raises(ModelError, match="exists: pass overwrite=True"):
        save_to_preset(tiny(seed=1), str(directory))
    with pytest.raises(ValueError, match="weights_dtype must be one of"):
        save_to_preset(tiny(seed=1), str(directory), weights_dtype="int8", overwrite=True)
    assert open(directory / "model.weights.h5", "rb").read() == before
    save_to_preset(tiny(seed=1), str(directory), overwrite=True)
    assert open(directory / "model.weights.h5", "rb").read() != before
    assert sorted(os.listdir(tmp_path)) == ["preset"]  # no staging directory left


def _damage(directory, name, change):
    path = os.path.join(directory, name)
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(change(data))


def _rehash(directory):
    """Gives metadata.json the hash of the weights now there (a preset made wrongly, not one
    damaged on the way)."""
    path = os.path.join(directory, "metadata.json")
    metadata = json.load(open(path))
    weights = open(os.path.join(directory, "model.weights.h5"), "rb").read()
    metadata["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    json.dump(metadata, open(path, "w"))


@pytest.fixture
def preset_dir(tmp_path):
    directory = str(tmp_path / "preset")
    save_to_preset(perturbed(tiny()), directory)
    return directory


def test_unknown_names_and_schemes_are_one_line():
    with pytest.raises(ModelError, match="unknown preset 'alexnet_imagenet': the shipped presets "
                                         "are .*alexnet_fast_cifar10"):
        AlexNet.from_preset("alexnet_imagenet")
    with pytest.raises(ModelError, match="the schemes are https://, hf:// and kaggle://"):
        AlexNet.from_preset("ftp://example.com/preset.tar.gz")


def test_a_truncated_weights_file_fails_its_hash(preset_dir):
    _damage(preset_dir, "model.weights.h5", lambda data: data[: len(data) // 2])
    with pytest.raises(ModelError, match="does not match the sha256 in its metadata.json"):
        AlexNet.from_preset(preset_dir)


def test_a_truncated_weights_file_with_its_hash_is_still_refused(preset_dir):
    _damage(preset_dir, "model.weights.h5", lambda data: data[: len(data) // 2])
    _rehash(preset_dir)
    with pytest.raises(ModelError, match="its weights do not fit its config"):
        AlexNet.from_preset(preset_dir)


def test_weights_of_another_config_do_not_fit(preset_dir, tmp_path):
    save_to_preset(tiny(dense_units=32), str(tmp_path / "other"))
    os.replace(tmp_path / "other" / "model.weights.h5",
               os.path.join(preset_dir, "model.weights.h5"))
    _rehash(preset_dir)
    with pytest.raises(ModelError, match="preset .* its weights do not fit its config"):
        AlexNet.from_preset(preset_dir)


def test_a_config_declaring_a_huge_network_is_refused_before_building(preset_dir):
    _damage(preset_dir, "config.json",
            lambda data: data.replace(b'"dense_units": 64', b'"dense_units": 4000000'))
    with pytest.raises(ModelError, match="declares a network larger than the weights"):
        AlexNet.from_preset(preset_dir)


@pytest.mark.parametrize("missing", ["config.json", "model.weights.h5", "metadata.json"])
def test_a_missing_file_is_named(preset_dir, missing):
    os.remove(os.path.join(preset_dir, missing))
    with pytest.raises(ModelError, match=f"preset .* has no {missing}"):
        AlexNet.from_preset(preset_dir)


def test_a_preset_of_the_other_network_is_refused_by_class_and_found_by_load_preset(preset_dir):
    with pytest.raises(ModelError, match="holds a network of class 'AlexNet', not PaperAlexNet"):
        PaperAlexNet.from_preset(preset_dir)
    loaded = keras_alexnet.load_preset(preset_dir)
    assert type(loaded).__name__ == "AlexNetImageClassifier"
    assert_holds_stored_weights(loaded, os.path.join(preset_dir, "model.weights.h5"))


def test_a_paper_network_preset_loads_as_its_class(tmp_path):
    model = perturbed(PaperAlexNet(num_classes=5, input_shape=(64, 64, 3), seed=0))
    model.save_to_preset(str(tmp_path / "paper"), weights_dtype="float16")
    loaded = PaperAlexNet.from_preset(str(tmp_path / "paper"))
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3)).astype("uint8")
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-3)
    assert loaded.input_shape == (None, 64, 64, 3)


def test_a_compiled_models_preset_holds_the_network_without_its_optimizer(tmp_path):
    import keras

    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    save_to_preset(model, str(tmp_path / "preset"))
    stored = stored_arrays(str(tmp_path / "preset" / "model.weights.h5"))
    assert sum(values.size for values in stored.values()) == model.count_params()


def _edit_json(directory, name, change):
    path = os.path.join(directory, name)
    values = json.load(open(path))
    change(values)
    json.dump(values, open(path, "w"))


def layer_outputs(model):
    """The values each layer of a built model outputs for one image, summed (Keras' shapes)."""
    return sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers)


@pytest.mark.parametrize("network, arguments", [
    (AlexNet, {"width_multiplier": 0.25, "dense_units": 64}),
    (AlexNet, {"width_multiplier": 0.25, "dense_units": 64, "conv1_stride": 1,
               "batch_norm": True}),
    (PaperAlexNet, {"num_classes": 5, "input_shape": (67, 80, 3)}),
    (PaperAlexNet, {"num_classes": 5, "input_shape": (64, 64, 3), "groups": 1, "lrn": False}),
    (AlexNetNetwork, {"image_shape": (40, 36, 3), "conv_filters": (8, 16, 24, 16, 8),
                       "conv_kernel_sizes": (5, 3, 3, 3, 3), "conv_strides": (3, 2, 1, 1, 1),
                       "pool_size": 3, "pool_strides": 1, "conv1_padding": 0,
                       "dense_units": 16, "dropout_before": ("fc7",)}),
])
def test_the_footprint_counts_every_weight_and_activation_keras_builds(network, arguments):
    model = network(seed=0, **arguments)
    footprint = network_footprint(network.layer_sizes(model.get_config()))
    assert footprint.weights == model.count_params()
    assert footprint.activations == layer_outputs(model)


def test_the_footprint_of_a_task_and_of_a_backbone_alone_reads_their_nested_configs():
    arguments = {"conv1_stride": 1, "batch_norm": True, "width_multiplier": 0.25,
                 "dense_units": 32, "num_classes": 7}
    task = keras_alexnet.AlexNetImageClassifier.from_arguments("cifar", seed=0, **arguments)
    sizes = type(task).layer_sizes(task.get_config())
    assert network_footprint(sizes).weights == task.count_params()
    with rebuilding():  # the same network as one model, built: its layers' outputs
        whole = AlexNet(seed=0, **arguments)
    assert network_footprint(sizes).activations == layer_outputs(whole)
    features = network_footprint(AlexNetBackbone.layer_sizes(task.backbone.get_config()))
    assert features.weights == task.backbone.count_params()


@pytest.fixture
def backbone_preset(tmp_path):
    model = AlexNetNetwork(conv_filters=(16, 16, 16, 16, 16), dense_units=16, seed=0)
    return save_to_preset(model, str(tmp_path / "backbone"))


@pytest.fixture
def paper_preset(tmp_path):
    model = PaperAlexNet(num_classes=3, input_shape=(64, 64, 3), seed=0)
    return save_to_preset(model, str(tmp_path / "paper"), weights_dtype="float16")


@pytest.mark.parametrize("preset, change, message", [
    ("preset_dir", {"width_multiplier": 14}, "declares a network larger than the weights"),
    ("preset_dir", {"width_multiplier": 1000}, "declares a network larger than the weights"),
    ("preset_dir", {"width_multiplier": 1e308}, "declares a network that cannot be built"),
    ("preset_dir", {"dense_units": 2.5}, "dense_units must be an integer >= 1, got 2.5"),
    ("backbone_preset", {"conv_filters": [100000] * 5},
     "declares a network larger than the weights"),
    ("backbone_preset", {"image_shape": [100000, 100000, 3]},
     "declares a network larger than the weights"),
    ("backbone_preset", {"image_shape": [8, 8, 3]}, "the images are too small for the layers"),
    ("paper_preset", {"input_shape": [100000, 100000, 3]},
     "declares a network larger than the weights"),
])
def test_a_preset_declaring_a_huge_network_is_one_line_before_anything_is_built(
        request, monkeypatch, preset, change, message):
    """Every layer counts (conv kernels too, and the input's size, whichever argument names
    it): nothing is built for a small preset declaring a huge network."""
    directory = request.getfixturevalue(preset)
    _edit_json(directory, "config.json", lambda config: config["config"].update(change))

    refuse_to_build(monkeypatch)
    with pytest.raises(ModelError, match=re.escape(message)):
        keras_alexnet.load_preset(directory)


def refuse_to_build(monkeypatch):
    """Makes building any of the package's networks from a config fail the test."""
    def built(*args, **kwargs):
        raise AssertionError("a network was built before the refusal")

    for network in (AlexNetNetwork, AlexNetBackbone, keras_alexnet.AlexNetImageClassifier):
        monkeypatch.setattr(network, "from_config", classmethod(built))


@pytest.mark.parametrize("parts, change", [
    (("backbone",), {"conv_filters": [100000] * 5}),
    (("backbone", "preprocessor"), {"image_shape": [99999, 99999, 3]})])
def test_a_task_preset_declaring_a_huge_network_is_one_line_before_anything_is_built(
        tmp_path, monkeypatch, parts, change):
    task = keras_alexnet.AlexNetImageClassifier.from_arguments(
        "cifar", width_multiplier=0.25, dense_units=16, seed=0)
    directory = task.save_to_preset(str(tmp_path / "task"))
    _edit_json(directory, "config.json", lambda config: [
        config["config"][part]["config"].update(change) for part in parts])
    refuse_to_build(monkeypatch)
    with pytest.raises(ModelError, match="declares a network larger than the weights"):
        keras_alexnet.AlexNetImageClassifier.from_preset(directory)


def test_a_network_over_the_memory_limit_is_refused_even_with_the_weights_it_declares(
        preset_dir, monkeypatch):
    monkeypatch.setattr(footprint, "MAX_NETWORK_BYTES", 2 ** 20)  # tiny(): 0.85 MB of weights
    with pytest.raises(ModelError, match="declares a network of more than 1 MiB"):
        AlexNet.from_preset(preset_dir)


def _sparse(path):
    with open(path, "wb") as file:
        file.truncate(3 * 2 ** 30)


def _deep(path):
    open(path, "w").write("[" * 200_000 + "]" * 200_000)


def _dev_zero(path):
    os.remove(path)
    os.symlink("/dev/zero", path)


def _fifo(path):
    os.remove(path)
    os.mkfifo(path)


@pytest.mark.parametrize("name", ["config.json", "metadata.json"])
@pytest.mark.parametrize("make, message", [
    (_dev_zero, "is not a regular file"), (_fifo, "is not a regular file"),
    (_sparse, "is 3,221,225,472 bytes, over the 1,048,576 allowed"),
    (_deep, "nests deeper than 32 levels"),
])
def test_a_preset_json_file_that_is_no_small_json_file_is_one_line(preset_dir, name, make,
                                                                   message):
    make(os.path.join(preset_dir, name))
    with pytest.raises(ModelError, match=f"preset .*: its {name} {message}"):
        keras_alexnet.load_preset(preset_dir)


def _set(key, value):
    return lambda values: values.__setitem__(key, value)


@pytest.mark.parametrize("name, change, message", [
    ("config.json", _set("config", "notadict"), 'its "config" is not a JSON object'),
    ("config.json", _set("registered_name", ["keras_alexnet>AlexNet"]),
     'its "registered_name" is not a string'),
    ("config.json", lambda config: config["config"].update(dtype={"name": "float32"}),
     'its "dtype" is not a dtype\'s name'),
    ("metadata.json", _set("class_names", [str(index) for index in range(9)] + [9]),
     "are not a list of names of one line each"),
    ("metadata.json", _set("class_names", "airplane automobile"),
     "are not a list of names of one line each"),
    ("metadata.json", _set("class_names", [f"class {index}" for index in range(9)] + ["a\nb"]),
     "are not a list of names of one line each"),
    ("metadata.json", _set("class_names", [f"class {index}" for index in range(9)] + ["a\rb"]),
     "are not a list of names of one line each"),
    ("metadata.json", _set("class_names", [f"class {index}" for index in range(9)]),
     "its metadata.json names 9 classes for a network of 10"),
    ("metadata.json", _set("weights_sha256", "../" * 21 + "a"), "is not 64 hexadecimal digits"),
    ("metadata.json", _set("weights_sha256", 2 ** 255), "is not 64 hexadecimal digits"),
])
def test_a_preset_value_of_the_wrong_type_is_one_line(preset_dir, name, change, message):
    _edit_json(preset_dir, name, change)
    with pytest.raises(ModelError, match=re.escape(message)):
        keras_alexnet.load_preset(preset_dir)


def test_an_uppercase_weights_sha256_is_the_same_hash(preset_dir):
    _edit_json(preset_dir, "metadata.json",
               lambda metadata: metadata.update(weights_sha256=metadata["weights_sha256"].upper()))
    assert AlexNet.from_preset(preset_dir).count_params() == tiny().count_params()


def _lambda_layer(config):
    """A Keras `Lambda` layer's saved form, holding `config`'s values too."""
    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {**config, "name": "evil", "function": {
                "class_name": "__lambda__", "config": {"code": "ZQ==", "defaults": None,
                                                       "closure": None}}}}


def _as_part(part, saved):
    return lambda config: config["config"].__setitem__(part, saved(config))


@pytest.mark.parametrize("change, message", [
    (_as_part("backbone", lambda config: _lambda_layer(config["config"]["backbone"]["config"])),
     "its backbone is of class 'Lambda', not AlexNetBackbone"),
    (_as_part("preprocessor",
              lambda config: _lambda_layer(config["config"]["preprocessor"]["config"])),
     "its preprocessor is of class 'Lambda', not AlexNetImageClassifierPreprocessor"),
    (_as_part("backbone", lambda config: {**config["config"]["backbone"], "registered_name":
                                          "keras_alexnet>AlexNetImageClassifierPreprocessor"}),
     "its backbone is of class 'AlexNetBackbone', not AlexNetBackbone"),
    (_as_part("backbone", lambda config: json.loads(json.dumps(config))),
     "its backbone is of class 'AlexNetImageClassifier', not AlexNetBackbone"),
    (_as_part("preprocessor", lambda config: "notadict"), "its preprocessor is not a saved object"),
    (lambda config: config["config"]["backbone"]["config"].update(num_classes=10),
     "its backbone is a whole network (it has num_classes)"),
    (lambda config: config["config"]["backbone"]["config"].update(image_shape=[32, 32, 4000]),
     "its backbone's image_shape [32, 32, 4000] is not its preprocessor's [32, 32, 3]"),
    (lambda config: config["config"]["preprocessor"]["config"].update(image_shape=[32, 32, 1]),
     "its backbone's image_shape [32, 32, 3] is not its preprocessor's [32, 32, 1]"),
])
def test_a_task_preset_whose_parts_are_other_classes_or_sizes_is_one_line_before_building(
        tmp_path, monkeypatch, change, message):
    """The sizes are read from the task's parts only when they are the package's backbone and
    preprocessor of one image shape: any other class (or a whole network as the backbone, which
    builds a head of its own) would be built with sizes nothing counted."""
    task = keras_alexnet.AlexNetImageClassifier.from_arguments(
        "cifar", width_multiplier=0.25, dense_units=16, seed=0)
    directory = task.save_to_preset(str(tmp_path / "task"))
    _edit_json(directory, "config.json", change)
    refuse_to_build(monkeypatch)
    for load in (keras_alexnet.AlexNetImageClassifier.from_preset,
                 keras_alexnet.AlexNetImageClassifierPreprocessor.from_preset):
        with pytest.raises(ModelError, match=re.escape(message)):
            load(directory)
