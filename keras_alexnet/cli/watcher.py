"""`keras-alexnet train` as one process of a multi-host run, under a watcher.

JAX ends a process from a thread of its own, with a fatal log and an abort before Python can
report anything, when the processes do not all join in time (`config.JOIN_SECONDS`), when one
stops answering (`config.HEARTBEAT_SECONDS`: hung, stopped, cut off), or on the other processes
when process 0, which holds JAX's coordination service, dies. So every process of such a run
(named by the Keras variables) runs the command again as a child and watches it: it passes the
child's output on without JAX's log, passes SIGTERM on (SIGINT, Ctrl-C, reaches the child in the
same process group), and when JAX ends the child says why in one `keras-alexnet: error: …` line
(`PeerLost`'s exit status, as for a lost peer that Python saw). The watcher starts neither JAX
nor TensorFlow.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from typing import Sequence

from keras_alexnet.cli.flags import PROG
from keras_alexnet.errors import PeerLost
from keras_alexnet.training.cluster import JOB_ADDRESSES, JOIN_SECONDS, NUM_PROCESSES, PROCESS_ID

WATCHED = "KERAS_ALEXNET_WATCHED"  # set in the child, which then runs the command itself
JAX_ENDS = "Terminating process because the JAX distributed service"
# What JAX's coordination client writes before it ends a process (everything after `JAX_ENDS`
# is its log too).
JAX_LOG = ("coordination_service_agent.cc", "coordination_service.cc", "CoordinationServiceError",
           "The tasks have crashed", "RPC: /xla.coordination")
AGAIN = "start every process again to resume from the last backup"


def needs_watcher() -> bool:
    """Whether this process is one of a multi-host run's processes (named by the Keras
    variables), and not already the watched child."""
    return not os.environ.get(WATCHED) and os.environ.get(PROCESS_ID, "").strip() != ""


def run_watched(argv: Sequence[str]) -> int:
    """Runs `keras-alexnet ARGV` as a watched child; returns the exit status to end with."""
    child = subprocess.Popen([sys.executable, "-m", "keras_alexnet.cli", *argv],
                             env={**os.environ, WATCHED: "1"}, stderr=subprocess.PIPE,
                             text=True, errors="replace")
    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM,
                                              lambda number, frame: child.send_signal(number)),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}  # the child's too
    reported, jax_log = False, []
    try:
        for line in child.stderr:
            if line.startswith(f"{PROG}:"):  # the package's own lines, before or after JAX's
                reported = reported or line.startswith(f"{PROG}: error:")
                sys.stderr.write(line)
                sys.stderr.flush()
            elif jax_log or JAX_ENDS in line:
                jax_log.append(line)
            elif not _is_jax_log(line):
                sys.stderr.write(line)
                sys.stderr.flush()
        status = child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if status >= 0 or not jax_log:
        return status if status >= 0 else 128 - status
    if not reported:
        why = why_jax_ended("".join(jax_log), os.environ[PROCESS_ID].strip(),
                            os.environ.get(NUM_PROCESSES, "?"),
                            os.environ.get(JOB_ADDRESSES, "?").split(",")[0])
        print(f"{PROG}: error: {why}", file=sys.stderr)
    return PeerLost.exit_status


def _is_jax_log(line: str) -> bool:
    """Whether `line` is the coordination service's log: one of its messages, or a task number
    alone on a line (the tasks such a message lists)."""
    return any(part in line for part in JAX_LOG) or line.strip().isdigit()


def why_jax_ended(log: str, index: str, count: str, address: str) -> str:
    """What JAX's fatal `log` says ended process `index` of `count` (joined at `address`), in
    words for the user.

    Example:

    >>> why_jax_ended("… UNAVAILABLE: The following tasks are unhealthy (stopped sending "
    ...               "heartbeats):\\n1\\nThe tasks have crashed. …", "0", "2", "10.0.0.1:1234")
    "process 1 of 2 stopped answering JAX's heartbeat (hung, stopped or cut off), so ..."
    """
    if "RegisterTask" in log:
        last = int(count) - 1 if count.isdigit() else "…"
        return (f"the run's {count} processes did not all join within {JOIN_SECONDS} s (process "
                f"{index} waited for them at {address}); start all {count}, each with its own "
                f"{PROCESS_ID} (0 to {last})")
    unhealthy = re.search(r"stopped sending heartbeats\):\s*((?:\d+\s*)+)", log)
    if unhealthy:
        silent = " and ".join(unhealthy.group(1).split())
        return (f"process {silent} of {count} stopped answering JAX's heartbeat (hung, stopped or "
                f"cut off), so process {index} stopped too; {AGAIN}")
    if index == "0":
        return f"another process of {count} stopped, so process 0 stopped too; {AGAIN}"
    return (f"process 0 of {count}, which coordinates the run, stopped, so process {index} "
            f"stopped too; {AGAIN}")
