"""Command-line values checked as they are parsed, by pydantic: numbers, counts, run names.

Rules: each function is an argparse ``type``; a bad value becomes argparse's one-line error naming the option.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

Count = Annotated[int, Field(ge=1)]
Index = Annotated[int, Field(ge=0)]


def number_option(description: str, **constraints: Any):
    """An argparse ``type`` for a float option held to pydantic ``constraints`` (gt, lt, ...); NaN and inf refused."""
    adapter = TypeAdapter(Annotated[float, Field(allow_inf_nan=False, **constraints)])

    def parse(text: str) -> float:
        try:
            return adapter.validate_python(float(text))
        except (ValueError, ValidationError):
            raise argparse.ArgumentTypeError(f"must be {description}, got {text!r}") from None

    return parse


#: A run's name: it becomes part of a file name, so no path separators and no leading dot.
RunName = Annotated[str, Field(pattern=r"^[\w+-][\w.+-]*$", max_length=100)]


def name_option(text: str) -> str:
    """An argparse ``type`` for a saved run's name."""
    try:
        return TypeAdapter(RunName).validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(f"must be letters, digits, '.', '_', '+' or '-' (not first a '.'), "
                                         f"at most 100, got {text!r}") from None  # fmt: skip


def count_option(text: str) -> int:
    """An argparse ``type`` for a positive integer option."""
    try:
        return TypeAdapter(Count).validate_python(int(text))
    except (ValueError, ValidationError):
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None


def index_option(text: str) -> int:
    """An argparse ``type`` for a non-negative integer option (a rank)."""
    try:
        return TypeAdapter(Index).validate_python(int(text))
    except (ValueError, ValidationError):
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
