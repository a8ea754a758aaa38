"""A process's place in a run of several (`training.multi_host`): which part of every global
batch it feeds."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class ProcessShard:
    """This process's place in a run: process `index` of `count`, of a run of several
    processes (`joined`: joined through `training.multi_host`, even when `count` is 1) or not.

    Example:

    >>> ProcessShard(1, 2).share(np.arange(8))      # process 1 of 2 feeds the second half
    array([4, 5, 6, 7])
    """

    index: int = 0
    count: int = 1
    joined: bool = False

    @property
    def is_writer(self) -> bool:
        """Whether this process writes the run (process 0)."""
        return self.index == 0

    def share(self, batch: np.ndarray) -> np.ndarray:
        """This process's contiguous part of a global `batch`, cut to a multiple of `count`
        first (a last, partial batch loses at most `count - 1` items)."""
        size = len(batch) // self.count
        return batch[self.index * size:(self.index + 1) * size]


ONE_PROCESS = ProcessShard()
