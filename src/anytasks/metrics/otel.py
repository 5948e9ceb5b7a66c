"""OpenTelemetry metrics and spans of loops: a listener that records their events.

Synopsis::

    import anytasks
    from anytasks.metrics.otel import OpenTelemetryMetrics

    anytasks.add_listener(OpenTelemetryMetrics())  # the global meter and tracer providers

Needs the ``anytasks[otel]`` extra (opentelemetry-api); what the providers export to is set
up with the OpenTelemetry SDK, as for any instrumented library.

.. versionadded:: 0.2
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from contextvars import Token
from typing import TYPE_CHECKING, Any, final

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
except ImportError:
    raise ImportError(
        "anytasks.metrics.otel needs the opentelemetry-api package: install `anytasks[otel]`"
    ) from None

from .._engine.backend import wall_now
from .._engine.events import (
    IterationFinished,
    IterationRetrying,
    IterationSkipped,
    IterationStarted,
    IterationTimedOut,
    LoopEnded,
    LoopEvent,
)
from .._frozen import Frozen
from . import DURATION_BUCKETS, LATENESS_BUCKETS
from ._common import SeenLoops, unix_nanos, wall_time

if TYPE_CHECKING:
    from .._loop import Loop

__all__ = ["OpenTelemetryMetrics"]

_LOOP = "anytasks.loop"


@final
class _Open(Frozen):
    """The span of an iteration in progress, and the context token that made it current."""

    __slots__ = ("iteration", "span", "token")
    __match_args__ = ("iteration", "span", "token")

    iteration: int
    span: Span
    token: Token[otel_context.Context]

    def __init__(self, iteration: int, span: Span, token: Token[otel_context.Context]) -> None:
        self._set(iteration=iteration, span=span, token=token)


@final
class OpenTelemetryMetrics:
    """A listener that records the events of loops as OpenTelemetry metrics, on a meter of
    ``meter_provider``, and each iteration as a span, on a tracer of ``tracer_provider``
    (by default the global providers).

    Register it for every loop with ``anytasks.add_listener(OpenTelemetryMetrics())``, or for
    some with :meth:`Loop.add_listener <anytasks.Loop.add_listener>`; not both. The instruments
    are those of :class:`~anytasks.metrics.prometheus.PrometheusMetrics`, named in
    OpenTelemetry's style (an exporter to Prometheus gives back the same names); every
    measurement has the attribute ``anytasks.loop``, the loop's :attr:`~anytasks.Loop.name`:

    - ``anytasks.iterations`` (counter; ``anytasks.iteration.outcome``),
      ``anytasks.iteration.duration`` (histogram, s), ``anytasks.lateness`` (histogram, s),
      ``anytasks.skipped`` (counter; ``anytasks.skip.reason``), ``anytasks.retries``,
      ``anytasks.timeouts``, ``anytasks.loop_ends`` (counter; ``anytasks.end.reason``);
    - observable gauges: ``anytasks.last_success.timestamp`` (s),
      ``anytasks.next_run.timestamp`` (s; absent while no iteration is due) and
      ``anytasks.running`` (1 or 0), read from the loops at collection time.

    The histograms advise the buckets :data:`~anytasks.metrics.DURATION_BUCKETS` and
    :data:`~anytasks.metrics.LATENESS_BUCKETS` (an SDK view may override them).

    Each iteration is a span named after the loop, from the call of its body to its end
    (retries included), and the root of a trace of its own: a loop that runs for weeks does
    not grow one trace forever. While the body runs, the span is the current one, so spans
    made in the body are its children. Its attributes: ``anytasks.loop``,
    ``anytasks.iteration.index``, ``anytasks.iteration.scheduled`` (ISO 8601, UTC),
    ``anytasks.iteration.lateness`` (s) and ``anytasks.iteration.outcome``. A retry adds the
    event ``anytasks.retry``, a timeout the event ``anytasks.timeout``; an iteration that
    ends in ``"error"`` or ``"timeout"`` has the status ERROR and its exception recorded.
    Times follow the wall clock of the loop's event loop, which is virtual under
    :mod:`anytasks.testing`.

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_durations",
        "_ends",
        "_iterations",
        "_last_success",
        "_lateness",
        "_loops",
        "_open",
        "_retries",
        "_skipped",
        "_timeouts",
        "_tracer",
    )

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        from .. import __version__

        meter = metrics.get_meter("anytasks", __version__, meter_provider)
        self._tracer = trace.get_tracer("anytasks", __version__, tracer_provider)
        self._loops = SeenLoops()
        self._open: weakref.WeakKeyDictionary[Loop[Any, Any], _Open] = weakref.WeakKeyDictionary()
        # Written in the loops' threads, read in the reader's: replaced, never mutated.
        self._last_success: dict[str, float] = {}
        self._iterations = meter.create_counter(
            "anytasks.iterations", "{iteration}", "Iterations that ended, by outcome."
        )
        self._durations = meter.create_histogram(
            "anytasks.iteration.duration",
            "s",
            "From the start of an iteration's first attempt to its end.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._lateness = meter.create_histogram(
            "anytasks.lateness",
            "s",
            "From the time an iteration was due to the start of its body.",
            explicit_bucket_boundaries_advisory=LATENESS_BUCKETS,
        )
        self._skipped = meter.create_counter(
            "anytasks.skipped", "{slot}", "Slots of the schedule skipped, by reason."
        )
        self._retries = meter.create_counter(
            "anytasks.retries", "{attempt}", "Attempts that failed and were retried."
        )
        self._timeouts = meter.create_counter(
            "anytasks.timeouts", "{attempt}", "Attempts that ran past the loop's timeout."
        )
        self._ends = meter.create_counter(
            "anytasks.loop_ends", "{run}", "Runs of loops that ended, by reason."
        )
        meter.create_observable_gauge(
            "anytasks.last_success.timestamp",
            [self._observe_last_success],
            "s",
            "Unix time at which the last successful iteration ended.",
        )
        meter.create_observable_gauge(
            "anytasks.next_run.timestamp",
            [self._observe_next_run],
            "s",
            "Unix time at which the loop's next iteration is due.",
        )
        meter.create_observable_gauge(
            "anytasks.running",
            [self._observe_running],
            "1",
            "1 while a run of the loop is in progress, else 0.",
        )

    def __call__(self, event: LoopEvent) -> None:
        """Record ``event``."""
        loop: Loop[Any, Any] = event.loop
        self._loops.see(loop)
        attributes = {_LOOP: loop.name}
        if isinstance(event, IterationStarted):
            self._lateness.record(max(event.lateness, 0.0), attributes)
            self._start_span(event)
        elif isinstance(event, IterationFinished):
            outcome = {**attributes, "anytasks.iteration.outcome": event.outcome}
            self._iterations.add(1, outcome)
            self._durations.record(event.duration, attributes)
            if event.outcome == "success":
                self._last_success = {**self._last_success, loop.name: wall_time()}
            self._end_span(event)
        elif isinstance(event, IterationSkipped):
            self._skipped.add(event.count, {**attributes, "anytasks.skip.reason": event.reason})
        elif isinstance(event, IterationRetrying):
            self._retries.add(1, attributes)
            self._span_event(
                loop,
                "anytasks.retry",
                {
                    "anytasks.retry.attempt": event.attempt,
                    "anytasks.retry.delay": event.delay,
                    "exception.type": _qualified_name(type(event.exception)),
                    "exception.message": str(event.exception),
                },
            )
        elif isinstance(event, IterationTimedOut):
            self._timeouts.add(1, attributes)
            self._span_event(
                loop,
                "anytasks.timeout",
                {
                    "anytasks.timeout.seconds": event.timeout,
                    "anytasks.timeout.action": event.action,
                },
            )
        elif isinstance(event, LoopEnded):
            self._ends.add(1, {**attributes, "anytasks.end.reason": event.end.reason.value})

    def __repr__(self) -> str:
        return f"<OpenTelemetryMetrics tracer={self._tracer!r}>"

    # -- spans ---------------------------------------------------------------------------

    def _start_span(self, event: IterationStarted) -> None:
        stale = self._open.pop(event.loop, None)
        if stale is not None:
            _end_stale(stale)
        span = self._tracer.start_span(
            event.loop.name,
            # An empty context: the root of a new trace, whatever the loop's task inherited.
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes={
                _LOOP: event.loop.name,
                "anytasks.iteration.index": event.index,
                "anytasks.iteration.scheduled": event.scheduled.isoformat(),
                "anytasks.iteration.lateness": event.lateness,
            },
            start_time=unix_nanos(wall_now()),
        )
        # Listeners run in the loop's task, just before the body: the body runs under it.
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open[event.loop] = _Open(event.index, span, token)

    def _end_span(self, event: IterationFinished) -> None:
        # A loop reports an iteration to a listener whole or not at all (a listener removed
        # during it still hears its end): None, or another iteration's span, only for a
        # listener registered twice for the loop (on it and globally).
        opened = self._open.pop(event.loop, None)
        if opened is None:
            return
        if opened.iteration != event.index:
            _end_stale(opened)
            return
        span = opened.span
        otel_context.detach(opened.token)
        span.set_attribute("anytasks.iteration.outcome", event.outcome)
        now = unix_nanos(wall_now())
        if event.outcome in ("error", "timeout"):
            exception = event.exception
            if exception is not None:
                span.record_exception(exception, timestamp=now)
            span.set_status(Status(StatusCode.ERROR, _describe(exception, event.outcome)))
        span.end(end_time=now)

    def _span_event(self, loop: Loop[Any, Any], name: str, attributes: dict[str, Any]) -> None:
        opened = self._open.get(loop)
        if opened is not None:
            opened.span.add_event(name, attributes, timestamp=unix_nanos(wall_now()))

    # -- observable gauges -------------------------------------------------------------

    def _observe_last_success(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(t, {_LOOP: name}) for name, t in sorted(self._last_success.items())]

    def _observe_next_run(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(reading.next_run, {_LOOP: reading.name})
            for reading in self._loops.read()
            if reading.next_run is not None
        ]

    def _observe_running(self, options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(1 if reading.running else 0, {_LOOP: reading.name})
            for reading in self._loops.read()
        ]


def _end_stale(opened: _Open) -> None:
    """End the span of an iteration that the listener heard begin a second time before its
    end: it is registered twice for the loop (on it and globally). It ends now, without an
    outcome."""
    otel_context.detach(opened.token)
    opened.span.end(end_time=unix_nanos(wall_now()))


def _qualified_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _describe(exception: BaseException | None, outcome: str) -> str:
    if exception is None:
        return outcome
    return f"{type(exception).__name__}: {exception}"
