"""Prometheus metrics of loops: a listener that records their events in a registry.

Synopsis::

    import prometheus_client

    import anytasks
    from anytasks.metrics.prometheus import PrometheusMetrics

    anytasks.add_listener(PrometheusMetrics())
    prometheus_client.start_http_server(9100)

Needs the ``anytasks[prometheus]`` extra (prometheus-client).

.. versionadded:: 0.2
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, final

try:
    import prometheus_client
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry
except ImportError:
    raise ImportError(
        "anytasks.metrics.prometheus needs the prometheus-client package: "
        "install `anytasks[prometheus]`"
    ) from None

from .._engine.events import (
    IterationFinished,
    IterationRetrying,
    IterationSkipped,
    IterationStarted,
    IterationTimedOut,
    LoopEnded,
    LoopEvent,
)
from . import DURATION_BUCKETS, LATENESS_BUCKETS
from ._common import SeenLoops, wall_time

if TYPE_CHECKING:
    from .._loop import Loop

__all__ = ["PrometheusMetrics"]

_RUNNING = "anytasks_running"
_NEXT_RUN = "anytasks_next_run_timestamp_seconds"


def registered_in(registry: CollectorRegistry) -> bool:
    """Whether a :class:`PrometheusMetrics` is registered in ``registry``.

    Not public: ``anytasks run --metrics-port`` serves an application's own rather than fail
    to register a second one.
    """
    return registry in _registries


@final
class PrometheusMetrics:
    """A listener that records the events of loops as Prometheus metrics in ``registry``
    (by default ``prometheus_client.REGISTRY``, which
    ``prometheus_client.start_http_server()`` serves).

    Register it for every loop with ``anytasks.add_listener(PrometheusMetrics())``, or for some
    with :meth:`Loop.add_listener <anytasks.Loop.add_listener>`; not both, or each event counts
    twice. Every metric has the label ``loop``, the loop's :attr:`~anytasks.Loop.name`:

    - ``anytasks_iterations_total{loop, outcome}`` (counter): iterations that ended, by
      :attr:`~anytasks.IterationFinished.outcome`;
    - ``anytasks_iteration_duration_seconds{loop}`` (histogram): their
      :attr:`~anytasks.IterationFinished.duration`, retries included;
    - ``anytasks_lateness_seconds{loop}`` (histogram): from the slot's time to the start of
      the body (:attr:`~anytasks.IterationStarted.lateness`);
    - ``anytasks_skipped_total{loop, reason}`` (counter): slots skipped, by
      :attr:`~anytasks.IterationSkipped.reason`;
    - ``anytasks_retries_total{loop}`` and ``anytasks_timeouts_total{loop}`` (counters):
      attempts retried, and attempts that ran past ``timeout=``;
    - ``anytasks_loop_ends_total{loop, reason}`` (counter): runs that ended, by
      :class:`~anytasks.EndReason` value;
    - ``anytasks_last_success_timestamp_seconds{loop}`` (gauge): the Unix time at which the
      last successful iteration ended;
    - ``anytasks_running{loop}`` (gauge): 1 while a run is in progress, else 0;
    - ``anytasks_next_run_timestamp_seconds{loop}`` (gauge): when the next iteration is due,
      as a Unix time; absent while none is (the loop ended, is stopping, or is in
      ``before_loop``).

    The last two are read from the loops when the registry is collected (the loops are held
    weakly), so they are never stale; a loop appears in them once it has sent an event. Loops
    that share a name share their series: ``running`` is 1 if any of them runs, and the next
    run is the earliest. Times follow the wall clock of the loop's event loop, which is
    virtual under :mod:`anytasks.testing`.

    All metrics are registered at once, as one collector: a second ``PrometheusMetrics`` on
    the same registry raises :class:`ValueError` and registers nothing. Use one per
    registry, or a ``prometheus_client.CollectorRegistry`` of its own (as tests do).

    :param registry: where to register the metrics.
    :param duration_buckets: the upper bounds of the duration histogram's buckets, in seconds.
    :param lateness_buckets: the upper bounds of the lateness histogram's buckets, in seconds.
    :raises ValueError: if ``registry`` already has metrics of these names.

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_durations",
        "_ends",
        "_iterations",
        "_last_success",
        "_lateness",
        "_loops",
        "_metrics",
        "_retries",
        "_skipped",
        "_timeouts",
        "registry",
    )

    registry: CollectorRegistry
    """The registry that the metrics are registered in."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        duration_buckets: Sequence[float] = DURATION_BUCKETS,
        lateness_buckets: Sequence[float] = LATENESS_BUCKETS,
    ) -> None:
        self.registry = prometheus_client.REGISTRY if registry is None else registry
        # Made unregistered, then registered together through _Collector: all or nothing.
        self._iterations = Counter(
            "anytasks_iterations",
            "Iterations of anytasks loops that ended, by outcome.",
            ["loop", "outcome"],
            registry=None,
        )
        self._durations = Histogram(
            "anytasks_iteration_duration_seconds",
            "Seconds from the start of an iteration's first attempt to its end.",
            ["loop"],
            buckets=duration_buckets,
            registry=None,
        )
        self._lateness = Histogram(
            "anytasks_lateness_seconds",
            "Seconds from the time an iteration was due to the start of its body.",
            ["loop"],
            buckets=lateness_buckets,
            registry=None,
        )
        self._skipped = Counter(
            "anytasks_skipped",
            "Slots of the schedule that anytasks loops skipped, by reason.",
            ["loop", "reason"],
            registry=None,
        )
        self._retries = Counter(
            "anytasks_retries",
            "Attempts of iterations that failed with a handled exception and were retried.",
            ["loop"],
            registry=None,
        )
        self._timeouts = Counter(
            "anytasks_timeouts",
            "Attempts of iterations that ran past the loop's timeout.",
            ["loop"],
            registry=None,
        )
        self._ends = Counter(
            "anytasks_loop_ends",
            "Runs of anytasks loops that ended, by reason.",
            ["loop", "reason"],
            registry=None,
        )
        self._last_success = Gauge(
            "anytasks_last_success_timestamp_seconds",
            "Unix time at which the last successful iteration ended.",
            ["loop"],
            registry=None,
        )
        self._loops = SeenLoops()
        self._metrics: tuple[Counter | Gauge | Histogram, ...] = (
            self._iterations,
            self._durations,
            self._lateness,
            self._skipped,
            self._retries,
            self._timeouts,
            self._ends,
            self._last_success,
        )
        self.registry.register(_Collector(self._metrics, self._loops))
        _registries.add(self.registry)

    def __call__(self, event: LoopEvent) -> None:
        """Record ``event``."""
        loop: Loop[Any, Any] = event.loop
        self._loops.see(loop)
        name = loop.name
        if isinstance(event, IterationStarted):
            # Wall-clock schedules measure lateness on the wall clock, which may step back.
            self._lateness.labels(name).observe(max(event.lateness, 0.0))
        elif isinstance(event, IterationFinished):
            self._iterations.labels(name, event.outcome).inc()
            self._durations.labels(name).observe(event.duration)
            if event.outcome == "success":
                self._last_success.labels(name).set(wall_time())
        elif isinstance(event, IterationSkipped):
            self._skipped.labels(name, event.reason).inc(event.count)
        elif isinstance(event, IterationRetrying):
            self._retries.labels(name).inc()
        elif isinstance(event, IterationTimedOut):
            self._timeouts.labels(name).inc()
        elif isinstance(event, LoopEnded):
            self._ends.labels(name, event.end.reason.value).inc()

    def __repr__(self) -> str:
        return f"<PrometheusMetrics registry={self.registry!r}>"


# The registries that registered_in() knows; weakly, so that a test's registry of its own
# goes, with its metrics, once the test lets go of it.
_registries: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


class _Collector:
    """The metrics of one :class:`PrometheusMetrics`, and the gauges read from its loops."""

    def __init__(self, metrics: tuple[Counter | Gauge | Histogram, ...], loops: SeenLoops) -> None:
        self._metrics = metrics
        self._loops = loops

    def describe(self) -> Iterable[Metric]:
        for metric in self._metrics:
            yield from metric.describe()
        yield from _loop_gauges()

    def collect(self) -> Iterable[Metric]:
        for metric in self._metrics:
            yield from metric.collect()
        running, next_run = _loop_gauges()
        for reading in self._loops.read():
            running.add_metric([reading.name], 1.0 if reading.running else 0.0)
            if reading.next_run is not None:
                next_run.add_metric([reading.name], reading.next_run)
        yield running
        yield next_run


def _loop_gauges() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    running = GaugeMetricFamily(
        _RUNNING, "1 while a run of the loop is in progress, else 0.", labels=["loop"]
    )
    next_run = GaugeMetricFamily(
        _NEXT_RUN, "Unix time at which the loop's next iteration is due.", labels=["loop"]
    )
    return running, next_run
