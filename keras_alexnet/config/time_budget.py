"""A time budget in words (`"20m"`, `"1h30m"`, 90) and the measured frontier it is spent on:
the recipes a budgeted run chooses from, each with its test accuracy after so many epochs.

The frontier is data (`frontier.json`, the measured runs of docs/recipes.md): between two
measured epoch counts the accuracy is interpolated in log(epochs); past the last one it is held
at the last (more epochs of a one-cycle schedule have not lowered it in any run measured); below
the first, a recipe is not offered, except the cheapest, which is always there.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import reprlib
from typing import Any, Optional, Union

from keras_alexnet.errors import ConfigError

FRONTIER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frontier.json")
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"  # as `float` reads them: `5`, `2.5`, `5.`, `.5`
_DURATION_EXPECTED = ("TrainConfig.time_budget must be minutes or a duration such as '20m' or "
                      "'1h30m'")
_DURATION = re.compile(rf"(?:{_NUMBER}h)?(?:{_NUMBER}m(?:in)?)?(?:{_NUMBER}s)?")


def parse_time_budget(value: Union[str, float, int]) -> float:
    """Seconds in a budget given as minutes (a number, or its text) or as a duration of hours,
    minutes and seconds (`"20m"`, `"1h30m"`, `"90s"`, `"1h"`).

    Example:

    >>> parse_time_budget("1h30m"), parse_time_budget(8), parse_time_budget("2.5")
    (5400.0, 480.0, 150.0)
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{_DURATION_EXPECTED}, got {_shown(value)}")
    seconds = _seconds(value) if isinstance(value, str) else value * 60
    if not 0 < seconds <= 7 * 24 * 3600:  # NaN too
        raise ConfigError(f"TrainConfig.time_budget must be more than 0 and at most a week, got "
                          f"{_shown(value)}")
    return float(seconds)


def _seconds(text: str) -> float:
    """The seconds of a budget's text: minutes, or a duration of hours, minutes and seconds."""
    compact = text.strip().lower().replace(" ", "")
    try:
        return float(compact) * 60
    except ValueError:
        match = _DURATION.fullmatch(compact)
        if not compact or not match or not any(match.groups()):
            raise ConfigError(f"{_DURATION_EXPECTED}, got {_shown(text)}") from None
        hours, minutes, secs = (float(group or 0) for group in match.groups())
        return hours * 3600 + minutes * 60 + secs


def _shown(value: Any) -> str:
    """`value` shortened for a one-line error (an integer too long to print: its digits)."""
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"an integer of {math.floor(value.bit_length() * math.log10(2))}+ digits"
    return reprlib.repr(value)


@dataclasses.dataclass(frozen=True)
class FrontierVariant:
    """A recipe a time budget may choose: its `TrainConfig` values, the cost of a training image
    against the cheapest variant's, and its measured `(epochs, test accuracy %)` points."""

    name: str
    recipe: str
    values: dict[str, Any]
    relative_step_cost: float
    points: tuple[tuple[int, float], ...]

    def predicted_accuracy(self, epochs: float) -> Optional[float]:
        """The test accuracy (%) the frontier predicts after `epochs` epochs: interpolated in
        log(epochs) between measured points, the last one's past it, `None` before the first."""
        first, last = self.points[0], self.points[-1]
        if epochs < first[0]:
            return None
        if epochs >= last[0]:
            return last[1]
        for (low, low_accuracy), (high, high_accuracy) in zip(self.points, self.points[1:]):
            if low <= epochs <= high:
                share = math.log(epochs / low) / math.log(high / low)
                return low_accuracy + share * (high_accuracy - low_accuracy)
        raise AssertionError("unreachable: the points are sorted")


@functools.lru_cache(maxsize=None)
def frontier(path: str = FRONTIER_FILE) -> tuple[FrontierVariant, ...]:
    """The frontier's variants, cheapest first."""
    with open(path, encoding="utf-8") as file:
        variants = json.load(file)["variants"]
    found = tuple(FrontierVariant(variant["name"], variant["recipe"], dict(variant["values"]),
                                  float(variant["relative_step_cost"]),
                                  tuple(sorted((int(epochs), float(accuracy))
                                               for epochs, accuracy in variant["points"])))
                  for variant in variants)
    return tuple(sorted(found, key=lambda variant: variant.relative_step_cost))
