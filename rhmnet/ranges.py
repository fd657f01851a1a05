"""Valid ranges of numbers: one description used by the config checks and by the command-line options.

A :class:`Range` says whether a value is allowed and writes the range into the message, e.g.
``must be in [1, inf), got 0``. :func:`option` turns a range into an argparse ``type=`` callable, so a bad
command-line value is a usage error (exit 2) naming the option and the range, before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Range:
    """``low <= value <= high`` (``<`` where the end is open); None: unbounded on that side. NaN and
    infinite values are never inside a range."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` (int or float) is a finite number inside the range."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))

    def text(self) -> str:
        """The range in interval notation, e.g. ``[1, inf)`` or ``(0, 1)``."""
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low is None or self.low_open else "["
        right = ")" if self.high is None or self.high_open else "]"
        return f"{left}{low}, {high}{right}"

    def problem(self, value: object) -> Optional[str]:
        """None when ``value`` is inside, else ``"must be in <range>, got <value>"``."""
        return None if self.contains(value) else f"must be in {self.text()}, got {value!r}"  # type: ignore[arg-type]


AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
POSITIVE = Range(0, low_open=True)
UNIT = Range(0, 1)  # probabilities, thresholds
UNIT_OPEN_TOP = Range(0, 1, high_open=True)  # decays, dropout


def option(kind: Callable[[str], float], valid: Range) -> Callable[[str], float]:
    """An argparse ``type=`` for numbers of ``kind`` (int or float) inside ``valid``; anything else is
    argparse's usage error (``argument --fps: must be in (0, 1000], got inf``, exit 2)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        problem = valid.problem(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
