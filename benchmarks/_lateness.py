"""Summaries of lateness samples: how late iterations ran against their ideal schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from _common import percentile, slope

# The percentiles kept for the plots, as a fraction of 100.
PLOT_PERCENTILES = (*range(100), 99.5, 99.9, 100)


def lateness_summary(late_s: Sequence[float]) -> dict[str, Any]:
    """p50, p99 and max of lateness samples given in seconds, reported in milliseconds."""
    ordered = sorted(late_s)
    return {
        "samples": len(ordered),
        "late_p50_ms": percentile(ordered, 50) * 1e3,
        "late_p99_ms": percentile(ordered, 99) * 1e3,
        "late_max_ms": ordered[-1] * 1e3 if ordered else None,
        "late_percentiles_ms": [[q, percentile(ordered, q) * 1e3] for q in PLOT_PERCENTILES],
    }


def drift_summary(
    elapsed_s: Sequence[float], late_s: Sequence[float], last_late_s: Sequence[float]
) -> dict[str, Any]:
    """Cumulative drift of the last iteration and the drift rate (ms of lateness per s)."""
    last = sorted(last_late_s)
    return {
        "drift_last_median_ms": percentile(last, 50) * 1e3,
        "drift_last_max_ms": last[-1] * 1e3 if last else None,
        "drift_ms_per_s": slope(elapsed_s, late_s) * 1e3,
    }
