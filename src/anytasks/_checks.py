"""The checks of the numbers that callers pass, one per kind of number, in one wording.

A wrong type: ``TypeError("`timeout` must be a number or None, not 'str'")``; a value out of
range: ``ValueError("`timeout` must be a positive finite number or None, got 0")``. ``bool``
is refused where a number is expected: ``grace=True`` is a mistake, not one second.
"""

from __future__ import annotations

import math


def _no_number(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, (int, float))


def _no_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def check_seconds(name: str, value: object, *, positive: bool = False) -> float:
    """``value`` as a finite number of seconds: non-negative, or ``positive``.

    :raises TypeError: if it is not an ``int`` or ``float``
    :raises ValueError: if it is NaN, infinite, negative, or zero where ``positive``
    """
    if _no_number(value):
        raise TypeError(f"`{name}` must be a number, not {type(value).__name__!r}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"`{name}` must be a {sign} finite number, got {value!r}")
    return float(value)


def check_optional_seconds(name: str, value: object, *, positive: bool = False) -> float | None:
    """``None``, or ``value`` checked as `check_seconds` does (and worded with "or None")."""
    if value is None:
        return None
    if _no_number(value):
        raise TypeError(f"`{name}` must be a number or None, not {type(value).__name__!r}")
    assert isinstance(value, (int, float))
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"`{name}` must be a {sign} finite number or None, got {value!r}")
    return float(value)


def check_count(name: str, value: object, *, positive: bool = False) -> int:
    """``value`` as a whole number: non-negative, or ``positive``.

    :raises TypeError: if it is not an ``int``
    :raises ValueError: if it is negative, or zero where ``positive``
    """
    if _no_int(value):
        raise TypeError(f"`{name}` must be an int, not {type(value).__name__!r}")
    assert isinstance(value, int)
    if value < (1 if positive else 0):
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"`{name}` must be a {sign} int, got {value!r}")
    return value


def check_optional_count(name: str, value: object, *, positive: bool = False) -> int | None:
    """``None``, or ``value`` checked as `check_count` does (and worded with "or None")."""
    if value is None:
        return None
    if _no_int(value):
        raise TypeError(f"`{name}` must be an int or None, not {type(value).__name__!r}")
    assert isinstance(value, int)
    if value < (1 if positive else 0):
        sign = "positive" if positive else "non-negative"
        raise ValueError(f"`{name}` must be a {sign} int or None, got {value!r}")
    return value
