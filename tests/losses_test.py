import keras
import numpy as np
import pytest

from keras_alexnet import TrainConfig
from keras_alexnet.training.losses import SparseLabelSmoothingCrossentropy, build_loss


def numpy_smoothed_crossentropy(logits, labels, epsilon):
    """Mean over the batch of −Σ_k t_k log softmax(z)_k with t = (1−ε)·onehot + ε/K."""
    shifted = logits - logits.max(1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    targets = (1 - epsilon) * np.eye(logits.shape[1])[labels] + epsilon / logits.shape[1]
    return float(-(targets * log_softmax).sum(1).mean())


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_the_formula(epsilon):
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(16, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=16)
    loss = SparseLabelSmoothingCrossentropy(label_smoothing=epsilon)
    got = float(keras.ops.convert_to_numpy(loss(labels, logits)))
    assert got == pytest.approx(numpy_smoothed_crossentropy(logits, labels, epsilon), rel=1e-5)


def test_round_trip_and_range():
    loss = SparseLabelSmoothingCrossentropy(0.1)
    assert SparseLabelSmoothingCrossentropy.from_config(loss.get_config()).label_smoothing == 0.1
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        SparseLabelSmoothingCrossentropy(1.0)


def test_build_loss_keeps_the_seeds_loss_without_smoothing():
    assert isinstance(build_loss(TrainConfig()), keras.losses.SparseCategoricalCrossentropy)
    assert build_loss(TrainConfig(label_smoothing=0.1)).label_smoothing == 0.1
