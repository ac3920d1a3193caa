"""What the tests of the figures share: exact comparison of fractions, and the Katz interval worked out
independently of portal.oversight.rates."""

from __future__ import annotations

import math

import pytest


def approx(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def katz(a: int, n1: int, b: int, n0: int) -> list:
    """The Katz log-method 95% interval, worked out independently of portal.oversight."""
    ratio = (a / n1) / (b / n0)
    se = math.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n0)
    z = 1.959963984540054
    return [pytest.approx(ratio * math.exp(-z * se)), pytest.approx(ratio * math.exp(z * se))]
