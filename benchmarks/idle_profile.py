"""Where the bytes and the collector's pauses of N idle loops go.

One configuration per process: ``n`` loops at ``interval`` (default 10 000 at 1 s) are
started, watched until each has run once, and then looked at while idle:

- **bytes** (``tracemalloc``, on by default): what was allocated since just before the first
  loop was made and is still alive half an interval after the last loop's first iteration,
  per loop, grouped by the allocating ``file:line`` (the top ``--top`` lines) and by package
  (anytasks, AnyIO, asyncio, Trio, the harness, ...);
- **objects** (``gc.get_objects()``): the objects that the cyclic collector tracks, per loop,
  by type: what every full collection walks again;
- **collections** (``gc.callbacks``, with ``tracemalloc`` stopped first): every collection in
  a steady ``--window``, by generation: how many, their total and longest pause, and the share
  of the window's CPU they took;
- **RSS** (only with ``--no-trace``, since ``tracemalloc`` has its own overhead): the resident
  set size at the idle point minus just before the first loop, per loop.

Modes (``--mode``), each on the backends it runs on:

- ``host``: ``loop.start(i)`` inside ``async with anytasks.background():`` (every backend);
- ``taskgroup``: ``task_group.start_soon(loop.run, i)`` in an AnyIO task group (W2's
  ``anytasks``);
- ``start``: ``loop.start(i)`` with no host, a plain ``asyncio.Task`` (asyncio and uvloop);
- ``bare``, ``bare_anyio``, ``naive``, ``deadline``, ``discord``: as in ``_impls.py``, for
  comparison;
- ``proto_heap``, ``proto_wheel`` (and their ``_noctx`` variants): the prototype host of
  ``timer_host.py``.

Usage::

    python benchmarks/idle_profile.py --backend asyncio --mode host [--n N] [--top 25]
    python benchmarks/idle_profile.py --backend trio --mode host --no-trace --window 10

Prints a readable report; ``--json`` prints one JSON line instead. To compare two trees, run
it twice with ``PYTHONPATH=/path/to/src`` (the later run names its tree in ``anytasks_file``).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _common import BACKENDS, Backend, native_sleep, rss_kib, run_backend, settle, versions
from _impls import SUPPORTED, open_group
from _many import Recorder

MODES = (
    "host",
    "taskgroup",
    "start",
    "bare",
    "bare_anyio",
    "naive",
    "deadline",
    "discord",
    "proto_heap",
    "proto_wheel",
    "proto_heap_noctx",
    "proto_wheel_noctx",
)
# The mode's implementation in _impls.py.
_IMPL = {
    "host": "anytasks_host",
    "taskgroup": "anytasks",
    "start": "anytasks_task",
    "bare": "bare",
    "bare_anyio": "bare_anyio",
    "naive": "naive",
    "deadline": "deadline",
    "discord": "discord",
    **{name: name for name in MODES if name.startswith("proto_")},
}
_BODILESS = ("bare", "bare_anyio")

# Where an allocating file belongs, by the first of these path parts it contains.
_SOURCES = (
    ("/anytasks/", "anytasks"),
    ("/anyio/", "anyio"),
    ("/asyncio/", "asyncio"),
    ("/uvloop/", "uvloop"),
    ("/trio/", "trio"),
    ("/discord/", "discord"),
    ("/benchmarks/", "harness"),
    ("tracemalloc", "tracemalloc"),
)


def source_of(filename: str) -> str:
    for part, name in _SOURCES:
        if part in filename:
            return name
    return "other (stdlib)" if "/lib/python" in filename else "other"


def supports(mode: str, backend: Backend) -> bool:
    return backend in SUPPORTED.get(_IMPL[mode], ())


def group_for(mode: str, backend: Backend, interval: float, body: Any) -> Any:
    return open_group(_IMPL[mode], backend, interval, body)


class CollectionLog:
    """Every collection of the cyclic collector while the block runs: generation, seconds."""

    def __init__(self) -> None:
        self.collections: list[tuple[int, float, int]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.collections.append((info["generation"], pause, info.get("collected", 0)))

    def __enter__(self) -> CollectionLog:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self, cpu_s: float, window_s: float) -> dict[str, Any]:
        by_generation: dict[str, Any] = {}
        for generation in (0, 1, 2):
            pauses = [p for g, p, _ in self.collections if g == generation]
            collected = sum(c for g, _, c in self.collections if g == generation)
            by_generation[f"gen{generation}"] = {
                "collected": collected,
                "count": len(pauses),
                "per_s": len(pauses) / window_s,
                "total_ms": sum(pauses) * 1000,
                "max_ms": max(pauses, default=0.0) * 1000,
                "mean_ms": sum(pauses) / len(pauses) * 1000 if pauses else 0.0,
            }
        total = sum(p for _, p, _ in self.collections)
        return {
            "window_s": window_s,
            "window_cpu_s": cpu_s,
            "gc_total_ms": total * 1000,
            "gc_share_of_cpu": total / cpu_s if cpu_s else None,
            "collected": sum(c for _, _, c in self.collections),
            **by_generation,
        }


def type_counts() -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        counts[f"{kind.__module__}.{kind.__qualname__}"] += 1
    return counts


async def profile(args: argparse.Namespace) -> dict[str, Any]:
    backend: Backend = args.backend
    mode: str = args.mode
    n: int = args.n
    interval: float = args.interval
    sleep = native_sleep(backend)
    trace = not args.no_trace

    # Untimed warm-up: one loop through its first iteration, so lazy imports and first-use
    # caches do not count as per-loop cost.
    warm = Recorder(1, interval, "count")
    async with group_for(mode, backend, interval, warm.make_body()) as group:
        group.start(0)
        for _ in range(1000):
            await sleep(0.001)
            if mode in _BODILESS or warm.ran_once:
                break
        group.cancel()

    recorder = Recorder(n, interval, "count")
    body = recorder.make_body()
    settle()
    objects_before = type_counts()
    rss_before = rss_kib()
    snapshot_before = snapshot_after = None
    if trace:
        tracemalloc.start(args.frames)
        snapshot_before = tracemalloc.take_snapshot()
    result: dict[str, Any] = {
        "backend": backend,
        "mode": mode,
        "n": n,
        "interval": interval,
        "gc_thresholds": list(gc.get_threshold()),
    }
    t0 = time.perf_counter()
    async with group_for(mode, backend, interval, body) as group:
        for i in range(n):
            group.start(i)
        result["start_all_s"] = time.perf_counter() - t0
        deadline = t0 + 60 + 2 * interval
        if mode in _BODILESS:
            await sleep(interval)
        else:
            while recorder.all_ran_at is None and time.perf_counter() < deadline:
                await sleep(0.05)
            result["all_ran_once"] = recorder.all_ran_at is not None
            # The idle point: half an interval after the last first iteration.
            await sleep(interval / 2)
        if trace:
            snapshot_after = tracemalloc.take_snapshot()
            tracemalloc.stop()
        else:
            result["rss_per_loop_kib"] = (rss_kib() - rss_before) / n
        # The harness's own per-loop lists (counts, first) are a few bytes per loop; they are
        # shown as "harness" rather than left out.
        objects_after = type_counts()
        tracked = len(gc.get_objects())
        if snapshot_before is not None and snapshot_after is not None:
            result.update(_bytes(snapshot_before, snapshot_after, n, args))
        snapshot_before = snapshot_after = None
        delta = objects_after - objects_before
        result["gc_objects_per_loop"] = sum(delta.values()) / n
        result["gc_objects_by_type"] = [
            (name, count / n) for name, count in delta.most_common(args.top) if count >= n / 20
        ]
        result["gc_tracked_total"] = tracked
        if args.window > 0:
            gc.collect()
            cpu0, wall0, iterations0 = (
                time.process_time(),
                time.perf_counter(),
                sum(recorder.counts),
            )
            with CollectionLog() as log:
                await sleep(args.window)
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - wall0
            result["collections"] = log.summary(cpu, wall)
            result["window_iterations"] = sum(recorder.counts) - iterations0
        cancel0 = time.perf_counter()
        group.cancel()
    result["cancel_all_s"] = time.perf_counter() - cancel0
    import anytasks

    result["anytasks_file"] = str(Path(anytasks.__file__).parent)
    result["versions"] = versions()
    return result


def _bytes(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(ignore), after.filter_traces(ignore)
    stats = after.compare_to(before, "traceback" if args.frames > 1 else "lineno")
    total = sum(s.size_diff for s in stats)
    by_source: collections.Counter[str] = collections.Counter()
    for stat in stats:
        by_source[source_of(stat.traceback[-1].filename)] += stat.size_diff
    top = []
    for stat in sorted(stats, key=lambda s: s.size_diff, reverse=True)[: args.top]:
        frames = [f"{_short(f.filename)}:{f.lineno}" for f in reversed(stat.traceback)]
        top.append(
            {
                "where": " <- ".join(frames) if args.frames > 1 else frames[0],
                "bytes_per_loop": stat.size_diff / n,
                "blocks_per_loop": stat.count_diff / n,
                "line": _line(stat.traceback[-1]) if args.frames == 1 else "",
            }
        )
    return {
        "traced_bytes_per_loop": total / n,
        "bytes_by_source": {k: v / n for k, v in by_source.most_common()},
        "bytes_by_line": top,
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        index = filename.rfind(marker)
        if index >= 0:
            rest = filename[index + len(marker) :]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    return Path(filename).name


def _line(frame: tracemalloc.Frame) -> str:
    import linecache

    return linecache.getline(frame.filename, frame.lineno).strip()[:70]


def report(result: dict[str, Any]) -> str:
    out = [
        f"{result['mode']} on {result['backend']}: {result['n']} loops at "
        f"{result['interval']} s (anytasks from {result['anytasks_file']})",
        f"  start all: {result['start_all_s']:.3f} s, cancel all: {result['cancel_all_s']:.3f} s",
    ]
    if "rss_per_loop_kib" in result:
        out.append(f"  RSS per loop at the idle point: {result['rss_per_loop_kib']:.2f} KiB")
    if "traced_bytes_per_loop" in result:
        out.append(f"  traced bytes per loop: {result['traced_bytes_per_loop']:.0f} B")
        sources = ", ".join(f"{k} {v:.0f}" for k, v in result["bytes_by_source"].items())
        out.append(f"  by source (B/loop): {sources}")
        out.append("  by line (B/loop, blocks/loop):")
        for row in result["bytes_by_line"]:
            out.append(
                f"    {row['bytes_per_loop']:7.1f} {row['blocks_per_loop']:5.2f}  "
                f"{row['where']}  {row['line']}"
            )
    out.append(
        f"  gc-tracked objects per loop: {result['gc_objects_per_loop']:.2f} "
        f"(tracked in all: {result['gc_tracked_total']})"
    )
    for name, count in result["gc_objects_by_type"]:
        out.append(f"    {count:5.2f}  {name}")
    if "collections" in result:
        c = result["collections"]
        out.append(
            f"  collections over {c['window_s']:.1f} s ({result['window_iterations']} "
            f"iterations, CPU {c['window_cpu_s']:.2f} s): {c['gc_total_ms']:.0f} ms in the "
            f"collector, {100 * (c['gc_share_of_cpu'] or 0):.0f} % of the CPU"
        )
        for generation in ("gen0", "gen1", "gen2"):
            g = c[generation]
            out.append(
                f"    {generation}: {g['count']} ({g['per_s']:.1f}/s), total "
                f"{g['total_ms']:.0f} ms, mean {g['mean_ms']:.1f} ms, max {g['max_ms']:.1f} ms, "
                f"collected {g['collected']} objects"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--mode", default="host", choices=MODES)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=5.0, help="steady window, s (0: none)")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--frames", type=int, default=1, help="tracemalloc frames per trace")
    parser.add_argument("--no-trace", action="store_true", help="RSS instead of tracemalloc")
    parser.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N, 50, 100) first")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not supports(args.mode, args.backend):
        sys.exit(f"{args.mode!r} does not run on {args.backend!r}")
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, 50, 100)

    async def run() -> dict[str, Any]:
        return await profile(args)

    result: dict[str, Any] = run_backend(args.backend, run)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
