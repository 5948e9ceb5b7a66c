"""OpenTelemetry metrics and spans, read back through the SDK's in-memory reader and exporter."""

from __future__ import annotations

import contextlib
import datetime
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import anytasks
from anytasks.metrics import DURATION_BUCKETS, LATENESS_BUCKETS
from anytasks.metrics.otel import OpenTelemetryMetrics
from anytasks.testing import wall_now

pytestmark = pytest.mark.anyio

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> float:
    """The Unix time ``seconds`` after the virtual clock's start."""
    return (T0 + datetime.timedelta(seconds=seconds)).timestamp()


def ns(seconds: float) -> int:
    """The same, in nanoseconds, as span times are."""
    return int(at(seconds) * 1_000_000) * 1000


@dataclass
class Telemetry:
    """Local providers (never the global ones), and what they have recorded."""

    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    tracer_provider: TracerProvider
    listener: OpenTelemetryMetrics

    def metrics(self) -> dict[str, dict[frozenset[tuple[str, Any]], Any]]:
        """Per instrument: per attribute set, the value (a histogram: its data point)."""
        found: dict[str, dict[frozenset[tuple[str, Any]], Any]] = {}
        data = self.reader.get_metrics_data()
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "anytasks"
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, {})
                    for point in metric.data.data_points:
                        key = frozenset((point.attributes or {}).items())
                        if isinstance(point, NumberDataPoint):
                            points[key] = point.value
                        else:
                            assert isinstance(point, HistogramDataPoint)
                            points[key] = point
        return found

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)


@pytest.fixture
def telemetry(caplog: pytest.LogCaptureFixture) -> Iterator[Telemetry]:
    """Fails the test if OpenTelemetry logged a problem (such as a context detached in the
    wrong task)."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    listener = OpenTelemetryMetrics(meter_provider, tracer_provider)
    yield Telemetry(reader, exporter, tracer_provider, listener)
    meter_provider.shutdown()
    tracer_provider.shutdown()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []


def loop_is(name: str, **more: Any) -> frozenset[tuple[str, Any]]:
    return frozenset({"anytasks.loop": name, **more}.items())


class Fixed:
    def __init__(self, delay: float) -> None:
        self.value = delay

    def delay(self) -> float:
        return self.value


@pytest.mark.virtual_time
async def test_the_metrics_of_a_run(telemetry: Telemetry) -> None:
    @anytasks.loop(seconds=10, count=3, jitter=4, random=lambda: 0.5, name="job")
    async def job() -> None:
        await anyio.sleep(13 if job.current_loop == 0 else 1)

    job.add_listener(telemetry.listener)
    await job.run()
    found = telemetry.metrics()
    # Iteration 0 runs 0-13; 1 is due at 10, runs 13-14 (3 late); 2 is due at 20, jittered
    # by 2, runs 22-23.
    assert found["anytasks.iterations"] == {
        loop_is("job", **{"anytasks.iteration.outcome": "success"}): 3
    }
    (durations,) = found["anytasks.iteration.duration"].values()
    assert (durations.count, durations.sum) == (3, 15.0)
    assert tuple(durations.explicit_bounds) == DURATION_BUCKETS
    (lateness,) = found["anytasks.lateness"].values()
    assert (lateness.count, lateness.sum) == (3, 5.0)
    assert tuple(lateness.explicit_bounds) == LATENESS_BUCKETS
    assert found["anytasks.last_success.timestamp"] == {loop_is("job"): at(23)}
    assert found["anytasks.loop_ends"] == {
        loop_is("job", **{"anytasks.end.reason": "completed"}): 1
    }
    assert found["anytasks.running"] == {loop_is("job"): 0}
    assert "anytasks.next_run.timestamp" not in found


@pytest.mark.virtual_time
async def test_running_and_the_next_run_are_observed_at_collection(telemetry: Telemetry) -> None:
    seen: list[tuple[Any, Any]] = []

    @anytasks.loop(seconds=10, count=2, name="job")
    async def job() -> None:
        await anyio.sleep(1)
        found = telemetry.metrics()
        seen.append((found["anytasks.running"], found["anytasks.next_run.timestamp"]))

    job.add_listener(telemetry.listener)
    await job.run()
    assert seen == [
        ({loop_is("job"): 1}, {loop_is("job"): at(10)}),
        ({loop_is("job"): 1}, {loop_is("job"): at(20)}),
    ]
    found = telemetry.metrics()
    assert found["anytasks.running"] == {loop_is("job"): 0}
    # An observable gauge that observes nothing has no data points in a collection.
    assert not found.get("anytasks.next_run.timestamp")


@pytest.mark.virtual_time
async def test_one_span_per_iteration(telemetry: Telemetry) -> None:
    @anytasks.loop(seconds=10, count=2, name="job")
    async def job() -> None:
        await anyio.sleep(2)

    job.add_listener(telemetry.listener)
    await job.run()
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["job", "job"]
    assert [(s.start_time, s.end_time) for s in spans] == [(ns(0), ns(2)), (ns(10), ns(12))]
    assert [dict(s.attributes or {}) for s in spans] == [
        {
            "anytasks.loop": "job",
            "anytasks.iteration.index": index,
            "anytasks.iteration.scheduled": f"2026-01-05T12:00:{index}0+00:00",
            "anytasks.iteration.lateness": 0.0,
            "anytasks.iteration.outcome": "success",
        }
        for index in (0, 1)
    ]
    assert [s.status.status_code for s in spans] == [StatusCode.UNSET] * 2
    assert [s.kind for s in spans] == [trace.SpanKind.INTERNAL] * 2
    # Each iteration is the root of a trace of its own.
    assert [s.parent for s in spans] == [None, None]
    assert spans[0].context.trace_id != spans[1].context.trace_id
    assert [s.instrumentation_scope.name for s in spans if s.instrumentation_scope] == [
        "anytasks",
        "anytasks",
    ]


@pytest.mark.virtual_time
async def test_spans_of_a_timeout_a_retry_and_a_failure(telemetry: Telemetry) -> None:
    errors = iter([ConnectionResetError("once"), ValueError("fatal")])

    @anytasks.loop(
        seconds=10, timeout=3, on_timeout="skip", backoff=lambda: Fixed(1.5), name="job"
    )
    async def job() -> None:
        if job.current_loop == 0:
            await anyio.sleep(5)  # cut at 3
        else:
            raise next(errors)  # retried after 1.5 s, then fails

    @job.error
    async def quiet(exc: Exception) -> None:
        pass

    job.add_listener(telemetry.listener)
    with pytest.raises(ValueError, match="fatal"):
        await job.run()
    timed_out, failed = telemetry.spans()
    assert (timed_out.start_time, timed_out.end_time) == (ns(0), ns(3))
    timeout = "an iteration of loop 'job' ran past its timeout of 3.0 s"
    assert (timed_out.status.status_code, timed_out.status.description) == (
        StatusCode.ERROR,
        f"IterationTimeout: {timeout}",
    )
    timeout_event, exception = timed_out.events
    assert (timeout_event.name, dict(timeout_event.attributes or {}), timeout_event.timestamp) == (
        "anytasks.timeout",
        {"anytasks.timeout.seconds": 3.0, "anytasks.timeout.action": "skip"},
        ns(3),
    )
    # The IterationTimeout is recorded, as for a timeout that ends the loop.
    assert (exception.name, exception.timestamp) == ("exception", ns(3))
    assert (exception.attributes or {})["exception.type"] == "anytasks.IterationTimeout"
    assert (exception.attributes or {})["exception.message"] == timeout
    assert (timed_out.attributes or {})["anytasks.iteration.outcome"] == "timeout"

    assert (failed.start_time, failed.end_time) == (ns(10), ns(11.5))
    assert (failed.status.status_code, failed.status.description) == (
        StatusCode.ERROR,
        "ValueError: fatal",
    )
    retry, exception = failed.events
    assert (retry.name, dict(retry.attributes or {}), retry.timestamp) == (
        "anytasks.retry",
        {
            "anytasks.retry.attempt": 1,
            "anytasks.retry.delay": 1.5,
            "exception.type": "ConnectionResetError",
            "exception.message": "once",
        },
        ns(10),
    )
    assert (exception.name, exception.timestamp) == ("exception", ns(11.5))
    assert (exception.attributes or {})["exception.type"] == "ValueError"
    assert (failed.attributes or {})["anytasks.iteration.outcome"] == "error"
    found = telemetry.metrics()
    assert found["anytasks.retries"] == {loop_is("job"): 1}
    assert found["anytasks.timeouts"] == {loop_is("job"): 1}
    assert found["anytasks.skipped"] == {loop_is("job", **{"anytasks.skip.reason": "timeout"}): 1}
    assert found["anytasks.loop_ends"] == {loop_is("job", **{"anytasks.end.reason": "failed"}): 1}


@pytest.mark.virtual_time
async def test_spans_made_in_the_body_are_children_of_the_iterations(
    telemetry: Telemetry,
) -> None:
    tracer = trace.get_tracer("app", tracer_provider=telemetry.tracer_provider)
    outer = trace.get_current_span()

    @anytasks.loop(seconds=10, count=1, name="job")
    async def job() -> None:
        with tracer.start_as_current_span("query"):
            await anyio.sleep(1)

    job.add_listener(telemetry.listener)
    await job.run()
    iteration, query = telemetry.spans()
    assert (iteration.name, query.name) == ("job", "query")
    assert query.parent == iteration.context
    # The iteration's span was current in the body only.
    assert trace.get_current_span() is outer


@pytest.mark.virtual_time
async def test_a_cancelled_iteration_ends_its_span(telemetry: Telemetry) -> None:
    current: list[trace.Span] = []

    @anytasks.loop(seconds=10, name="job")
    async def job() -> None:
        current.append(trace.get_current_span())
        await anyio.sleep(5)

    job.add_listener(telemetry.listener)
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await anyio.sleep(2)
        job.cancel()
    (span,) = telemetry.spans()
    assert current[0].get_span_context() == span.context
    assert (span.start_time, span.end_time) == (ns(0), ns(2))
    assert span.status.status_code is StatusCode.UNSET
    assert (span.attributes or {})["anytasks.iteration.outcome"] == "cancelled"


@pytest.mark.virtual_time
async def test_the_spans_of_interleaved_loops(telemetry: Telemetry) -> None:
    @anytasks.loop(seconds=10, count=2, name="a")
    async def a() -> None:
        await anyio.sleep(7)

    @anytasks.loop(seconds=4, count=3, name="b")
    async def b() -> None:
        await anyio.sleep(1)

    anytasks.add_listener(telemetry.listener)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(a.run)
            tg.start_soon(b.run)
    finally:
        anytasks.remove_listener(telemetry.listener)
    got = sorted((s.name, s.start_time, s.end_time) for s in telemetry.spans())
    assert got == [
        ("a", ns(0), ns(7)),
        ("a", ns(10), ns(17)),
        ("b", ns(0), ns(1)),
        ("b", ns(4), ns(5)),
        ("b", ns(8), ns(9)),
    ]


async def test_on_every_backend(telemetry: Telemetry) -> None:
    """Virtual time on asyncio and Trio here, real time on uvloop."""
    before = wall_now().timestamp()

    @anytasks.loop(seconds=0, count=3, name="job")
    async def job() -> None:
        pass

    job.add_listener(telemetry.listener)
    await job.run()
    spans = telemetry.spans()
    assert [(dict(s.attributes or {}))["anytasks.iteration.index"] for s in spans] == [0, 1, 2]
    found = telemetry.metrics()
    assert found["anytasks.iterations"] == {
        loop_is("job", **{"anytasks.iteration.outcome": "success"}): 3
    }
    (last_success,) = found["anytasks.last_success.timestamp"].values()
    assert before <= last_success <= wall_now().timestamp()


def test_the_global_providers_by_default() -> None:
    listener = OpenTelemetryMetrics()
    assert "ProxyTracer" in repr(listener)


def test_without_opentelemetry_the_import_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "anytasks.metrics.otel")
    with pytest.raises(ImportError) as caught:
        importlib.import_module("anytasks.metrics.otel")
    assert str(caught.value) == (
        "anytasks.metrics.otel needs the opentelemetry-api package: install `anytasks[otel]`"
    )


@pytest.mark.parametrize("where", ["loop", "global"])
async def test_a_listener_removed_during_an_iteration_ends_its_span(
    telemetry: Telemetry, where: str
) -> None:
    # It used to stay open and current for good: the parent of every later span in the
    # loop's task and in the caller, and never exported.
    listener = telemetry.listener
    outer = trace.get_current_span()
    current: list[trace.Span] = []

    @anytasks.loop(count=3, name="job")
    async def job() -> None:
        current.append(trace.get_current_span())
        if job.current_loop == 0:
            remove(listener)

    add, remove = (
        (job.add_listener, job.remove_listener)
        if where == "loop"
        else (anytasks.add_listener, anytasks.remove_listener)
    )
    add(listener)
    try:
        await job.run()
    finally:
        with contextlib.suppress(ValueError):
            anytasks.remove_listener(listener)  # a global one that the body did not remove
    # Iteration 0 is reported whole: its span ended with its outcome, and was exported.
    (span,) = telemetry.spans()
    assert (span.attributes or {})["anytasks.iteration.index"] == 0
    assert (span.attributes or {})["anytasks.iteration.outcome"] == "success"
    assert span.end_time is not None
    assert current[0].get_span_context() == span.context
    # And it is current no more: not in the later bodies, not in the caller.
    assert [s.get_span_context().is_valid for s in current[1:]] == [False, False]
    assert trace.get_current_span() is outer


@pytest.mark.virtual_time
async def test_a_listener_removed_during_an_iteration_and_added_back(
    telemetry: Telemetry,
) -> None:
    listener = telemetry.listener
    outer = trace.get_current_span()

    @anytasks.loop(seconds=10, count=3, name="job")
    async def job() -> None:
        if job.current_loop == 0:
            job.remove_listener(listener)  # still hears iteration 0 to its end
        elif job.current_loop == 1:
            job.add_listener(listener)  # hears from iteration 2 on

    job.add_listener(listener)
    await job.run()
    first, last = telemetry.spans()
    # Each listener hears an iteration whole or not at all: all of 0, nothing of 1 (which
    # began without it), all of 2.
    assert (first.start_time, first.end_time) == (ns(0), ns(0))
    assert (first.attributes or {})["anytasks.iteration.outcome"] == "success"
    assert (last.start_time, last.end_time) == (ns(20), ns(20))
    assert (last.attributes or {})["anytasks.iteration.index"] == 2
    assert trace.get_current_span() is outer


@pytest.mark.virtual_time
async def test_a_listener_removed_during_an_iteration_and_added_back_between_two(
    telemetry: Telemetry,
) -> None:
    listener = telemetry.listener

    @anytasks.loop(seconds=10, count=2, name="job")
    async def job() -> None:
        if job.current_loop == 0:
            job.remove_listener(listener)

    job.add_listener(listener)
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await anyio.sleep(5)
        job.add_listener(listener)
    first, last = telemetry.spans()
    assert (first.start_time, first.end_time) == (ns(0), ns(0))
    assert (last.start_time, last.end_time) == (ns(10), ns(10))


@pytest.mark.virtual_time
async def test_a_listener_added_during_an_iteration_sees_the_next_one(
    telemetry: Telemetry,
) -> None:
    failures = [ConnectionResetError("once")]

    @anytasks.loop(seconds=10, count=2, backoff=lambda: Fixed(1), name="job")
    async def job() -> None:
        if failures:  # the first attempt
            job.add_listener(telemetry.listener)
            raise failures.pop()

    await job.run()
    # The first iteration (and its retry) began unobserved: the second is reported.
    (span,) = telemetry.spans()
    assert (span.attributes or {})["anytasks.iteration.index"] == 1
    found = telemetry.metrics()
    assert "anytasks.retries" not in found
    assert found["anytasks.iterations"] == {
        loop_is("job", **{"anytasks.iteration.outcome": "success"}): 1
    }
