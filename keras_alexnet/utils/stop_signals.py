"""Signals as exceptions: for a block of long work (training, a download), SIGTERM (what batch
schedulers, Kubernetes and preemptible VMs send before they kill) and SIGINT (Ctrl-C) raise
`TrainingStopped` (exit status 75 or 130) naming what was interrupted, so that the work's own
clean-up runs and the command line ends in one line. Training defers them while `fit` runs
(`training.interruption`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from typing import Callable, Iterator, Optional

from keras_alexnet.errors import TrainingStopped

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EXIT_STATUS = {signal.SIGTERM: 75, signal.SIGINT: 130}  # 75: EX_TEMPFAIL, try again
BEFORE_TRAINING = "it trained nothing: the same command starts (or resumes) the run again"


class _StopNow(BaseException):
    """Raised by the signal handler outside `fit`; a `BaseException`, so that no library's
    `except Exception` on the way mistakes it for its own error."""


@dataclasses.dataclass
class StopRequest:
    """The signal that asked the run to stop, once one has, and what the run is doing.

    Attributes:
        signal_number: The signal, once one arrived.
        phase: What a signal outside `fit` interrupts, as the message says it
            (`"while loading the data"`).
        next_step: What running the same command again does then.
        deferring: Whether a signal only records the request (during `fit`).
    """

    signal_number: Optional[int] = None
    phase: str = "before training"
    next_step: str = BEFORE_TRAINING
    deferring: bool = False
    handler: Optional[Callable] = None

    def enter(self, phase: str, next_step: Optional[str] = None) -> None:
        """The run now does `phase`; a signal from now on says `next_step` (kept unless given)."""
        self.phase = phase
        self.next_step = next_step or self.next_step

    def reclaim(self) -> None:
        """Takes SIGTERM and SIGINT back from a library that installed its own handlers (JAX's
        preemption notice, when its distributed runtime starts)."""
        if self.handler is not None:
            for number in STOP_SIGNALS:
                signal.signal(number, self.handler)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """For the block (`fit`), a signal is only recorded, for `StopOnSignal` to act on."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """For the block, SIGTERM and SIGINT raise `TrainingStopped` (exit status 75 or 130) naming
    the request's phase, or inside `StopRequest.deferred()` set the yielded request instead (a
    second signal raises `KeyboardInterrupt`); the handlers before are put back after. Outside
    the main thread, where Python cannot set handlers, the signals act as before."""
    request = StopRequest()

    def record(number, frame):
        if request.signal_number is not None:
            raise KeyboardInterrupt
        request.signal_number = number
        if not request.deferring:
            raise _StopNow

    try:
        previous = {number: signal.signal(number, record) for number in STOP_SIGNALS}
        request.handler = record
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield request
    except _StopNow:
        number = request.signal_number
        raise TrainingStopped(f"stopped by {signal.Signals(number).name} {request.phase}; "
                              f"{request.next_step}", EXIT_STATUS[number]) from None
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
