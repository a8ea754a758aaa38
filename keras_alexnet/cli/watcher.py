"""`keras-alexnet train` as one of the other processes of a multi-host run, under a watcher.

When process 0, which holds JAX's coordination service, dies, JAX ends every other process
from a thread of its own: a fatal log and an abort, before Python can report anything. So on
those processes the command runs itself again as a child and watches it: it passes the child's
output on without JAX's fatal log, passes SIGTERM on (SIGINT, Ctrl-C, reaches the child in the
same process group), and when JAX ends the child says so in one `keras-alexnet: error: …` line
(`PeerLost`'s exit status, as for a lost peer that Python saw). The watcher starts neither JAX nor
TensorFlow.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Sequence

from keras_alexnet.cli.flags import PROG
from keras_alexnet.config import NUM_PROCESSES, PROCESS_ID
from keras_alexnet.errors import PeerLost

WATCHED = "KERAS_ALEXNET_WATCHED"  # set in the child, which then runs the command itself
JAX_ENDS = "Terminating process because the JAX distributed service"
# What JAX's coordination client writes as it ends a process whose coordinator is gone.
JAX_FATAL_LOG = (JAX_ENDS, "coordination_service_agent.cc", "Additional GRPC error information",
                 ":UNKNOWN:Error received from peer", "*** Check failure stack trace", "    @ ")


def needs_watcher() -> bool:
    """Whether this process is one of a multi-host run's processes other than process 0 (named
    by the Keras variables), and not already the watched child."""
    process_id = os.environ.get(PROCESS_ID, "0").strip()
    return not os.environ.get(WATCHED) and process_id not in ("", "0")


def run_watched(argv: Sequence[str]) -> int:
    """Runs `keras-alexnet ARGV` as a watched child; returns the exit status to end with."""
    child = subprocess.Popen([sys.executable, "-m", "keras_alexnet.cli", *argv],
                             env={**os.environ, WATCHED: "1"}, stderr=subprocess.PIPE,
                             text=True, errors="replace")
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM,
                                              lambda number, frame: child.send_signal(number)),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}  # the child's too
    reported = ended_by_jax = False
    try:
        for line in child.stderr:
            ended_by_jax = ended_by_jax or JAX_ENDS in line
            if not any(part in line for part in JAX_FATAL_LOG):
                reported = reported or line.startswith(f"{PROG}: error:")
                sys.stderr.write(line)
                sys.stderr.flush()
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if status >= 0 or not ended_by_jax:
        return status if status >= 0 else 128 - status
    if not reported:
        index, count = os.environ.get(PROCESS_ID), os.environ.get(NUM_PROCESSES, "?")
        print(f"{PROG}: error: process 0 of {count}, which coordinates the run, stopped, so "
              f"process {index} stopped too; start every process again to resume from the last "
              f"backup", file=sys.stderr)
    return PeerLost.exit_status
