"""The learning-rate callbacks of a run: the paper's plateau schedule, also across a resume."""

import keras
import numpy as np
import pytest

from keras_alexnet.run_dir import write_history
from keras_alexnet.training.callbacks import ResumedReduceLROnPlateau

VAL_ACCURACY = [0.1, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
# patience 2, ×0.1, at most three drops from 0.1: the rate each epoch trained at, worked by hand.
EXPECTED_RATES = [0.1] * 4 + [0.01] * 3 + [0.001] * 2 + [1e-4] * 4


def plateau_run(start=0, learning_rate=0.1, history=None):
    """The learning rates `fit` would log from epoch `start` on (as the callback logs them)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    callback = ResumedReduceLROnPlateau(history, monitor="val_accuracy", mode="max", factor=0.1,
                                        patience=2, min_lr=0.1 * 0.1 ** 3)
    callback.set_model(model)
    callback.on_train_begin()
    logged = []
    for epoch in range(start, len(VAL_ACCURACY)):
        callback.on_epoch_begin(epoch)
        logs = {"val_accuracy": VAL_ACCURACY[epoch]}
        callback.on_epoch_end(epoch, logs)
        logged.append(logs)
    return logged


def test_the_plateau_schedule_drops_three_times_when_validation_stalls():
    rates = [logs["learning_rate"] for logs in plateau_run()]
    np.testing.assert_allclose(rates, EXPECTED_RATES, rtol=1e-6)


@pytest.mark.parametrize("start", [3, 5, 6, 9, 11])
def test_a_resumed_run_lowers_the_rate_where_the_uninterrupted_one_did(start, tmp_path):
    rows = [{"epoch": epoch, **logs} for epoch, logs in enumerate(plateau_run())]
    path = str(tmp_path / "history.csv")
    write_history(path, rows)  # the interrupted run's, also rows after `start`: ignored
    restored = rows[start]["learning_rate"]  # the rate the backup's optimizer state holds
    resumed = [logs["learning_rate"] for logs in plateau_run(start, restored, path)]
    np.testing.assert_allclose(resumed, EXPECTED_RATES[start:], rtol=1e-6)


def test_without_the_history_a_resumed_run_would_wait_again():
    """The control: the stock callback restarts its count, and drops later than it should."""
    resumed = [logs["learning_rate"] for logs in plateau_run(5, 0.01)]
    assert not np.allclose(resumed, EXPECTED_RATES[5:], rtol=1e-6)


@pytest.mark.parametrize("mode,values", [
    ("max", [0.50, 0.52, 0.60, 0.62, 0.62, 0.70, 0.66, 0.76, 0.755]),
    ("min", [2.00, 1.98, 1.90, 1.88, 1.88, 1.70, 1.75, 1.60, 1.595]),
])
def test_a_resumed_count_is_the_stock_callbacks_own_with_a_min_delta(mode, values, tmp_path):
    """Changes within `min_delta` (0.05) are no improvement, in either direction: the count
    replayed from the history equals what Keras' `ReduceLROnPlateau` counted epoch by epoch."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    stock = keras.callbacks.ReduceLROnPlateau(monitor="m", mode=mode, min_delta=0.05,
                                              patience=100)
    stock.set_model(model)
    stock.on_train_begin()
    counted = []
    for epoch, value in enumerate(values):
        stock.on_epoch_end(epoch, {"m": value})
        counted.append((stock.best, stock.wait))
    path = str(tmp_path / "history.csv")
    write_history(path, [{"epoch": epoch, "m": value, "learning_rate": 0.1}
                         for epoch, value in enumerate(values)])
    for start in range(1, len(values) + 1):
        resumed = ResumedReduceLROnPlateau(path, monitor="m", mode=mode, min_delta=0.05,
                                           patience=100)
        resumed.set_model(model)
        resumed.on_train_begin()
        resumed.on_epoch_begin(start)
        assert (resumed.best, resumed.wait) == pytest.approx(counted[start - 1])
    assert [wait for _, wait in counted] == [0, 1, 0, 1, 2, 0, 1, 0, 1]
