"""What every worker shares: running a backend, reading memory and CPU, describing the setup."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from typing import Any, Literal

Backend = Literal["asyncio", "uvloop", "trio"]
BACKENDS: tuple[Backend, ...] = ("asyncio", "uvloop", "trio")

# The distributions whose versions go into every result.
DISTRIBUTIONS = ("anytasks", "anyio", "trio", "uvloop", "discord.py", "trio-util", "sniffio")

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def run_backend(backend: Backend, main: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``main()`` on ``backend`` and return its result.

    Every implementation goes through this one function, so that a difference between
    two implementations on the same backend is never a difference in how the event
    loop was set up. AnyIO needs no ``anyio.run()``: it detects the running loop.
    """
    if backend == "trio":
        import trio

        return trio.run(main)
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if backend == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    event_loop = factory()
    try:
        asyncio.set_event_loop(event_loop)
        return event_loop.run_until_complete(main())
    finally:
        asyncio.set_event_loop(None)
        event_loop.close()


def native_sleep(backend: Backend) -> Callable[[float], Awaitable[None]]:
    """The backend's own ``sleep``, for the harness that watches the loops."""
    if backend == "trio":
        import trio

        return trio.sleep
    return asyncio.sleep


def rss_kib() -> int:
    """The current resident set size of this process, in KiB."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_KIB
    except OSError:  # not Linux: the peak is the best we have
        return peak_rss_kib()


def peak_rss_kib() -> int:
    """The peak resident set size of this process so far, in KiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def settle() -> None:
    """Collect garbage so that a measurement does not pay for earlier allocations."""
    gc.collect()
    gc.collect()


def versions() -> dict[str, Any]:
    """Python, platform and the versions of the compared packages."""
    packages: dict[str, str | None] = {}
    for name in DISTRIBUTIONS:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": packages,
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, linearly interpolated."""
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ``ys`` against ``xs``."""
    n = len(xs)
    if n < 2:
        return math.nan
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx if sxx else math.nan


def emit(record: dict[str, Any]) -> None:
    """Print the worker's one JSON line, with the versions it ran with."""
    record["versions"] = versions()
    record["timestamp"] = time.time()
    print(json.dumps(record, allow_nan=True), flush=True)
