"""The arithmetic every oversight figure shares: a rate that is 0.0 over nothing, the exact median of a
histogram, and the one 95% confidence interval of a relative rate (Katz's log method). portal.oversight.stats,
.queries and .trends take them from here, so a relative rate and its interval mean the same on every figure."""

from __future__ import annotations

import math

Z_95 = 1.959963984540054


def rate(numerator: int | float, denominator: int | float) -> float:
    """numerator / denominator as a float; 0.0 when the denominator is zero."""
    return float(numerator) / float(denominator) if denominator else 0.0


def median_of_histogram(pairs: list[tuple[int, int]]) -> float:
    """The median of values given as (value, how many) sorted by value; 0.0 when there are none."""
    total = sum(count for _, count in pairs)
    if total == 0:
        return 0.0
    wanted = (total - 1) // 2, total // 2  # the middle position(s), counting from 0
    found: list[int] = []
    seen = 0
    for value, count in pairs:
        for position in wanted:
            if seen <= position < seen + count:
                found.append(value)
        seen += count
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2


def relative_rate_interval(
    events: int, total: int, baseline_events: int, baseline_total: int
) -> tuple[float, float] | None:
    """95% confidence interval of (events/total) / (baseline_events/baseline_total), Katz's log method.

    None when it is undefined (a zero count or an empty group).
    """
    if min(events, total, baseline_events, baseline_total) <= 0:
        return None
    ratio = (events / total) / (baseline_events / baseline_total)
    spread = Z_95 * math.sqrt(1 / events - 1 / total + 1 / baseline_events - 1 / baseline_total)
    return ratio * math.exp(-spread), ratio * math.exp(spread)


__all__ = ["Z_95", "median_of_histogram", "rate", "relative_rate_interval"]
