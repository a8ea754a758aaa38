"""The deprecated one-model networks' warning: one, naming the replacement, when user code builds
one or loads a preset through it; none when Keras or a preset rebuilds one from its config."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

from keras_alexnet.config import warn_renamed

_REBUILDING = contextvars.ContextVar("rebuilding_deprecated_network", default=False)


@contextlib.contextmanager
def rebuilding() -> Iterator[None]:
    """Builds inside rebuild a saved network: they do not warn."""
    token = _REBUILDING.set(True)
    try:
        yield
    finally:
        _REBUILDING.reset(token)


class DeprecatedNetwork:
    """A mixin of the deprecated networks (`AlexNet`, `PaperAlexNet`): their constructor and
    `from_preset` warn once, naming `replacement`; `from_config` does not."""

    replacement = "AlexNetImageClassifier"

    def warn_deprecated(self) -> None:
        """Warns that constructing this class is deprecated, unless a saved one is rebuilt."""
        if not _REBUILDING.get():
            warn_renamed(f"{type(self).__name__}(...)", f"{self.replacement}.from_arguments(...)")

    @classmethod
    def from_config(cls, config):
        with rebuilding():
            return super().from_config(config)

    @classmethod
    def from_preset(cls, *args, **kwargs):
        warn_renamed(f"{cls.__name__}.from_preset(...)", f"{cls.replacement}.from_preset(...)")
        with rebuilding():
            return super().from_preset(*args, **kwargs)
