"""The data sets a paper-network run streams: a folder of images, tensorflow-datasets, CIFAR-10."""

import os

import numpy as np
import pytest
from conftest import stand_in_tfds
from PIL import Image

from keras_alexnet.config import TrainConfig
from keras_alexnet.data.cifar10 import PixelStats, load_cifar10
from keras_alexnet.data.image_sets import load_image_set, load_run_data
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
    config = paper_config(data_dir=e2e_data_dir, validation_size=100)
    data = load_image_set(config)
    in_memory = load_run_data(config.replace(network="cifar", init="torch",
                                             test_time_augmentation="none", lr_schedule="step"))
    images, labels = as_arrays(data.validation)
    np.testing.assert_array_equal(np.stack(images), in_memory.split.x_val)
    np.testing.assert_array_equal(labels, in_memory.split.y_val)
    assert data.test_split == "test" and data.train_size == len(in_memory.split.x_train)
    assert len(as_arrays(data.test)[1]) == len(load_cifar10(e2e_data_dir).x_test)


def test_pixel_statistics_are_those_of_the_first_training_images_resized(tmp_path):
    from conftest import write_image_folder

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)  # already 64: no resize
    root = write_image_folder(tmp_path / "set", images, np.arange(40) % 2, ["a", "b"])
    data = load_image_set(paper_config(dataset=root, validation_size=10))
    decoded = np.stack(as_arrays(data.train)[0])  # fixed by the seed: the first pass's order
    stats = PixelStats.from_images(decoded)
    np.testing.assert_allclose(data.stats.mean, stats.mean, rtol=1e-5)
    np.testing.assert_allclose(data.stats.eigenvalues, stats.eigenvalues, rtol=1e-4)


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
