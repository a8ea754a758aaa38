"""Initializers drawn on the host: their distributions, seeds and configs."""

import keras
import numpy as np
import pytest

from keras_alexnet.models.initializers import HostRandom, HostZeros


def test_uniform_fills_the_interval_evenly():
    values = np.asarray(HostRandom("uniform", 0.25, seed=0)((200, 500)))
    assert values.dtype == np.float32 and values.shape == (200, 500)
    assert -0.25 <= values.min() < -0.2499 and 0.2499 < values.max() <= 0.25
    assert values.mean() == pytest.approx(0.0, abs=1e-3)
    assert values.std() == pytest.approx(0.25 / np.sqrt(3), rel=1e-2)  # U(-a, a): a / √3


def test_normal_has_the_standard_deviation_asked_for():
    values = np.asarray(HostRandom("normal", 0.01, seed=1)((400, 500)))
    assert values.mean() == pytest.approx(0.0, abs=1e-4)
    assert values.std() == pytest.approx(0.01, rel=1e-2)


def test_a_seed_fixes_the_draw_and_none_follows_keras_global_seed():
    first, second = (np.asarray(HostRandom("uniform", 1.0, seed=3)((10,))) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    unseeded = HostRandom("uniform", 1.0)
    keras.utils.set_random_seed(5)
    a = np.asarray(unseeded((10,)))
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(np.asarray(unseeded((10,))), a)
    assert not np.array_equal(np.asarray(unseeded((10,))), a)  # each call draws anew


def test_config_round_trip_and_zeros():
    initializer = HostRandom("normal", 0.5, seed=7, key="fc6/kernel")
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializer))
    assert isinstance(restored, HostRandom) and restored.get_config() == {
        "distribution": "normal", "scale": 0.5, "seed": 7, "key": "fc6/kernel"}
    np.testing.assert_array_equal(np.asarray(restored((3, 3))), np.asarray(initializer((3, 3))))
    zeros = np.asarray(HostZeros()((2, 3), dtype="float16"))
    assert zeros.dtype == np.float16 and not zeros.any()
    with pytest.raises(ValueError, match="uniform or normal"):
        HostRandom("gamma", 1.0)
