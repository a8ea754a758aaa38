"""The data sets a paper-network run streams: a folder of images, tensorflow-datasets, CIFAR-10."""

import os

import numpy as np
import pytest
from conftest import stand_in_tfds
from PIL import Image

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.image_sets import load_image_set
from keras_alexnet.errors import DataError


def paper_config(**values):
    return TrainConfig.from_recipe("paper", **values)


def as_arrays(dataset):
    images, labels = zip(*dataset.as_numpy_iterator())
    return list(images), np.array(labels)


def test_a_folder_is_split_by_a_seeded_permutation_and_decoded_as_its_files(cifar_image_folder):
    data = load_image_set(paper_config(dataset=cifar_image_folder, validation_size=50))
    assert data.class_names == tuple(sorted(os.listdir(cifar_image_folder)))
    assert (data.train_size, data.validation_size, data.test_size, data.test_split) == (
        200, 50, 50, "held-out test")
    expected = {}  # every file's pixels (read with PIL) and its folder's label
    for label, name in enumerate(data.class_names):
        for file in os.listdir(os.path.join(cifar_image_folder, name)):
            pixels = np.asarray(Image.open(os.path.join(cifar_image_folder, name, file)))
            expected[pixels.tobytes()] = label
    splits = [as_arrays(split) for split in (data.train, data.validation, data.test)]
    for images, labels in splits:
        assert [expected[image.tobytes()] for image in images] == labels.tolist()
    assert [len(labels) for _, labels in splits] == [200, 50, 50]
    seen = {image.tobytes() for images, _ in splits for image in images}
    assert len(seen) == 300  # the three splits are disjoint and cover the folder
    validation_images = splits[1][0]
    again = load_image_set(paper_config(dataset=cifar_image_folder, validation_size=50))
    assert [i.tobytes() for i in as_arrays(again.validation)[0]] == [
        i.tobytes() for i in validation_images]  # seeded
    other, _ = as_arrays(load_image_set(paper_config(dataset=cifar_image_folder,
                                                     validation_size=50, seed=1)).validation)
    assert {i.tobytes() for i in other} != {i.tobytes() for i in validation_images}


def test_the_training_files_come_in_a_new_order_each_pass(cifar_image_folder):
    data = load_image_set(paper_config(dataset=cifar_image_folder, validation_size=50))
    first, second = ([image.tobytes() for image, _ in data.train.as_numpy_iterator()]
                     for _ in range(2))
    assert sorted(first) == sorted(second) and first != second


def test_train_subset_and_a_too_large_validation_size(cifar_image_folder):
    data = load_image_set(paper_config(dataset=cifar_image_folder, validation_size=50,
                                       train_subset=20))
    assert data.train_size == 20 and len(as_arrays(data.train)[1]) == 20
    with pytest.raises(DataError, match="validation_size 150 leaves no training images"):
        load_image_set(paper_config(dataset=cifar_image_folder, validation_size=150))


def test_cifar10_streams_the_seeded_split_and_its_test_images(e2e_data_dir):
    """The validation images are the last 100 of NumPy's permutation seeded 0 of the training
    images (CIFAR-10's 50,000), read here from the batch files."""
    import pickle

    config = paper_config(data_dir=e2e_data_dir, validation_size=100)
    data = load_image_set(config)
    batches = [pickle.load(open(os.path.join(e2e_data_dir, f"data_batch_{i}"), "rb"),
                           encoding="bytes") for i in range(1, 6)]
    pixels = np.concatenate([batch[b"data"] for batch in batches]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([batch[b"labels"] for batch in batches])
    held_out = np.random.RandomState(0).permutation(len(labels))[-100:]
    test = pickle.load(open(os.path.join(e2e_data_dir, "test_batch"), "rb"), encoding="bytes")
    images, validation_labels = as_arrays(data.validation)
    np.testing.assert_array_equal(np.stack(images), pixels[held_out].transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(validation_labels, labels[held_out])
    test_size = len(test[b"labels"])
    assert (data.train_size, data.validation_size, data.test_size) == (len(labels) - 100, 100,
                                                                      test_size)
    assert data.test_split == "test"
    np.testing.assert_array_equal(as_arrays(data.test)[1], test[b"labels"])


def test_pixel_statistics_are_those_of_the_training_images_resized_to_64(tmp_path):
    """Images of 96×128 become 64×85 (the shorter side 64, antialiased), then their centre
    64×64, truncated to uint8; the mean, covariance and its eigenvalues computed here."""
    import tensorflow as tf
    from conftest import write_image_folder

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 96, 128, 3), dtype=np.uint8)
    images[:, :, :64] //= 2  # the left part darker: a crop taken elsewhere would differ
    root = write_image_folder(tmp_path / "set", images, np.arange(40) % 2, ["a", "b"])
    data = load_image_set(paper_config(dataset=root, validation_size=10))
    train = np.stack(as_arrays(data.train)[0])
    resized = tf.clip_by_value(tf.image.resize(train.astype("float32"), (64, 85),
                                               antialias=True), 0, 255).numpy()
    pixels = resized[:, :, 10:74].astype(np.uint8).reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(data.stats.mean, pixels.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(data.stats.std, pixels.std(axis=0, ddof=1), rtol=1e-4)
    np.testing.assert_allclose(data.stats.eigenvalues, np.linalg.eigvalsh(np.cov(pixels.T)),
                               rtol=1e-4)


@pytest.mark.parametrize("name,classes,splits,expected", [
    # imagenette and imagenet2012 have a validation split and no test split: the last
    # `validation_size` training images validate, the validation split tests.
    ("imagenette/320px-v2", 10, {"train": 40, "validation": 9}, (36, 4, 9, "validation")),
    ("imagenet2012", 1000, {"train": 40, "validation": 9}, (36, 4, 9, "validation")),
    # a set with both: each is what its name says
    ("imagenette/320px-v2", 10, {"train": 40, "validation": 9, "test": 7}, (40, 9, 7, "test")),
])
def test_tfds_sets_are_split_by_the_splits_they_have(tmp_path, name, classes, splits, expected):
    with stand_in_tfds(tmp_path, name, splits, examples=3):
        data = load_image_set(paper_config(dataset=name, data_dir=str(tmp_path),
                                           validation_size=4))
        assert (data.train_size, data.validation_size, data.test_size,
                data.test_split) == expected
        assert data.num_classes == classes and len(set(data.class_names)) == classes
        for split in (data.train, data.validation, data.test):
            images, labels = as_arrays(split)
            assert len(labels) == 3 and labels.dtype == np.int64
            assert images[0].dtype == np.uint8 and images[0].shape[-1] == 3


def test_a_tfds_set_too_small_for_validation_size_is_one_data_error(tmp_path):
    with stand_in_tfds(tmp_path, "imagenette/320px-v2", {"train": 4, "validation": 2}, 1):
        with pytest.raises(DataError, match="validation_size 4 leaves no training images"):
            load_image_set(paper_config(dataset="imagenette/320px-v2", data_dir=str(tmp_path),
                                        validation_size=4))


def test_a_path_that_is_no_directory_is_one_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist or is not a directory"):
        load_image_set(paper_config(dataset=str(tmp_path / "missing")))


def test_files_whose_names_are_not_utf8_are_read(tmp_path):
    values = {}
    for label, name in enumerate(("ant", "bee")):
        os.makedirs(tmp_path / name)
        for index in range(4):
            value = 10 * label + index
            file = os.path.join(os.fsencode(tmp_path / name), b"caf\xe9%d.png" % index)
            Image.fromarray(np.full((5, 5, 3), value, np.uint8)).save(os.fsdecode(file))
            values[value] = label
    data = load_image_set(paper_config(dataset=str(tmp_path), validation_size=2))
    splits = [as_arrays(split) for split in (data.train, data.validation, data.test)]
    read = [int(image[0, 0, 0]) for images, _ in splits for image in images]
    assert sorted(read) == sorted(values)
    assert [values[value] for value in read] == [
        label for _, labels in splits for label in labels.tolist()]
