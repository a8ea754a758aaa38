"""Names a package gives on first use (PEP 562): its `__getattr__` and `__dir__` from a table
of each name's module, so that importing the package imports nothing heavy."""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Sequence


def lazy_names(package: str, table: dict[str, str], listed: Sequence[str],
               before: Callable[[], None] = lambda: None) -> tuple[Callable, Callable]:
    """`__getattr__` and `__dir__` for `package`: `table` maps each name to the module that
    defines it (a name that is the package's own submodule maps to that submodule); `listed`
    is what `dir()` shows; `before` runs before a first import.

    Example:

    >>> __getattr__, __dir__ = lazy_names(__name__, {"AlexNetBackbone":
    ...                                   "keras_alexnet.models.backbone"}, ["AlexNetBackbone"])
    """
    def __getattr__(name: str):
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        before()
        module = importlib.import_module(table[name])
        value = module if table[name] == f"{package}.{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(listed)

    return __getattr__, __dir__
