"""The command line's name and `TrainConfig`'s fields as `train` flags: each field's flag, type,
choices, default as it is typed, and its help."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from typing import Any, Sequence

from keras_alexnet.config import TrainConfig

PROG = "keras-alexnet"


def add_field_flag(parser: argparse.ArgumentParser, field: dataclasses.Field, help_text: str):
    """Adds `--field-name` for a `TrainConfig` field: `--x`/`--no-x` for a boolean, its choices
    as typed for a field that has them, else its type (`none` for `None` where allowed)."""
    flag = "--" + field.name.replace("_", "-")
    annotation = typing.get_type_hints(TrainConfig)[field.name]
    help_text = f"{help_text} (default: {shown(field.default)})"
    if annotation is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                            help=help_text)
        return
    choices = field.metadata.get("choices")
    if choices is not None:
        parser.add_argument(flag, type=choice_parser(choices), default=argparse.SUPPRESS,
                            metavar="{" + ",".join(map(shown, choices)) + "}", help=help_text)
        return
    kinds = typing.get_args(annotation) or (annotation,)
    kind = next(k for k in kinds if k is not type(None))
    parser.add_argument(flag, type=value_parser(kind, optional=type(None) in kinds),
                        default=argparse.SUPPRESS, metavar=field.name.upper(), help=help_text)


def shown(value: Any) -> str:
    """A value as it is typed on the command line: `none`, `true`, `false`, and a path in the
    user's home as `~/…`."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    home = os.path.expanduser("~")
    if isinstance(value, str) and value.startswith(home + os.sep):
        return "~" + value[len(home):]
    return str(value)


def choice_parser(choices: Sequence[Any]):
    """An argparse `type` that turns the text of one of `choices` (as `shown` writes it, in any
    case) into that choice, e.g. `true` into `True` and `1` into `1`."""
    by_text = {shown(choice).lower(): choice for choice in choices}

    def parse(text: str) -> Any:
        try:
            return by_text[text.lower()]
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(by_text)})") from None

    return parse


def value_parser(kind: type, optional: bool):
    """An argparse `type` that converts to `kind`, and, when `optional`, 'none' to `None`."""
    def parse(text: str) -> Any:
        if optional and text.lower() == "none":
            return None
        return kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value" messages.
    return parse


def field_descriptions() -> dict[str, str]:
    """Each field's help, as the command line shows it (`None` as `none`, no backticks)."""
    as_typed = {"`None`": "none", "`True`": "true", "`False`": "false"}
    return {field.name: re.sub("|".join(as_typed), lambda word: as_typed[word.group()],
                               field.metadata["help"]).replace("`", "").replace("%", "%%")
            for field in dataclasses.fields(TrainConfig)}
