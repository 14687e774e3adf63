"""Timing helpers shared by every measurement: one percentile rule, one stopwatch."""

from __future__ import annotations

import time
from collections.abc import Sequence


def percentile(values: Sequence[float], share: float) -> float:
    """Linear-interpolated percentile (numpy's default), `share` in 0..1; nan when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    where = share * (len(ordered) - 1)
    low = int(where)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (where - low)


def timed_ms(call, *args, **kwargs) -> tuple[float, object]:
    """(milliseconds `call(*args, **kwargs)` took, its result)."""
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return 1000 * (time.perf_counter() - started), result
