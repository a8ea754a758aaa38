import keras
import numpy as np
import pytest

from keras_alexnet.data.augment import (
    Cutout,
    PCAColorJitter,
    RandomHorizontalFlip,
    RandomPadCrop,
    build_augmentation,
    take_pixels,
)

# A real-looking RGB covariance (CIFAR-10's, on 0–255 pixels) and its eigen-decomposition.
COVARIANCE = np.array([[3969.0, 3700.0, 3300.0],
                       [3700.0, 3855.0, 3600.0],
                       [3300.0, 3600.0, 4450.0]])
EIGENVALUES, EIGENVECTORS = np.linalg.eigh(COVARIANCE)


def jitter_shifts(layer, count=40_000):
    """The Δ a layer adds to each of `count` mid-grey 1×1 images (no clipping happens)."""
    images = np.full((count, 1, 1, 3), 128.0, np.float32)
    return keras.ops.convert_to_numpy(layer(images, training=True))[:, 0, 0, :] - 128.0


def test_blog_mode_shift_covariance_is_stddev_squared_times_pixel_covariance():
    layer = PCAColorJitter(EIGENVALUES, EIGENVECTORS, stddev=0.1, seed=0)
    shifts = jitter_shifts(layer)
    expected = 0.01 * COVARIANCE  # σ²·V·diag(√λ²)·Vᵀ = σ²·C
    # Sampling error of a covariance estimate over 40,000 draws is ~1/√20000 of its scale.
    np.testing.assert_allclose(np.cov(shifts, rowvar=False), expected, atol=0.03 * expected.max())
    np.testing.assert_allclose(shifts.mean(0), 0.0, atol=0.05 * np.sqrt(expected.max()))


def test_paper_mode_scales_by_eigenvalues():
    eigenvalues = np.array([0.002, 0.01, 0.2])  # 0–1 scaled pixels, as in the paper.
    layer = PCAColorJitter(eigenvalues, EIGENVECTORS, stddev=0.1, mode="paper",
                           value_range=(0.0, 1.0), seed=0)
    images = np.full((40_000, 1, 1, 3), 0.5, np.float32)
    shifts = keras.ops.convert_to_numpy(layer(images, training=True))[:, 0, 0, :] - 0.5
    expected = 0.01 * EIGENVECTORS @ np.diag(eigenvalues ** 2) @ EIGENVECTORS.T
    np.testing.assert_allclose(np.cov(shifts, rowvar=False), expected, atol=0.03 * expected.max())


def test_every_pixel_of_an_image_moves_by_the_same_shift_and_images_differ():
    layer = PCAColorJitter(EIGENVALUES, EIGENVECTORS, stddev=0.1, seed=1)
    images = np.random.default_rng(0).uniform(60, 190, (16, 32, 32, 3)).astype(np.float32)
    moved = keras.ops.convert_to_numpy(layer(images, training=True)) - images
    per_image = moved.reshape(16, -1, 3)
    np.testing.assert_allclose(per_image, per_image[:, :1, :].repeat(1024, axis=1), atol=1e-3)
    assert np.unique(per_image[:, 0, 0].round(3)).size == 16


def test_output_is_clipped_to_value_range():
    layer = PCAColorJitter(EIGENVALUES, EIGENVECTORS, stddev=3.0, seed=0)
    images = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    assert out.min() == 0.0 and out.max() == 255.0


@pytest.mark.parametrize("layer", [
    PCAColorJitter(EIGENVALUES, EIGENVECTORS, seed=0),
    RandomPadCrop(pad=4, seed=0),
    RandomHorizontalFlip(seed=0),
    build_augmentation(EIGENVALUES, EIGENVECTORS, seed=0),
])
def test_inference_is_the_identity(layer):
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)


def test_seeded_layers_repeat_their_draws():
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    first = build_augmentation(EIGENVALUES, EIGENVECTORS, seed=7)(images, training=True)
    second = build_augmentation(EIGENVALUES, EIGENVECTORS, seed=7)(images, training=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(first),
                                  keras.ops.convert_to_numpy(second))


def test_pad_crop_gives_each_image_its_own_offset_and_exact_pixels():
    images = np.random.default_rng(0).uniform(1, 255, (64, 32, 32, 3)).astype(np.float32)
    cropped = keras.ops.convert_to_numpy(RandomPadCrop(pad=4, seed=3)(images, training=True))
    offsets = []
    for image, crop in zip(images, cropped):
        padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
        matches = [(r, c) for r in range(9) for c in range(9)
                   if np.array_equal(padded[r:r + 32, c:c + 32], crop)]
        assert len(matches) == 1
        offsets.append(matches[0])
    assert len(set(offsets)) > 20
    rows, cols = zip(*offsets)
    assert min(rows) == 0 and max(rows) == 8 and min(cols) == 0 and max(cols) == 8


def test_flip_is_horizontal_only_and_per_image():
    images = np.random.default_rng(0).uniform(1, 255, (64, 32, 32, 3)).astype(np.float32)
    augmentation = build_augmentation(EIGENVALUES, EIGENVECTORS, pad=0, pca_stddev=0.0, seed=0)
    out = keras.ops.convert_to_numpy(augmentation(images, training=True))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


# Every layer with arguments other than its defaults, so that one its config lost would show.
LAYERS = {
    "pca": lambda: PCAColorJitter(EIGENVALUES, EIGENVECTORS, stddev=0.2, mode="paper",
                                  value_range=(0, 1), seed=4),
    "crop": lambda: RandomPadCrop(pad=2, seed=5),
    "flip": lambda: RandomHorizontalFlip(seed=6),
    "cutout": lambda: Cutout(size=5, fill_value=(0.25, 0.5, 0.75), seed=7),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layers_round_trip_through_keras_serialization(name):
    """A layer rebuilt from its serialized config augments exactly as one built from the same
    arguments: every argument (seed included) survived."""
    layer = LAYERS[name]()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    images = np.random.default_rng(0).uniform(0, 1, (16, 32, 32, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(LAYERS[name]()(images, training=True))
    assert not np.array_equal(expected, images)  # it changed the images: the check can fail
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored(images, training=True)),
                                  expected)


def test_a_saved_random_horizontal_flip_loads_as_keras_horizontal_flip():
    """Models and checkpoints saved with the package's earlier flip layer still load: its config
    (seed, no mode) becomes a horizontal-only `keras.layers.RandomFlip`."""
    saved = {"module": None, "class_name": "RandomHorizontalFlip",
             "registered_name": "keras_alexnet>RandomHorizontalFlip",
             "config": {"name": "random_flip", "trainable": True, "dtype": "float32", "seed": 3}}
    layer = keras.layers.deserialize(saved)
    assert isinstance(layer, keras.layers.RandomFlip) and layer.seed == 3
    images = np.random.default_rng(0).uniform(0, 255, (64, 8, 8, 3)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(images, training=True))
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)]
    assert all(f or np.array_equal(o, i) for f, o, i in zip(flipped, out, images))
    assert 10 < sum(flipped) < 54


def test_take_pixels_indexes_each_image_with_its_own_rows_and_columns():
    images = np.arange(2 * 4 * 5 * 2, dtype=np.float32).reshape(2, 4, 5, 2)
    rows = np.array([[3, 0], [1, 1]])
    cols = np.array([[4, 0, 2], [0, 1, 2]])
    got = keras.ops.convert_to_numpy(take_pixels(images, rows, cols))
    expected = np.stack([images[b][np.ix_(rows[b], cols[b])] for b in range(2)])
    np.testing.assert_array_equal(got, expected)


def test_augmentation_compiles_under_xla():
    """The layers run inside a jit-compiled function (the stock RandomCrop could not)."""
    import tensorflow as tf

    augmentation = build_augmentation(EIGENVALUES, EIGENVECTORS, seed=0)
    images = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype(np.float32)
    compiled = tf.function(lambda x: augmentation(x, training=True), jit_compile=True)
    out = compiled(images).numpy()
    assert out.shape == images.shape and not np.array_equal(out, images)
    assert compiled.experimental_get_compiler_ir(images)(stage="hlo")  # XLA really compiled it


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode must be one of"):
        PCAColorJitter(EIGENVALUES, EIGENVECTORS, mode="sqrt")


def test_cutout_blanks_one_square_per_image_with_the_expected_area():
    images = np.full((4000, 32, 32, 3), 255.0, np.float32)
    fill = (10.0, 20.0, 30.0)
    out = keras.ops.convert_to_numpy(Cutout(8, fill_value=fill, seed=0)(images, training=True))
    blanked = np.all(out == np.array(fill, np.float32), axis=-1)
    assert np.all(blanked | np.all(out == 255.0, axis=-1))  # every pixel: kept or filled
    # The centre is uniform over the 32 positions; the span is [c − 4, c + 4) cut at the borders.
    span = np.mean([min(c + 4, 32) - max(c - 4, 0) for c in range(32)])
    assert blanked.mean() == pytest.approx(span ** 2 / 32 ** 2, rel=0.03)
    for mask in blanked[:50]:  # each image: one rectangle, at most 8×8
        rows, cols = np.where(mask.any(1))[0], np.where(mask.any(0))[0]
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        assert mask[rows[0]:rows[-1] + 1,
                    cols[0]:cols[-1] + 1].all() and mask.sum() == len(rows) * len(cols)
    centres = {tuple(np.argwhere(mask)[0]) for mask in blanked[:50]}
    assert len(centres) > 25  # drawn per image


def test_cutout_is_the_identity_at_inference_and_round_trips():
    from keras_alexnet.data.augment import Cutout

    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    layer = Cutout(8, fill_value=[1.0, 2.0, 3.0], seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(images, training=False)), images)
    restored = Cutout.from_config(layer.get_config())
    assert (restored.size, restored.fill_value, restored.seed) == (8, [1.0, 2.0, 3.0], 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(Cutout(0)(images, training=True)),
                                  images)


def test_build_augmentation_adds_cutout_only_when_asked():
    seed_layers = [layer.name for layer in build_augmentation(EIGENVALUES, EIGENVECTORS).layers]
    assert seed_layers == ["pca_color_jitter", "random_pad_crop", "random_flip"]
    with_cutout = build_augmentation(EIGENVALUES, EIGENVECTORS, cutout=8, cutout_fill=(1, 2, 3))
    assert [layer.name for layer in with_cutout.layers][-1] == "cutout"
    assert with_cutout.layers[-1].fill_value == [1.0, 2.0, 3.0]
