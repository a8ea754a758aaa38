"""Stopping on SIGTERM / SIGINT: the handlers while training, and what a stop keeps."""

import os
import signal

import h5py
import keras
import numpy as np
import pytest

from keras_alexnet.errors import TrainingStopped
from keras_alexnet.training.checkpoints import CheckpointSchedule, ResumeBackup
from keras_alexnet.training.interruption import StopOnSignal, StopRequest, stop_on_signals


def test_signals_are_recorded_while_deferred_and_stop_at_once_elsewhere_in_the_block():
    before = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    with stop_on_signals() as request:
        with request.deferred():
            os.kill(os.getpid(), signal.SIGTERM)  # would end this process outside the block
        assert request.signal_number == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a second signal stops at once
    assert {number: signal.getsignal(number) for number in before} == before
    with pytest.raises(TrainingStopped) as stopped:
        with stop_on_signals() as request:
            request.enter("while testing", "run it again")
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except Exception:  # a library's broad handler on the way does not swallow it
                pytest.fail("the stop was caught as an Exception")
    assert str(stopped.value) == "stopped by SIGINT while testing; run it again"
    assert stopped.value.exit_status == 130
    assert {number: signal.getsignal(number) for number in before} == before


def small_fit(callbacks, epochs=2):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks)
    return model


class AskAt(keras.callbacks.Callback):
    """Sets `request` as step `step` of epoch `epoch` ends, as a signal would."""

    def __init__(self, request, epoch, step):
        super().__init__()
        self.request, self.epoch, self.step = request, epoch, step

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.step):
            self.request.signal_number = signal.SIGTERM


def test_a_stop_backs_up_the_state_its_epoch_began_with(tmp_path):
    """Stopped at step 2 of epoch 2, the backup holds epoch 1's end (the weights a run stopped as
    epoch 2 began holds), not the weights after the steps of epoch 2."""
    schedule = CheckpointSchedule(every=100)
    backup = ResumeBackup(str(tmp_path / "backup"), schedule)
    request = StopRequest()
    ended = {}

    class AtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ended[epoch] = [w.copy() for w in self.model.get_weights()]

    with pytest.raises(TrainingStopped) as stopped:
        small_fit([schedule, backup, AtEpochEnd(), AskAt(request, 1, 1),
                   StopOnSignal(request, "RUN", backup)])
    assert stopped.value.exit_status == 75
    assert str(stopped.value) == ("stopped by SIGTERM in epoch 2 at step 2 of 4; backed up to "
                                  "resume at epoch 2: keras-alexnet train --resume RUN")
    with h5py.File(tmp_path / "backup" / "latest.weights.h5") as file:
        assert file.attrs["keras_alexnet_epochs"] == 1
    restored = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    restored.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                     loss="sparse_categorical_crossentropy")
    restored.optimizer.build(restored.trainable_variables)
    restored.load_weights(tmp_path / "backup" / "latest.weights.h5")
    for saved, expected in zip(restored.get_weights(), ended[0]):
        np.testing.assert_array_equal(saved, expected)


def test_without_a_backup_a_stop_says_a_rerun_starts_again():
    request = StopRequest(signal.SIGINT)
    with pytest.raises(TrainingStopped) as stopped:
        small_fit([StopOnSignal(request, "RUN")])
    assert stopped.value.exit_status == 130
    assert str(stopped.value) == ("stopped by SIGINT in epoch 1 at step 1 of 4; no backup is "
                                  "kept (checkpoint_every=0): a rerun starts from epoch 1")


def test_handlers_a_library_put_in_their_place_are_taken_back():
    """`jax.distributed.initialize` installs a SIGTERM handler of its own (its preemption
    notice), which would swallow the signal; `reclaim` puts the run's back."""
    with pytest.raises(TrainingStopped):
        with stop_on_signals() as request:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # what such a library does
            request.reclaim()
            os.kill(os.getpid(), signal.SIGTERM)
