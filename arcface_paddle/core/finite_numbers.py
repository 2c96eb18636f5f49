"""Numbers a user gives us (flags, config values, file fields) are finite, and not negative unless meant.

Python's ``float("nan")`` and YAML's ``.nan`` / ``.inf`` parse without complaint, and a NaN compares false
with everything: ``similarity >= nan`` is never true, so ``--rec_thresh nan`` would call every face
"unknown" and ``num_epochs: nan`` would train zero steps — a silently wrong answer instead of an error.
"""
from __future__ import annotations

import math
from typing import Iterable

from arcface_paddle.core.errors import ToolkitError


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite(value, name: str) -> float:
    """``value`` as a float; NaN, infinity and non-numbers are refused naming ``name``."""
    if not is_number(value) and not (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0):
        raise ToolkitError(f"{name}: expected a number, found {value!r}")
    if not math.isfinite(float(value)):
        raise ToolkitError(f"{name}: expected a finite number, found {value!r}")
    return float(value)


def check_number_tree(value, name: str, *, positive: Iterable[str] = (), allow_negative: Iterable[str] = (),
                      at_most: dict | None = None, _prefix: str = "") -> None:
    """Every number in a nested config (dicts, lists) finite and ``>= 0``; keys in ``positive`` ``> 0``; keys
    of ``at_most`` no larger than their bound (sizes that would allocate without limit).

    Keys are dotted paths (``data.synthetic.num_identities``); ``allow_negative`` lists keys (or section
    prefixes ending in ``.``) whose numbers may be negative.  ``name`` prefixes the error (``config``).
    """
    positive, allow_negative, at_most = set(positive), tuple(allow_negative), at_most or {}
    if isinstance(value, dict):
        for key, item in value.items():
            check_number_tree(item, name, positive=positive, allow_negative=allow_negative, at_most=at_most,
                              _prefix=f"{_prefix}{key}.")
        return
    key = _prefix[:-1]
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, (dict, list, tuple)):
            check_number_tree(item, name, positive=positive, allow_negative=allow_negative, at_most=at_most,
                              _prefix=_prefix)
            continue
        if not is_number(item):
            continue
        if not math.isfinite(item):
            raise ToolkitError(f"{name} {key}: expected a finite number, found {item!r}")
        negative_ok = key in allow_negative or any(p.endswith(".") and key.startswith(p) for p in allow_negative)
        if key in positive and item <= 0:
            raise ToolkitError(f"{name} {key}: must be positive, found {item!r}")
        if item < 0 and not negative_ok:
            raise ToolkitError(f"{name} {key}: must be >= 0, found {item!r}")
        if key in at_most and item > at_most[key]:
            raise ToolkitError(f"{name} {key}: must be at most {at_most[key]:,}, found {item!r}")


def check_flag_numbers(namespace, flag_names: dict | None = None) -> None:
    """Parsed command-line flags: every float finite (thresholds may be negative: cosine similarities are),
    no whole number negative (counts, sizes, threads, seeds).  ``flag_names``: dest → the flag as typed."""
    for dest, value in vars(namespace).items():
        flag = (flag_names or {}).get(dest, "--" + dest)
        for item in value if isinstance(value, list) else [value]:
            if not is_number(item):
                continue
            if not math.isfinite(item):
                raise ToolkitError(f"{flag} {item}: expected a finite number")
            if isinstance(item, int) and item < 0:
                raise ToolkitError(f"{flag} {item}: must not be negative")


def whole_number(text: str, where: str, what: str, maximum: int | None = None, why: str = "") -> int:
    """``text`` (a field of a user's file) as a whole number in ``[0, maximum]``; a one-line ToolkitError at
    ``where`` (``file:line``) otherwise.  ``why`` is added to the too-large message."""
    try:
        value = int(text)
    except ValueError:
        raise ToolkitError(f"{where}: {what} {text[:40]!r} is not an integer") from None
    if value < 0:
        raise ToolkitError(f"{where}: negative {what} {value}")
    if maximum is not None and value > maximum:
        raise ToolkitError(f"{where}: {what} {text[:40]} is larger than {maximum}{why}")
    return value
