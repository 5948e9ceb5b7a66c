"""The harness of the many-loop workloads (W2, W3, W4): start N loops, watch, cancel.

The body that every implementation runs counts its calls per loop and, when asked,
records how late each iteration was against the loop's ideal schedule: the moment of
its first iteration plus ``k * interval``. The harness itself is one more task on
the same event loop that wakes every 100 ms to sample the RSS.
"""

from __future__ import annotations

import gc
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from _common import Backend, native_sleep, peak_rss_kib, rss_kib, settle
from _impls import BODILESS, Body, open_group

Recording = Literal["count", "lateness", "trace"]

_POLL = 0.1


class Recorder:
    """Per-loop iteration counts and, optionally, lateness samples.

    ``count`` keeps the body minimal (W2: CPU and memory per loop); ``lateness``
    appends one float per iteration after the first (W4); ``trace`` also keeps the
    elapsed time of each sample and each loop's last lateness (W3: drift).
    """

    def __init__(self, n: int, interval: float, recording: Recording) -> None:
        self.n = n
        self.interval = interval
        self.recording = recording
        self.counts = [0] * n
        self.first = [0.0] * n
        self.last_late = [0.0] * n
        self.late = array("d")
        self.elapsed = array("d")
        self.ran_once = 0
        self.all_ran_at: float | None = None

    def iterations(self) -> int:
        return sum(self.counts)

    def make_body(self) -> Body:
        counts = self.counts
        first = self.first
        last_late = self.last_late
        late = self.late
        elapsed = self.elapsed
        interval = self.interval
        perf_counter = time.perf_counter

        def first_run(i: int, now: float) -> None:
            first[i] = now
            self.ran_once += 1
            if self.ran_once == self.n:
                self.all_ran_at = now

        if self.recording == "count":

            async def count_body(i: int) -> None:
                k = counts[i]
                counts[i] = k + 1
                if not k:
                    first_run(i, perf_counter())

            return count_body

        if self.recording == "lateness":

            async def lateness_body(i: int) -> None:
                now = perf_counter()
                k = counts[i]
                counts[i] = k + 1
                if k:
                    late.append(now - first[i] - k * interval)
                else:
                    first_run(i, now)

            return lateness_body

        async def trace_body(i: int) -> None:
            now = perf_counter()
            k = counts[i]
            counts[i] = k + 1
            if k:
                since_first = now - first[i]
                lateness = since_first - k * interval
                late.append(lateness)
                elapsed.append(since_first)
                last_late[i] = lateness
            else:
                first_run(i, now)

        return trace_body


@dataclass
class Observation:
    """What the harness saw, in seconds and KiB, relative to the start of loop creation."""

    recorder: Recorder
    start_all_s: float = 0.0
    all_ran_once_s: float | None = None
    cancel_all_s: float = 0.0
    rss_before_kib: int = 0
    rss_peak_kib: int = 0
    ru_maxrss_kib: int = 0
    window_wall_s: float | None = None
    window_cpu_s: float | None = None
    window_iterations: int | None = None
    window_gc_s: float | None = None
    # Per generation: collections, their total and longest pause (ms), in the window.
    window_gc: dict[str, dict[str, float]] | None = None
    # How many lateness samples had been recorded when the steady window began.
    window_first_sample: int = 0

    def summary(self) -> dict[str, Any]:
        n = self.recorder.n
        increase = self.rss_peak_kib - self.rss_before_kib
        result: dict[str, Any] = {
            "start_all_s": self.start_all_s,
            "all_ran_once_s": self.all_ran_once_s,
            "cancel_all_s": self.cancel_all_s,
            "rss_before_mib": self.rss_before_kib / 1024,
            "rss_peak_mib": self.rss_peak_kib / 1024,
            "ru_maxrss_mib": self.ru_maxrss_kib / 1024,
            "rss_per_loop_kib": increase / n,
            "loops_ran_once": self.recorder.ran_once,
            "iterations": self.recorder.iterations(),
        }
        if self.window_wall_s and self.window_cpu_s is not None and self.window_iterations:
            result.update(
                window_wall_s=self.window_wall_s,
                window_cpu_s=self.window_cpu_s,
                window_iterations=self.window_iterations,
                window_gc_s=self.window_gc_s,
                window_gc=self.window_gc,
                gc_share_of_cpu=(self.window_gc_s or 0.0) / self.window_cpu_s
                if self.window_cpu_s
                else None,
                cpu_s_per_1000_iter=self.window_cpu_s / self.window_iterations * 1000,
                cpu_s_per_s=self.window_cpu_s / self.window_wall_s,
                iterations_per_cpu_s=self.window_iterations / self.window_cpu_s
                if self.window_cpu_s
                else None,
            )
        return result


async def observe(
    impl: str,
    backend: Backend,
    *,
    n: int,
    interval: float,
    window: float,
    recording: Recording,
    first_run_timeout: float,
    spread: float = 0.0,
) -> Observation:
    """Start ``n`` loops, wait until each has run once, watch a steady ``window``, cancel.

    The steady window begins half an interval after the last loop's first iteration,
    so that it does not cut through the burst of first iterations. A bodiless task
    (``bare``, ``bare_anyio``) is watched for one interval, to measure its memory only.

    With ``spread``, loop ``i`` is started ``spread * i / n`` seconds after the first (in a
    thousand steps), so that every implementation's loops are due at the same, evenly spread
    moments; without it they are all started at once, and how the iterations of later seconds
    bunch depends on how fast an implementation starts its loops and runs their first
    iterations.
    """
    sleep = native_sleep(backend)
    await _warm_up(impl, backend, interval, recording)
    recorder = Recorder(n, interval, recording)
    body = recorder.make_body()
    seen = Observation(recorder)
    settle()
    seen.rss_before_kib = peak = rss_kib()
    t0 = time.perf_counter()

    async def watch_until(deadline: float, stop: Callable[[], bool] = lambda: False) -> None:
        nonlocal peak
        while not stop():
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            await sleep(min(_POLL, remaining))
            peak = max(peak, rss_kib())

    async with open_group(impl, backend, interval, body) as group:
        step = max(1, n // 1000)
        for i in range(n):
            if spread and not i % step:
                delay = t0 + spread * i / n - time.perf_counter()
                if delay > 0:
                    await sleep(delay)
            group.start(i)
        seen.start_all_s = time.perf_counter() - t0
        peak = max(peak, rss_kib())
        if impl in BODILESS:
            await watch_until(time.perf_counter() + interval)
        else:
            await watch_until(t0 + first_run_timeout, lambda: recorder.all_ran_at is not None)
            if recorder.all_ran_at is not None:
                seen.all_ran_once_s = recorder.all_ran_at - t0
            await watch_until((recorder.all_ran_at or time.perf_counter()) + interval / 2)
            seen.window_first_sample = len(recorder.late)
            cpu0, wall0, iterations0 = (
                time.process_time(),
                time.perf_counter(),
                sum(recorder.counts),
            )
            with _GcTimer() as gc_timer:
                await watch_until(wall0 + window)
            seen.window_gc_s = gc_timer.seconds
            seen.window_gc = gc_timer.by_generation()
            seen.window_cpu_s = time.process_time() - cpu0
            seen.window_wall_s = time.perf_counter() - wall0
            seen.window_iterations = sum(recorder.counts) - iterations0
        peak = max(peak, rss_kib())
        seen.ru_maxrss_kib = peak_rss_kib()
        cancel0 = time.perf_counter()
        group.cancel()
    seen.cancel_all_s = time.perf_counter() - cancel0
    seen.rss_peak_kib = peak
    return seen


class _GcTimer:
    """Adds up the time spent in the cyclic garbage collector while the block runs, in all
    and per generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        self._pauses: tuple[list[float], ...] = ([], [], [])

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.seconds += pause
            self._pauses[info["generation"]].append(pause)

    def by_generation(self) -> dict[str, dict[str, float]]:
        return {
            f"gen{generation}": {
                "count": len(pauses),
                "total_ms": sum(pauses) * 1e3,
                "max_ms": max(pauses, default=0.0) * 1e3,
            }
            for generation, pauses in enumerate(self._pauses)
        }

    def __enter__(self) -> _GcTimer:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)


async def _warm_up(impl: str, backend: Backend, interval: float, recording: Recording) -> None:
    """Run one loop through its first iteration and cancel it, untimed.

    Lazy imports and first-use caches (AnyIO loads its backend module on first use,
    discord.py its backoff's random generator...) then do not count as per-loop cost.
    """
    sleep = native_sleep(backend)
    recorder = Recorder(1, interval, recording)
    async with open_group(impl, backend, interval, recorder.make_body()) as group:
        group.start(0)
        for _ in range(1000):
            await sleep(0.001)
            if impl in BODILESS or recorder.ran_once:
                break
        group.cancel()


def base_record(workload: str, impl: str, backend: Backend, **params: Any) -> dict[str, Any]:
    return {"workload": workload, "impl": impl, "backend": backend, **params}
