"""Presets in keras-hub's layout: save → load bit for bit, float16 kernels, the metadata, and one
line for every damaged, foreign or unknown preset."""

import hashlib
import json
import os

import h5py
import numpy as np
import pytest

import keras_alexnet
from keras_alexnet import AlexNet, ModelError, PaperAlexNet
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
    model = tiny()
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
    save_to_preset(model, str(tmp_path / "preset"))
    assert AlexNet.from_preset(str(tmp_path / "preset")).get_layer("fc6").compute_dtype == \
        "float32"
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
    save_to_preset(tiny(), directory)
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
    assert type(keras_alexnet.load_preset(preset_dir)).__name__ == "AlexNetImageClassifier"


def test_a_paper_network_preset_loads_as_its_class(tmp_path):
    model = PaperAlexNet(num_classes=5, input_shape=(64, 64, 3), seed=0)
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
