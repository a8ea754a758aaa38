import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from conftest import SHARED_CIFAR, stand_in_tfds, write_batch, write_cifar_dir

from keras_alexnet.data.cifar10 import PixelStats, load_cifar10, split_train_validation
from keras_alexnet.data.pipeline import train_dataset
from keras_alexnet.errors import DataError


def test_loads_official_layout_as_nhwc(tmp_path):
    path = tmp_path / "cifar-10-batches-py"
    x_train, y_train = write_cifar_dir(str(path))
    data = load_cifar10(str(path))
    assert data.x_train.shape == (600, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (100, 32, 32, 3)
    np.testing.assert_array_equal(data.x_train, x_train)
    np.testing.assert_array_equal(data.y_train, y_train)
    assert data.y_train.dtype == np.int64


def test_rows_are_red_green_blue_planes(tmp_path):
    path = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(str(path))
    row = np.concatenate([np.full(1024, 10), np.full(1024, 20), np.full(1024, 30)]).astype(np.uint8)
    with open(path / "data_batch_1", "wb") as file:
        pickle.dump({b"data": np.tile(row, (120, 1)), b"labels": [0] * 120}, file, protocol=2)
    assert load_cifar10(str(path)).x_train[0, 5, 7].tolist() == [10, 20, 30]


def test_accepts_parent_dir_archive_and_env_var(tmp_path, monkeypatch):
    write_cifar_dir(str(tmp_path / "cifar-10-batches-py"))
    expected = load_cifar10(str(tmp_path / "cifar-10-batches-py")).x_test
    np.testing.assert_array_equal(load_cifar10(str(tmp_path)).x_test, expected)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    np.testing.assert_array_equal(load_cifar10(str(archive)).x_test, expected)
    monkeypatch.setenv("KERAS_ALEXNET_DATA", str(archive))
    np.testing.assert_array_equal(load_cifar10().x_test, expected)


def test_crafted_pickle_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(str(path))
    with open(path / "data_batch_3", "wb") as file:
        pickle.dump({b"data": Exploit(), b"labels": []}, file, protocol=2)
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR-10 batch: forbidden global"):
        load_cifar10(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("corrupt, message", [
    (lambda p: p.write_bytes(p.read_bytes()[:5000]), "is not a CIFAR-10 batch"),
    (lambda p: write_batch(p, np.zeros((4, 16, 16, 3), np.uint8), [0] * 4), r"shape \(N, 3072\)"),
    (lambda p: write_batch(p, np.zeros((4, 32, 32, 3), np.uint8), [0, 1, 2, 10]),
     r"labels must be in 0..9"),
    (lambda p: write_batch(p, np.zeros((4, 32, 32, 3), np.uint8), [0, 1]),
     "expected 4 integer labels"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2, 3], protocol=2)), "no b'data' and b'labels'"),
    (lambda p: p.unlink(), "batch missing"),
])
def test_broken_batches_raise_one_clear_error(tmp_path, corrupt, message):
    path = tmp_path / "cifar-10-batches-py"
    write_cifar_dir(str(path))
    corrupt(path / "data_batch_2")
    with pytest.raises(DataError, match=message):
        load_cifar10(str(path))


def test_missing_and_foreign_directories(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(str(tmp_path / "nowhere"))
    (tmp_path / "photos").mkdir()
    with pytest.raises(DataError, match="is not a CIFAR-10 copy"):
        load_cifar10(str(tmp_path / "photos"))


@pytest.mark.parametrize("member", ["../escaped", "/tmp/keras_alexnet_escaped"])
def test_archive_with_path_traversal_or_absolute_paths_is_refused(tmp_path, member):
    evil = tmp_path / "evil.tar.gz"
    info = tarfile.TarInfo(member)  # TarInfo keeps the name as given (tar.add strips a leading /)
    info.size = 1
    with tarfile.open(evil, "w:gz") as tar:
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="not a safe CIFAR-10 archive: member .* points outside it"):
        load_cifar10(str(evil))
    assert not os.path.exists("/tmp/keras_alexnet_escaped")
    assert not any(p.name == "escaped" for p in tmp_path.parent.rglob("escaped"))


def sparse_file(path, size, head=b""):
    """A file of `size` bytes that takes no disk: `head`, then zeros."""
    with open(path, "wb") as file:
        file.write(head)
        file.truncate(size)
    return str(path)


@pytest.mark.parametrize("head, size, message", [
    (b"", 5 * 2 ** 30, "not a gzip file"),  # zeros: tarfile read them through lzma
    (b"\x1f\x8b\x08\x00", 300 * 2 ** 20, "314,572,800 bytes, over the 268,435,456"),
])
def test_an_archive_that_cannot_be_cifar10_is_refused_from_its_first_bytes(head, size, message,
                                                                            tmp_path):
    archive = sparse_file(tmp_path / "cifar-10-python.tar.gz", size, head)
    for data_dir in (archive, str(tmp_path)):
        with pytest.raises(DataError, match=f"cifar-10-python.tar.gz is not a CIFAR-10 archive: "
                                            f".*{message}"):
            load_cifar10(data_dir)
    assert os.listdir(tmp_path) == ["cifar-10-python.tar.gz"]


def test_an_archive_that_unpacks_to_more_than_the_limit_is_refused_before_extracting(
        tmp_path, monkeypatch):
    from keras_alexnet.data import cifar10

    monkeypatch.setattr(cifar10, "MAX_ARCHIVE_BYTES", 2000)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("first", "second"):  # 1,500 bytes each: the second passes the limit
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = 1500
            tar.addfile(info, io.BytesIO(bytes(1500)))
    extracted = []
    monkeypatch.setattr(tarfile.TarFile, "extractall",
                        lambda self, *args, **kwargs: extracted.append(args))
    with pytest.raises(DataError, match="unpacks to more than 2,000 bytes"):
        load_cifar10(str(archive))
    assert extracted == []


def test_split_is_seeded_disjoint_and_subsettable(cifar_dir):
    data = load_cifar10(cifar_dir)
    split = split_train_validation(data, validation_size=100, seed=0)
    assert len(split.x_train) == 500 and len(split.x_val) == 100
    train_rows = {row.tobytes() for row in split.x_train}
    assert not train_rows & {row.tobytes() for row in split.x_val}
    again = split_train_validation(data, validation_size=100, seed=0)
    np.testing.assert_array_equal(again.x_val, split.x_val)
    other = split_train_validation(data, validation_size=100, seed=1)
    assert not np.array_equal(other.x_val, split.x_val)
    subset = split_train_validation(data, validation_size=100, seed=0, train_subset=64)
    np.testing.assert_array_equal(subset.x_train, split.x_train[:64])
    np.testing.assert_array_equal(subset.x_val, split.x_val)
    with pytest.raises(DataError, match="leaves no training images"):
        split_train_validation(data, validation_size=600, seed=0)


def test_pixel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    stats = PixelStats.from_images(images, chunk=7)
    pixels = images.reshape(-1, 3).astype(np.float64)
    covariance = np.cov(pixels, rowvar=False)
    np.testing.assert_allclose(stats.mean, pixels.mean(0), rtol=1e-6)
    np.testing.assert_allclose(stats.std, np.sqrt(np.diag(covariance)), rtol=1e-5)
    reconstructed = stats.eigenvectors @ np.diag(stats.eigenvalues) @ stats.eigenvectors.T
    np.testing.assert_allclose(reconstructed, covariance, atol=1e-2)


def test_train_dataset_batches_and_augments_per_image():
    from keras_alexnet.data.augment import build_augmentation

    # Image k holds its row + 1 in red, its column + 1 in green and k + 1 in blue, so each output
    # can be matched against every crop and flip of its own source, and its label checked.
    rows, cols = np.meshgrid(np.arange(1, 33), np.arange(1, 33), indexing="ij")
    images = np.stack([np.stack([rows, cols, np.full((32, 32), k + 1)], -1) for k in range(64)])
    images = images.astype(np.uint8)
    augmentation = build_augmentation(np.ones(3), np.eye(3), pad=4, pca_stddev=0.0, seed=0)
    dataset = train_dataset(images, np.arange(64), batch_size=32, augmentation=augmentation, seed=0)
    batches = list(dataset.as_numpy_iterator())
    assert [x.shape for x, _ in batches] == [(32, 32, 32, 3)] * 2
    assert batches[0][0].dtype == np.float32
    out, labels = (np.concatenate(parts) for parts in zip(*batches))
    assert sorted(labels.tolist()) == list(range(64))
    draws = set()
    for image, label in zip(out, labels):
        source = np.pad(images[label], ((4, 4), (4, 4), (0, 0)))  # its own image, by label
        found = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                 if np.array_equal(image, (lambda crop: crop[:, ::-1] if flip else crop)(
                     source[dy:dy + 32, dx:dx + 32]))]
        assert len(found) == 1, label  # exactly one pad-4 crop, mirrored or not
        draws.add(found[0])
    # Each image drew its own offset and flip (one draw per batch would give two).
    assert len(draws) > 20 and {flip for _, _, flip in draws} == {False, True}


@pytest.mark.slow
def test_each_epoch_draws_depend_only_on_the_seed_and_the_epoch():
    """A pipeline started at epoch 2 (as a resumed run starts) gives exactly the batches that
    one which ran epochs 0 and 1 first gives in its third pass."""
    import tensorflow as tf

    from keras_alexnet.data.augment import build_augmentation

    images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)

    def pipeline(next_epoch=None):
        augmentation = build_augmentation(np.ones(3), np.eye(3), seed=7, cutout=8)
        return train_dataset(images, np.arange(40), batch_size=16, augmentation=augmentation,
                             seed=3, deterministic=True, next_epoch=next_epoch)

    uninterrupted = pipeline()
    passes = [list(uninterrupted.as_numpy_iterator()) for _ in range(3)]
    resumed = list(pipeline(tf.Variable(2, dtype=tf.int64)).as_numpy_iterator())
    assert [len(x) for x, _ in resumed] == [16, 16, 8]
    for (x, y), (x_expected, y_expected) in zip(resumed, passes[2]):
        np.testing.assert_array_equal(y, y_expected)
        np.testing.assert_array_equal(x, x_expected)
    orders = [np.concatenate([y for _, y in batches]) for batches in passes]
    assert sorted(orders[1]) == list(range(40)) and not np.array_equal(orders[1], orders[2])
    # The same images in another epoch are augmented with other draws.
    where = np.argsort(orders[1]), np.argsort(orders[2])
    augmented = [np.concatenate([x for x, _ in passes[k]])[where[k - 1]] for k in (1, 2)]
    assert not np.allclose(augmented[0], augmented[1])


@pytest.mark.skipif(not os.path.isdir(SHARED_CIFAR), reason="needs ../shared/data")
def test_real_copy_matches_its_published_checks():
    data = load_cifar10(SHARED_CIFAR)
    assert data.x_train.shape == (50_000, 32, 32, 3) and data.x_test.shape == (10_000, 32, 32, 3)
    counts = np.bincount(data.y_train[:10_000], minlength=10).tolist()
    assert counts == [1005, 974, 1032, 1016, 999, 937, 1030, 1001, 1025, 981]
    assert data.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    stats = PixelStats.from_images(data.x_train)
    np.testing.assert_allclose(stats.mean / 255, [0.491400, 0.482158, 0.446531], atol=1e-5)


def test_tensorflow_datasets_is_the_default_source(monkeypatch, tmp_path):
    """`tfds.testing.mock_data` over a prepared copy's `dataset_info.json` is tensorflow-datasets'
    own stand-in for the download, which this machine cannot make; the loading code under it is
    the real one."""
    monkeypatch.delenv("KERAS_ALEXNET_DATA", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))  # tfds' default data directory
    with stand_in_tfds(tmp_path, "cifar10", {"train": 50_000, "test": 10_000}, examples=20):
        data = load_cifar10()
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (20, 32, 32, 3) and data.y_test.dtype == np.int64
    assert data.y_train.min() >= 0 and data.y_train.max() <= 9
