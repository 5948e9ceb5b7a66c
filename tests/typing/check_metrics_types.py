"""The metrics listeners as the type checkers see them (checked, not run)."""

from __future__ import annotations

from typing import Any

import prometheus_client
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from typing_extensions import assert_type

import anytasks
from anytasks.metrics import DURATION_BUCKETS, LATENESS_BUCKETS
from anytasks.metrics.otel import OpenTelemetryMetrics
from anytasks.metrics.prometheus import PrometheusMetrics


def check_prometheus(job: anytasks.Loop[[], Any]) -> None:
    # What `anytasks run --metrics-port` does: the listener comes back as itself.
    metrics = anytasks.add_listener(PrometheusMetrics())
    assert_type(metrics, PrometheusMetrics)
    assert_type(metrics.registry, prometheus_client.CollectorRegistry)
    job.add_listener(PrometheusMetrics(prometheus_client.CollectorRegistry()))
    PrometheusMetrics(duration_buckets=[1, 10], lateness_buckets=LATENESS_BUCKETS)
    PrometheusMetrics(prometheus_client.CollectorRegistry(), DURATION_BUCKETS)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    anytasks.remove_listener(metrics)


def check_otel(job: anytasks.Loop[[], Any]) -> None:
    listener = anytasks.add_listener(OpenTelemetryMetrics())
    assert_type(listener, OpenTelemetryMetrics)
    job.add_listener(OpenTelemetryMetrics(MeterProvider(), TracerProvider()))
    OpenTelemetryMetrics(tracer_provider=TracerProvider())
    OpenTelemetryMetrics(TracerProvider())  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
