"""Random draws keyed to the epoch: the seed states, and `EpochKeyedDraws` on a model."""

import keras
import numpy as np

from keras_alexnet.training.callbacks import EpochKeyedDraws
from keras_alexnet.utils.random_draws import EPOCH_SPAN, epoch_counter, seed_states, set_counter


def dropout_model():
    return keras.Sequential([keras.Input((256,)), keras.layers.Dense(256, name="dense"),
                             keras.layers.Dropout(0.5, seed=1), keras.layers.Dropout(0.5, seed=2)])


def test_seed_states_are_the_seed_generators_and_set_counter_keeps_their_seeds():
    model = dropout_model()
    states = seed_states(model)
    assert len(states) == 2 and all(v.name == "seed_generator_state" for v in states)
    set_counter(states, 5 * EPOCH_SPAN)
    assert sorted(v.numpy().tolist() for v in states) == [
        [1, 5 * 2**20], [2, 5 * 2**20]]
    assert epoch_counter(4096) == 0 and epoch_counter(3) == 3 * 2**20


def test_seed_states_finds_the_generators_of_layers_nested_in_layers_and_lists():
    """Keras names each generator's state variable `seed_generator_state`: every one of a model
    with a nested model, Keras' own random layers and the package's augmentation."""
    from keras_alexnet.data.augment import RandomPadCrop

    inner = keras.Sequential([keras.layers.RandomFlip(seed=3), RandomPadCrop(4, seed=4)])
    model = keras.Sequential([keras.Input((32, 32, 3)), inner, keras.layers.Flatten(),
                              keras.layers.Dropout(0.5, seed=5), keras.layers.Dense(3)])
    named = [v for v in model.non_trainable_variables if v.name == "seed_generator_state"]
    found = seed_states(model)
    assert len(named) == 3 and sorted(map(id, found)) == sorted(map(id, named))


def masks(model, callback, epochs):
    """The dropout mask of two calls in each epoch, as `fit` would step through them."""
    callback.set_model(model)
    callback.on_train_begin()
    ones = np.ones((4, 256), "float32")
    drawn = {}
    for epoch in epochs:
        callback.on_epoch_begin(epoch)
        drawn[epoch] = [keras.ops.convert_to_numpy(model(ones, training=True)) != 0
                        for _ in range(2)]
    return drawn


def test_dropout_of_an_epoch_is_the_same_however_many_epochs_ran_before():
    model = dropout_model()
    model.get_layer("dense").set_weights([np.eye(256, dtype="float32"), np.ones(256, "float32")])
    uninterrupted = masks(model, EpochKeyedDraws(), [0, 1, 2])
    resumed = masks(model, EpochKeyedDraws(), [2])
    np.testing.assert_array_equal(resumed[2], uninterrupted[2])
    assert not np.array_equal(uninterrupted[1][0], uninterrupted[2][0])
    assert not np.array_equal(uninterrupted[2][0], uninterrupted[2][1])  # a new mask each step
    assert 0.15 < np.mean(uninterrupted[2][0]) < 0.35  # two dropouts at 0.5 keep a quarter


def test_the_dataset_pass_counter_is_set_once_when_fit_starts():
    counter = keras.Variable(0, dtype="int32")
    callback = EpochKeyedDraws(next_epoch=counter)
    callback.set_model(dropout_model())
    callback.on_train_begin()
    callback.on_epoch_begin(3)  # a run resumed at epoch 3
    assert int(counter.numpy()) == 3
    counter.assign(5)  # the dataset started epochs 3 and 4 (prefetching ahead of fit)
    callback.on_epoch_begin(4)
    assert int(counter.numpy()) == 5
