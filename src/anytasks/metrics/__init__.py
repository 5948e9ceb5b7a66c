"""Metrics of loops, from their events: for Prometheus and for OpenTelemetry.

Each integration is a listener (:func:`anytasks.add_listener`) in a module of its own, which
imports its library when it is itself imported: :mod:`anytasks.metrics.prometheus` needs the
``anytasks[prometheus]`` extra, :mod:`anytasks.metrics.otel` the ``anytasks[otel]`` extra.
This package imports neither.

.. versionadded:: 0.2
"""

from ._common import DURATION_BUCKETS as DURATION_BUCKETS
from ._common import LATENESS_BUCKETS as LATENESS_BUCKETS

__all__ = ["DURATION_BUCKETS", "LATENESS_BUCKETS"]
