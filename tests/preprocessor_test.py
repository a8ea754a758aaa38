"""`AlexNetImageClassifierPreprocessor`: the standardisation against NumPy's, the test view's
crop against slicing, and its config."""

import numpy as np
import pytest

from keras_alexnet.models.preprocessor import AlexNetImageClassifierPreprocessor

MEAN, STD = (100.0, 110.0, 120.0), (50.0, 60.0, 70.0)


def test_raw_pixels_are_standardised_per_channel():
    preprocessor = AlexNetImageClassifierPreprocessor(mean=MEAN, std=STD)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype("uint8")
    wanted = (images.astype("float64") - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(np.asarray(preprocessor(images)), wanted, rtol=1e-5, atol=1e-6)


def test_the_test_view_cuts_the_centre_of_an_image_resized_by_the_crop_fraction():
    # 32 ÷ 0.5 = 64: a 64×64 image is not resized, and its centre 32×32 is the view
    preprocessor = AlexNetImageClassifierPreprocessor(test_crop_fraction=0.5)
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3)).astype("uint8")
    np.testing.assert_array_equal(preprocessor.test_view(images), images[:, 16:48, 16:48])


def test_the_test_view_resizes_a_whole_image_without_a_crop_fraction():
    preprocessor = AlexNetImageClassifierPreprocessor()
    ramp = np.broadcast_to(np.arange(64, dtype="float64")[None, :, None] * 4, (64, 64, 3))
    view = preprocessor.test_view(ramp[None].astype("uint8"))
    assert view.shape == (1, 32, 32, 3)
    # halving a linear ramp keeps it linear: column j is the mean of columns 2j and 2j + 1
    np.testing.assert_allclose(view[0, 16, 4:28, 0], (np.arange(4, 28) * 2 + 0.5) * 4, atol=1)
    same = np.zeros((3, 32, 32, 3), "uint8")
    assert preprocessor.test_view(same) is same


def test_the_config_rebuilds_the_same_preprocessor():
    preprocessor = AlexNetImageClassifierPreprocessor((40, 40, 3), MEAN, STD, 0.875)
    rebuilt = AlexNetImageClassifierPreprocessor.from_config(preprocessor.get_config())
    assert (rebuilt.image_shape, rebuilt.mean, rebuilt.std, rebuilt.test_crop_fraction) == (
        (40, 40, 3), list(MEAN), list(STD), 0.875)
    assert rebuilt.shorter_side == 46  # round(40 / 0.875)


def test_a_crop_fraction_out_of_range_is_refused():
    with pytest.raises(ValueError, match="test_crop_fraction must be in"):
        AlexNetImageClassifierPreprocessor(test_crop_fraction=1.5)
