"""Stopping a run cleanly when asked: SIGTERM (what batch schedulers, Kubernetes and preemptible
VMs send before they kill) or SIGINT (Ctrl-C), anywhere in `train()`.

While `fit` runs (`StopRequest.deferred()`), either signal only records the request;
`StopOnSignal` then ends `fit` at the end of the step in progress, writes a backup of the state
the interrupted epoch began with and raises `TrainingStopped`. The resumed run trains that epoch
again from the same state, so it ends as an uninterrupted run would (bit for bit with
`deterministic=True`). Before and after `fit` (loading the data, testing, drawing, exporting:
each writes its files whole or not at all) the signal stops the run at once with
`TrainingStopped`, saying in which phase and what the same command does next
(`StopRequest.enter`): after `fit` the last epoch's backup holds the trained state, so it
finishes the run without training again. A second signal stops at once (`KeyboardInterrupt`).
"""

from __future__ import annotations

import signal
from typing import Optional

import keras

from keras_alexnet.errors import TrainingStopped
from keras_alexnet.training.checkpoints import (
    ResumeBackup,
    set_training_state,
    training_state,
)
from keras_alexnet.utils.stop_signals import (  # noqa: F401  (stop_on_signals: for train())
    EXIT_STATUS,
    StopRequest,
    stop_on_signals,
)


def after_training(checkpoint_every: Optional[int], processes: int) -> str:
    """What the same command does after a stop once `fit` has ended: finish the run from the
    last epoch's backup, or, with no backup kept, train again."""
    again = (f"start the run's {processes} processes again" if processes > 1
             else "run the same command again")
    if checkpoint_every == 0:
        return f"no backup is kept (checkpoint_every=0): {again} to train it again"
    return (f"its trained state is backed up: {again} to finish it (test, figures, export) "
            f"without training again")


class StopOnSignal(keras.callbacks.Callback):
    """Ends `fit` at the end of the training or validation step in progress once `request` holds
    a signal: writes to `backup` the weights and optimizer state the epoch began with (kept in
    host memory as each epoch begins) and raises `TrainingStopped`, saying how to resume.

    Args:
        request: What `stop_on_signals()` yields.
        run_dir: The run directory, for the message.
        backup: The run's backup callback; `None` when it keeps none (`checkpoint_every=0`).
        model: The network whose state the backup holds (default: the model being fit).
        processes: The run's processes; with several, none writes a backup here (process 0
            alone could not: putting back the epoch's start state is a collective), and the
            run resumes from the last backup written at an epoch's end.
    """

    def __init__(self, request: StopRequest, run_dir: str,
                 backup: Optional[ResumeBackup] = None,
                 model: Optional[keras.Model] = None, processes: int = 1):
        super().__init__()
        self.request = request
        self.run_dir = run_dir
        self.backup = None if processes > 1 else backup
        self.network = model
        self.processes = processes
        self._epoch, self._step, self._start = 0, 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._step = epoch, 0
        if self.backup is not None:
            self._start = training_state(self.network or self.model)

    def on_train_batch_end(self, batch, logs=None):
        self._step = batch + 1
        self._stop_if_asked()

    def on_test_batch_end(self, batch, logs=None):
        self._stop_if_asked()

    def _stop_if_asked(self) -> None:
        number = self.request.signal_number
        if number is None:
            return
        if self.processes > 1:
            after = (f"start the run's {self.processes} processes again to resume from the "
                     f"last backup written at an epoch's end")
        elif self.backup is None:
            after = "no backup is kept (checkpoint_every=0): a rerun starts from epoch 1"
        else:
            set_training_state(self._start)
            self.backup.write(self._epoch)
            after = (f"backed up to resume at epoch {self._epoch + 1}: keras-alexnet train "
                     f"--resume {self.run_dir}")
        steps = (self.params or {}).get("steps")
        where = f"step {self._step}" + (f" of {steps}" if steps else "")
        raise TrainingStopped(f"stopped by {signal.Signals(number).name} in epoch "
                              f"{self._epoch + 1} at {where}; {after}", EXIT_STATUS[number])
