"""Prometheus metrics: loops run on virtual time, then a registry is scraped and parsed."""

from __future__ import annotations

import datetime
import importlib
import subprocess
import sys

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import anytasks
from anytasks.metrics import DURATION_BUCKETS, LATENESS_BUCKETS
from anytasks.metrics.prometheus import PrometheusMetrics
from anytasks.testing import wall_now

pytestmark = pytest.mark.anyio

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> float:
    """The Unix time ``seconds`` after the virtual clock's start."""
    return (T0 + datetime.timedelta(seconds=seconds)).timestamp()


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    """The samples of a scrape, as ``name{label="value",...}`` (labels sorted): value.

    The ``_created`` samples (real time at which a series appeared) are left out.
    """
    text = generate_latest(registry).decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def named(samples: dict[str, float], prefix: str) -> dict[str, float]:
    return {key: value for key, value in samples.items() if key.startswith(prefix)}


class Fixed:
    def __init__(self, delay: float) -> None:
        self.value = delay

    def delay(self) -> float:
        return self.value


@pytest.mark.virtual_time
async def test_iterations_durations_lateness_and_the_last_success() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)

    @anytasks.loop(seconds=10, count=3, jitter=4, random=lambda: 0.5, name="job")
    async def job() -> None:
        await anyio.sleep(13 if job.current_loop == 0 else 1)

    job.add_listener(metrics)
    await job.run()
    samples = scrape(registry)
    # Iteration 0 runs 0-13; 1 is due at 10, runs 13-14 (3 late); 2 is due at 20, jittered
    # by 2, runs 22-23.
    assert named(samples, "anytasks_iterations_total") == {
        'anytasks_iterations_total{loop="job",outcome="success"}': 3.0
    }
    assert samples['anytasks_iteration_duration_seconds_count{loop="job"}'] == 3.0
    assert samples['anytasks_iteration_duration_seconds_sum{loop="job"}'] == 15.0
    assert samples['anytasks_iteration_duration_seconds_bucket{le="1.0",loop="job"}'] == 2.0
    assert samples['anytasks_iteration_duration_seconds_bucket{le="10.0",loop="job"}'] == 2.0
    assert samples['anytasks_iteration_duration_seconds_bucket{le="30.0",loop="job"}'] == 3.0
    assert samples['anytasks_lateness_seconds_count{loop="job"}'] == 3.0
    assert samples['anytasks_lateness_seconds_sum{loop="job"}'] == 5.0
    assert samples['anytasks_lateness_seconds_bucket{le="0.001",loop="job"}'] == 1.0
    assert samples['anytasks_lateness_seconds_bucket{le="2.5",loop="job"}'] == 2.0
    assert samples['anytasks_lateness_seconds_bucket{le="5.0",loop="job"}'] == 3.0
    assert samples['anytasks_last_success_timestamp_seconds{loop="job"}'] == at(23)
    assert named(samples, "anytasks_loop_ends_total") == {
        'anytasks_loop_ends_total{loop="job",reason="completed"}': 1.0
    }
    assert samples['anytasks_running{loop="job"}'] == 0.0
    assert named(samples, "anytasks_next_run") == {}


@pytest.mark.virtual_time
async def test_running_and_the_next_run_are_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    seen: list[dict[str, float]] = []

    @anytasks.loop(seconds=10, count=2, name="job")
    async def job() -> None:
        await anyio.sleep(1)
        seen.append(named(scrape(registry), "anytasks_"))

    @job.before_loop
    async def prepare() -> None:
        seen.append(named(scrape(registry), "anytasks_"))

    job.add_listener(PrometheusMetrics(registry))
    await job.run()
    after = scrape(registry)
    running = [s['anytasks_running{loop="job"}'] for s in seen]
    next_run = [s.get('anytasks_next_run_timestamp_seconds{loop="job"}') for s in seen]
    # In before_loop nothing is due yet; during the last iteration, nothing more is.
    assert running == [1.0, 1.0, 1.0]
    assert next_run == [None, at(10), at(20)]
    assert after['anytasks_running{loop="job"}'] == 0.0
    assert named(after, "anytasks_next_run") == {}
    # The success of iteration 0 (at 1) was recorded before the scrape in iteration 1.
    assert seen[2]['anytasks_last_success_timestamp_seconds{loop="job"}'] == at(1)
    assert after['anytasks_last_success_timestamp_seconds{loop="job"}'] == at(11)


@pytest.mark.virtual_time
async def test_timeouts_retries_and_a_failure() -> None:
    registry = CollectorRegistry()
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

    job.add_listener(PrometheusMetrics(registry))
    with pytest.raises(ValueError, match="fatal"):
        await job.run()
    samples = scrape(registry)
    assert named(samples, "anytasks_iterations_total") == {
        'anytasks_iterations_total{loop="job",outcome="timeout"}': 1.0,
        'anytasks_iterations_total{loop="job",outcome="error"}': 1.0,
    }
    assert named(samples, "anytasks_skipped_total") == {
        'anytasks_skipped_total{loop="job",reason="timeout"}': 1.0
    }
    assert samples['anytasks_timeouts_total{loop="job"}'] == 1.0
    assert samples['anytasks_retries_total{loop="job"}'] == 1.0
    assert samples['anytasks_iteration_duration_seconds_sum{loop="job"}'] == 3.0 + 1.5
    assert named(samples, "anytasks_loop_ends_total") == {
        'anytasks_loop_ends_total{loop="job",reason="failed"}': 1.0
    }
    assert named(samples, "anytasks_last_success") == {}


@pytest.mark.virtual_time
async def test_missed_and_paused_slots_by_reason() -> None:
    registry = CollectorRegistry()

    @anytasks.loop(seconds=10, count=3, overrun="skip", name="job")
    async def job() -> None:
        if job.current_loop == 0:
            await anyio.sleep(35)
        elif job.current_loop == 1:
            job.pause()

    job.add_listener(PrometheusMetrics(registry))
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await anyio.sleep(65)  # paused at 40, resumed at 65: slots 50 and 60 passed
        job.resume()
    assert named(scrape(registry), "anytasks_skipped_total") == {
        'anytasks_skipped_total{loop="job",reason="missed"}': 3.0,
        'anytasks_skipped_total{loop="job",reason="paused"}': 2.0,
    }


@pytest.mark.virtual_time
async def test_two_registries_side_by_side() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    both, one = PrometheusMetrics(first), PrometheusMetrics(second)

    @anytasks.loop(seconds=10, count=2, name="a")
    async def a() -> None:
        pass

    @anytasks.loop(seconds=10, count=1, name="b")
    async def b() -> None:
        pass

    a.add_listener(both)
    b.add_listener(both)
    b.add_listener(one)
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.run)
        tg.start_soon(b.run)
    assert named(scrape(first), "anytasks_iterations_total") == {
        'anytasks_iterations_total{loop="a",outcome="success"}': 2.0,
        'anytasks_iterations_total{loop="b",outcome="success"}': 1.0,
    }
    assert named(scrape(second), "anytasks_iterations_total") == {
        'anytasks_iterations_total{loop="b",outcome="success"}': 1.0,
    }
    assert named(scrape(first), "anytasks_running") == {
        'anytasks_running{loop="a"}': 0.0,
        'anytasks_running{loop="b"}': 0.0,
    }
    assert named(scrape(second), "anytasks_running") == {'anytasks_running{loop="b"}': 0.0}


def test_a_second_instance_on_one_registry_registers_nothing() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    assert repr(metrics) == f"<PrometheusMetrics registry={registry!r}>"
    before = generate_latest(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusMetrics(registry)
    assert generate_latest(registry) == before


@pytest.mark.virtual_time
async def test_loops_that_share_a_name_share_their_series() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry)
    readings: list[dict[str, float]] = []

    @anytasks.loop(seconds=10, count=1, name="shared")
    async def slow() -> None:
        await anyio.sleep(8)

    @anytasks.loop(seconds=5, count=2, name="shared")
    async def fast() -> None:
        await anyio.sleep(1)
        readings.append(named(scrape(registry), "anytasks_"))

    slow.add_listener(metrics)
    fast.add_listener(metrics)
    async with anyio.create_task_group() as tg:
        tg.start_soon(slow.run)
        tg.start_soon(fast.run)
    # At 1: both run, next due at 5 (fast) and 10 (slow); at 6, slow's last iteration runs.
    assert [r['anytasks_running{loop="shared"}'] for r in readings] == [1.0, 1.0]
    assert [r['anytasks_next_run_timestamp_seconds{loop="shared"}'] for r in readings] == [
        at(5),
        at(10),
    ]
    samples = scrape(registry)
    assert samples['anytasks_iterations_total{loop="shared",outcome="success"}'] == 3.0
    assert samples['anytasks_running{loop="shared"}'] == 0.0


async def test_on_every_backend_the_time_is_the_event_loops_wall_clock() -> None:
    """Virtual on asyncio and Trio here, real on uvloop."""
    registry = CollectorRegistry()
    before = wall_now().timestamp()

    @anytasks.loop(seconds=0, count=3, name="job")
    async def job() -> None:
        pass

    job.add_listener(PrometheusMetrics(registry))
    await job.run()
    samples = scrape(registry)
    assert samples['anytasks_iterations_total{loop="job",outcome="success"}'] == 3.0
    assert samples['anytasks_lateness_seconds_count{loop="job"}'] == 3.0
    assert samples['anytasks_loop_ends_total{loop="job",reason="completed"}'] == 1.0
    assert samples['anytasks_running{loop="job"}'] == 0.0
    last_success = samples['anytasks_last_success_timestamp_seconds{loop="job"}']
    assert before <= last_success <= wall_now().timestamp()


@pytest.mark.virtual_time
async def test_custom_buckets() -> None:
    registry = CollectorRegistry()

    @anytasks.loop(seconds=10, count=1, name="job")
    async def job() -> None:
        await anyio.sleep(3)

    job.add_listener(PrometheusMetrics(registry, duration_buckets=[1, 5], lateness_buckets=[2]))
    await job.run()
    samples = scrape(registry)
    assert named(samples, "anytasks_iteration_duration_seconds_bucket") == {
        'anytasks_iteration_duration_seconds_bucket{le="1.0",loop="job"}': 0.0,
        'anytasks_iteration_duration_seconds_bucket{le="5.0",loop="job"}': 1.0,
        'anytasks_iteration_duration_seconds_bucket{le="+Inf",loop="job"}': 1.0,
    }
    assert len(named(samples, "anytasks_lateness_seconds_bucket")) == 2


def test_the_default_buckets_span_5_ms_to_10_minutes() -> None:
    assert (DURATION_BUCKETS[0], DURATION_BUCKETS[-1]) == (0.005, 600.0)
    assert (LATENESS_BUCKETS[0], LATENESS_BUCKETS[-1]) == (0.001, 600.0)
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)
    assert list(LATENESS_BUCKETS) == sorted(LATENESS_BUCKETS)


def test_the_default_registry_and_a_global_listener() -> None:
    """What ``anytasks run --metrics-port`` does, in a process of its own (the default
    registry keeps what is registered in it)."""
    code = """
import anyio, prometheus_client
import anytasks
from anytasks.metrics.prometheus import PrometheusMetrics
from anytasks.testing import wall_now

metrics = anytasks.add_listener(PrometheusMetrics())
assert metrics.registry is prometheus_client.REGISTRY

@anytasks.loop(seconds=5, count=2, name="job")
async def job():
    pass

anytasks.testing.run(job.run, backend="asyncio")
print(prometheus_client.generate_latest().decode())
"""
    out = subprocess.run(
        [sys.executable, "-c", "import anytasks.testing\n" + code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 'anytasks_iterations_total{loop="job",outcome="success"} 2.0' in out
    assert "python_info" in out  # the default collectors are there too


def test_without_prometheus_client_the_import_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "anytasks.metrics.prometheus")
    message = (
        "anytasks.metrics.prometheus needs the prometheus-client package: "
        "install `anytasks[prometheus]`"
    )
    with pytest.raises(ImportError, match=f"^{message.replace('[', '.').replace(']', '.')}$"):
        importlib.import_module("anytasks.metrics.prometheus")


def test_import_anytasks_imports_no_metrics_library() -> None:
    code = (
        "import sys, anytasks, anytasks.metrics; "
        "found = {'prometheus_client', 'opentelemetry'} & {m.split('.')[0] for m in sys.modules}; "
        "assert not found, found"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
