"""Timing a run's consecutive phases, and the process's own age."""

from __future__ import annotations

import os
import time

_IMPORTED = time.perf_counter()


class PhaseClock:
    """Wall seconds of consecutive phases: `lap(name)` ends the phase begun at the last lap."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lap_start = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._lap_start
        self._lap_start = now


def process_age() -> float:
    """Seconds since this process started (Linux: from `/proc`, so the interpreter's start and
    the imports count; elsewhere since this module was imported)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as file:
            # Fields after the command's closing parenthesis; starttime is field 22 of the whole.
            fields = file.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as file:
            uptime = float(file.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED
