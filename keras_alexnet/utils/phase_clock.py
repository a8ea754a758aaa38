"""Timing a run's consecutive phases."""

from __future__ import annotations

import time


class PhaseClock:
    """Wall seconds of consecutive phases: `lap(name)` ends the phase begun at the last lap."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._lap_start = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self._lap_start
        self._lap_start = now
