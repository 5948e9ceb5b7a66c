"""Metrics of loops, from their events: for Prometheus and for OpenTelemetry.

Each integration is a listener (:func:`anytasks.add_listener`) in a module of its own, which
imports its library when it is itself imported: :mod:`anytasks.metrics.prometheus` needs the
``anytasks[prometheus]`` extra, :mod:`anytasks.metrics.otel` the ``anytasks[otel]`` extra.
This package imports neither.

.. versionadded:: 0.2
"""

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS"]

#: The default histogram buckets of iteration durations, in seconds: 5 ms to 10 minutes.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

#: The default histogram buckets of lateness, in seconds: 1 ms to 10 minutes. A loop on time
#: starts within a millisecond of its slot; jitter and a busy event loop show further up.
LATENESS_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 600.0,
)  # fmt: skip
