"""A prototype of issue 19's design, measured before anyone builds it into the engine.

One *host* keeps N idle periodic jobs in ONE timer structure served by ONE task of its own, and
gives a job a task only while its body runs (``history/2026-12-07-idle-loops-profile.md``, "one
timer per host, a task only while a body runs"). It is a benchmark, not library code: no hooks,
states, errors beyond a count, leases or stop/restart; only what an idle loop would keep and what
an iteration would cost. Each backend's own primitives are used directly: on asyncio (and uvloop)
``loop.create_task(coro, context=...)``, ``loop.call_at()`` and a future for the host's wait; on
Trio a nursery's ``start_soon`` and a cancel scope whose deadline is the host's wait.

What a job keeps while idle (`Job`, ``__slots__``): its body and argument, its schedule position
(the grid's origin ``first``, the index ``k`` of its next slot and the interval: the next due time
is always ``first + k * interval``, so it cannot drift; a job behind its grid runs its missed
slots one by one, as anytasks' default ``"burst"`` does), its context, and its task while a body
runs. ``first`` is the moment the first iteration began, as a loop's run anchors its grid today
(on the wheel, the tick boundary before it: see `WheelTimer`).

The timer structures (``--impl``):

- ``proto_heap``: a binary heap of ``(due, seq, job)``: exact, one tuple per wait.
- ``proto_wheel``: a hashed timer wheel: 10 ms slots over 5.12 s (512 lists), and a heap for due
  times further out. Filing a job appends it to its slot's list (no object per wait); a slot
  fires at its end, the first 10 ms boundary after the due time, so a job runs 0-10 ms after its
  due time plus the event loop's latency (as Linux's and Netty's wheels do). A cancelled job is
  marked, and skipped when its slot fires.

``_noctx`` variants (``proto_heap_noctx``, ``proto_wheel_noctx``) keep no context per job.

Context variables across iterations: a value that one iteration sets is seen by the next, as in
a loop with one task today. On asyncio each job keeps one ``contextvars.Context`` (copied from
the starter's at ``add()``) and every iteration's task runs in it (``create_task(...,
context=job.context)``): no copy per iteration. Trio's public ``start_soon`` has no ``context=``
(its ``spawn_impl`` has one, but it is private): the host spawns inside the job's context
(``job.context.run(nursery.start_soon, ...)``, so the task gets a copy of it) and the iteration
keeps its context for the next one (``job.context = contextvars.copy_context()`` as it ends; a
copy is O(1), the mapping is shared). Without a context per job an iteration's task copies the
host's context (asyncio and Trio both copy when given none): a value set in one iteration is
lost by the next.

The host spawns at most ``BATCH`` iterations before it lets them run (a checkpoint), so that
100 000 loops started at once do not make 100 000 tasks at once (what a real host would do too).

Used three ways:

- as implementations of the many-loop harness: ``w4_scale.py --impl proto_wheel ...`` and
  ``idle_profile.py --mode proto_wheel ...`` (``_impls.open_group`` calls `open_host`);
- ``python benchmarks/timer_host.py --check``: a few seconds on every backend: the jobs run on
  their grid, context variables persist (or not, for ``_noctx``), the host ends cleanly;
- ``python benchmarks/timer_host.py --compare {w4,idle} ...``: fresh worker processes, one per
  configuration, interleaved (each round runs every implementation on a backend back to back,
  in an order that rotates from round to round), records to ``OUT/records.jsonl``, and a
  Markdown summary with each figure's ratio to ``--baseline`` taken per round::

    python benchmarks/timer_host.py --compare w4 --n 100000 --window 30 --rounds 1
    python benchmarks/timer_host.py --compare idle --n 10000 --rounds 2
    python benchmarks/timer_host.py --summarise /tmp/timer_host/w4.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import heapq
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import BACKENDS, Backend, run_backend  # noqa: E402

Body = Callable[[int], Coroutine[Any, Any, None]]

#: The implementations this module provides to ``_impls.open_group``: (structure, context).
PROTOTYPES: dict[str, tuple[str, bool]] = {
    "proto_heap": ("heap", True),
    "proto_wheel": ("wheel", True),
    "proto_heap_noctx": ("heap", False),
    "proto_wheel_noctx": ("wheel", False),
}
#: At most this many iterations are spawned before the host lets them run (environment
#: variable ``TIMER_HOST_BATCH``, to try other sizes).
BATCH = int(os.environ.get("TIMER_HOST_BATCH", "512"))
#: The wheel: slots of 1/TICKS_PER_S s, WHEEL_SLOTS of them (a power of two).
TICKS_PER_S = 100
WHEEL_SLOTS = 512
_INF = math.inf


class Job:
    """One idle periodic job: its body, its place on its grid, its context, its running task."""

    __slots__ = ("arg", "body", "cancelled", "context", "first", "interval", "k", "task")

    def __init__(self, body: Body, arg: int, interval: float, context: Any) -> None:
        self.body = body
        self.arg = arg
        self.interval = interval
        # The grid: slot k is due at first + k * interval; first is set by the first iteration.
        self.first = 0.0
        self.k = 0
        self.context = context
        self.task: Any = None
        self.cancelled = False


# -- the timer structures ----------------------------------------------------------------


class HeapTimer:
    """A binary heap of ``(due, seq, job)``: exact, one tuple (and a float and an int) per wait."""

    __slots__ = ("_heap", "_seq")

    def __init__(self, now: float) -> None:
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()

    def anchor(self, now: float) -> float:
        """Where the grid of a job whose first iteration begins ``now`` starts: ``now``."""
        return now

    def file(self, job: Job, due: float) -> float:
        """File ``job`` for ``due``; return when the host must wake for it."""
        heapq.heappush(self._heap, (due, next(self._seq), job))
        return due

    def next_wake(self) -> float:
        heap = self._heap
        return heap[0][0] if heap else _INF

    def take_due(self, now: float, spawn: Callable[[Job], None], budget: int) -> bool:
        """Spawn up to ``budget`` jobs due by ``now``; return whether more are due."""
        heap, pop = self._heap, heapq.heappop
        while heap and heap[0][0] <= now:
            if not budget:
                return True
            job = pop(heap)[2]
            if not job.cancelled:
                spawn(job)
                budget -= 1
        return False


class WheelTimer:
    """A hashed timer wheel: WHEEL_SLOTS lists of jobs, one per 1/TICKS_PER_S s, and a heap of
    ``(due, seq, job)`` for due times beyond the wheel's horizon.

    A job due at ``t`` goes in the slot of the first tick boundary at or after ``t``, which fires
    at that boundary: never early, at most one tick late. A job's grid is anchored on the tick
    boundary at or before its first iteration (`anchor`), so that with an interval that is a
    whole number of ticks every slot falls on a boundary and runs without that tick of delay.
    ``_cursor`` is the first tick not yet fired; every job on the wheel is in a tick in
    ``[_cursor, _cursor + WHEEL_SLOTS)``.
    """

    __slots__ = ("_count", "_cursor", "_far", "_seq", "_slots")

    def __init__(self, now: float) -> None:
        self._slots: list[list[Job]] = [[] for _ in range(WHEEL_SLOTS)]
        self._cursor = int(now * TICKS_PER_S)
        self._count = 0
        self._far: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()

    def anchor(self, now: float) -> float:
        # The 1e-6 (10 ns) absorbs the rounding of tick / TICKS_PER_S, here and below.
        return math.floor(now * TICKS_PER_S + 1e-6) / TICKS_PER_S

    def file(self, job: Job, due: float) -> float:
        tick = math.ceil(due * TICKS_PER_S - 1e-6)
        cursor = self._cursor
        if tick < cursor:
            tick = cursor
        if tick - cursor >= WHEEL_SLOTS:
            heapq.heappush(self._far, (due, next(self._seq), job))
            return due
        self._slots[tick & (WHEEL_SLOTS - 1)].append(job)
        self._count += 1
        return tick / TICKS_PER_S

    def next_wake(self) -> float:
        wake = _INF
        if self._count:
            slots, cursor = self._slots, self._cursor
            for tick in range(cursor, cursor + WHEEL_SLOTS):
                if slots[tick & (WHEEL_SLOTS - 1)]:
                    wake = tick / TICKS_PER_S
                    break
        far = self._far
        if far and far[0][0] < wake:
            wake = far[0][0]
        return wake

    def take_due(self, now: float, spawn: Callable[[Job], None], budget: int) -> bool:
        slots = self._slots
        # The last tick whose boundary has passed.
        last = math.floor(now * TICKS_PER_S + 1e-6)
        tick = self._cursor
        end = min(last + 1, tick + WHEEL_SLOTS)
        while tick < end:
            index = tick & (WHEEL_SLOTS - 1)
            slot = slots[index]
            while slot:
                if not budget:
                    self._cursor = tick
                    return True
                if len(slot) <= budget:
                    batch = slot
                    slot = slots[index] = []
                else:
                    batch = slot[-budget:]
                    del slot[-budget:]
                self._count -= len(batch)
                for job in batch:
                    if not job.cancelled:
                        spawn(job)
                        budget -= 1
            tick += 1
        self._cursor = max(last + 1, self._cursor)
        # Bring what is now within the horizon onto the wheel (or spawn it if it is due).
        far, horizon = self._far, (self._cursor + WHEEL_SLOTS - 1) / TICKS_PER_S
        while far and far[0][0] < horizon:
            due, _, job = heapq.heappop(far)
            if job.cancelled:
                continue
            if due <= now and budget:
                spawn(job)
                budget -= 1
            else:
                self.file(job, due)
        return False


Timer = HeapTimer | WheelTimer
_STRUCTURES: dict[str, type[HeapTimer] | type[WheelTimer]] = {
    "heap": HeapTimer,
    "wheel": WheelTimer,
}


# -- asyncio (and uvloop) ----------------------------------------------------------------


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class AsyncioHost:
    """The host on asyncio: one serving task, one ``call_at`` timer, a task per iteration."""

    __slots__ = (
        "_context",
        "_handle",
        "_loop",
        "_running",
        "_serving",
        "_timer",
        "_waiter",
        "_wake_at",
        "errors",
        "jobs",
        "use_context",
    )

    def __init__(self, structure: str, use_context: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._timer: Timer = _STRUCTURES[structure](self._loop.time())
        self.use_context = use_context
        # The host's wait copies no context per wake (as the engine's waits do).
        self._context = contextvars.Context()
        self._wake_at = -_INF  # -inf while the host is not asleep: filing needs no re-arm
        self._waiter: asyncio.Future[None] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._running: set[Job] = set()
        self._serving: asyncio.Task[None] | None = None
        self.errors = 0
        self.jobs = 0

    def open(self) -> None:
        self._serving = self._loop.create_task(self._serve())

    def add(self, body: Body, arg: int, interval: float) -> Job:
        context = contextvars.copy_context() if self.use_context else None
        job = Job(body, arg, interval, context)
        self.jobs += 1
        self._file(job, self._loop.time())
        return job

    def _file(self, job: Job, due: float) -> None:
        wake = self._timer.file(job, due)
        if wake < self._wake_at:
            self._arm(wake)

    def _arm(self, wake: float) -> None:
        self._wake_at = wake
        if self._handle is not None:
            self._handle.cancel()
        waiter = self._waiter
        assert waiter is not None
        self._handle = self._loop.call_at(wake, _wake, waiter, context=self._context)

    async def _serve(self) -> None:
        loop, timer, spawn = self._loop, self._timer, self._spawn
        while True:
            wake = timer.next_wake()
            if wake <= loop.time():
                await asyncio.sleep(0)  # never serve without letting the event loop run
            else:
                self._waiter = loop.create_future()
                self._handle = None
                if wake < _INF:
                    self._arm(wake)
                else:
                    self._wake_at = _INF
                try:
                    await self._waiter
                finally:
                    self._wake_at = -_INF
                    if self._handle is not None:
                        self._handle.cancel()
                    self._waiter = self._handle = None
            # Let each batch run before the next is made.
            while timer.take_due(loop.time(), spawn, BATCH):  # noqa: ASYNC110
                await asyncio.sleep(0)

    def _spawn(self, job: Job) -> None:
        self._running.add(job)
        if self.use_context:
            job.task = self._loop.create_task(self._iteration(job), context=job.context)
        else:
            job.task = self._loop.create_task(self._iteration(job))

    async def _iteration(self, job: Job) -> None:
        loop = self._loop
        k = job.k
        if not k:
            job.first = self._timer.anchor(loop.time())
        try:
            await job.body(job.arg)
        except Exception:
            self.errors += 1
        finally:
            job.task = None
            self._running.discard(job)
        job.k = k = k + 1
        self._file(job, job.first + k * job.interval)

    def cancel(self) -> None:
        if self._serving is not None:
            self._serving.cancel()
        for job in self._running:
            job.task.cancel()

    async def aclose(self) -> None:
        self.cancel()
        waiting = [job.task for job in self._running]
        if self._serving is not None:
            waiting.append(self._serving)
        if waiting:
            await asyncio.wait(waiting)


# -- Trio --------------------------------------------------------------------------------


class TrioHost:
    """The host on Trio: one serving task asleep in a cancel scope whose deadline is the next
    wake, a task per iteration in the host's nursery."""

    __slots__ = (
        "_nursery",
        "_scope",
        "_timer",
        "_trio",
        "_wake_at",
        "errors",
        "jobs",
        "use_context",
    )

    def __init__(self, nursery: Any, structure: str, use_context: bool) -> None:
        import trio

        self._trio = trio
        self._nursery = nursery
        self._timer: Timer = _STRUCTURES[structure](trio.current_time())
        self.use_context = use_context
        self._scope: Any = None
        self._wake_at = -_INF
        self.errors = 0
        self.jobs = 0

    def add(self, body: Body, arg: int, interval: float) -> Job:
        context = contextvars.copy_context() if self.use_context else None
        job = Job(body, arg, interval, context)
        self.jobs += 1
        self._file(job, self._trio.current_time())
        return job

    def _file(self, job: Job, due: float) -> None:
        wake = self._timer.file(job, due)
        if wake < self._wake_at:
            self._wake_at = wake
            self._scope.deadline = wake  # Trio re-arms a scope's deadline in place

    async def serve(self) -> None:
        trio, timer, spawn = self._trio, self._timer, self._spawn
        while True:
            wake = timer.next_wake()
            if wake <= trio.current_time():
                await trio.lowlevel.checkpoint()
            else:
                with trio.CancelScope(deadline=wake) as scope:
                    self._scope, self._wake_at = scope, wake
                    try:
                        await trio.sleep_forever()
                    finally:
                        self._scope, self._wake_at = None, -_INF
            while timer.take_due(trio.current_time(), spawn, BATCH):
                await trio.lowlevel.checkpoint()  # let the batch run before the next one

    def _spawn(self, job: Job) -> None:
        if self.use_context:
            job.context.run(self._nursery.start_soon, self._iteration, job, name="job")
        else:
            self._nursery.start_soon(self._iteration, job, name="job")

    async def _iteration(self, job: Job) -> None:
        k = job.k
        if not k:
            job.first = self._timer.anchor(self._trio.current_time())
        try:
            await job.body(job.arg)
        except Exception:
            self.errors += 1
        if self.use_context:
            # What this iteration set is what the next one sees.
            job.context = contextvars.copy_context()
        job.k = k = k + 1
        self._file(job, job.first + k * job.interval)

    def cancel(self) -> None:
        self._nursery.cancel_scope.cancel()


# -- as an implementation of the many-loop harness (_impls.open_group) -------------------


class _Group:
    __slots__ = ("_body", "_host", "_interval")

    def __init__(self, host: AsyncioHost | TrioHost, interval: float, body: Body) -> None:
        self._host, self._interval, self._body = host, interval, body

    def start(self, i: int) -> Job:
        return self._host.add(self._body, i, self._interval)

    def cancel(self) -> None:
        self._host.cancel()


@contextlib.asynccontextmanager
async def open_host(
    impl: str, backend: Backend, interval: float, body: Body
) -> AsyncIterator[Any]:
    """A ``LoopGroup`` (``_impls.py``) whose loops are jobs of one prototype host."""
    structure, use_context = PROTOTYPES[impl]
    if backend == "trio":
        import trio

        async with trio.open_nursery() as nursery:
            trio_host = TrioHost(nursery, structure, use_context)
            nursery.start_soon(trio_host.serve, name="host")
            yield _Group(trio_host, interval, body)
        return
    host = AsyncioHost(structure, use_context)
    host.open()
    try:
        yield _Group(host, interval, body)
    finally:
        await host.aclose()


# -- --check: a few seconds on every backend ---------------------------------------------

_seen_by: contextvars.ContextVar[int] = contextvars.ContextVar("seen_by", default=-1)


def check(backend: Backend, impl: str, n: int = 200, seconds: float = 1.6) -> dict[str, Any]:
    """Run ``n`` jobs at 0.1 s for ``seconds``: counts, lateness against each job's due times,
    whether a context variable set by one iteration is seen by the next."""
    interval = 0.1
    structure, use_context = PROTOTYPES[impl]
    starts: list[list[float]] = [[] for _ in range(n)]
    late: list[float] = []
    persisted = [0] * n
    jobs: list[Job] = []

    async def main() -> dict[str, Any]:
        clock: Callable[[], float]
        if backend == "trio":
            import trio

            clock, sleep = trio.current_time, trio.sleep
        else:
            clock, sleep = asyncio.get_running_loop().time, asyncio.sleep

        async def body(i: int) -> None:
            now = clock()
            starts[i].append(now)
            job = jobs[i]
            if job.k:
                late.append(now - (job.first + job.k * interval))
            if _seen_by.get() == i:
                persisted[i] += 1
            _seen_by.set(i)
            if i % 10 == 0:
                await sleep(0.001)  # a body that suspends

        async with open_host(impl, backend, interval, body) as group:
            jobs.extend(group.start(i) for i in range(n))
            await sleep(seconds)
            group.cancel()
        counts = [len(runs) for runs in starts]
        return {
            "impl": impl,
            "backend": backend,
            "structure": structure,
            "context_per_job": use_context,
            "runs_min_max": [min(counts), max(counts)],
            "late_max_ms": max(late) * 1e3,
            "early_min_ms": min(late) * 1e3,
            "context_persisted": sum(persisted),
            "iterations_after_first": sum(counts) - n,
        }

    result: dict[str, Any] = run_backend(backend, main)
    expected = int(seconds / interval)
    ok = result["runs_min_max"][0] >= expected - 2 and result["early_min_ms"] > -0.1
    if use_context:
        ok = ok and result["context_persisted"] == result["iterations_after_first"]
    else:
        ok = ok and result["context_persisted"] == 0
    result["ok"] = ok
    return result


# -- --compare: fresh processes, interleaved ---------------------------------------------

# The figures summarised per workload: (record field, label).
FIGURES: dict[str, list[tuple[str, str]]] = {
    "w4": [
        ("rss_per_loop_kib", "peak RSS per job, KiB"),
        ("late_p99_ms", "p99 late (window), ms"),
        ("late_max_ms", "max late (window), ms"),
        ("late_p99_whole_run_ms", "p99 late (whole run), ms"),
        ("cpu_s_per_s", "CPU s per s (window)"),
        ("cpu_s_per_1000_iter", "CPU ms per iteration (window)"),
        ("gc_share_of_cpu", "collector's share of CPU"),
        ("gc_gen2_count", "gen-2 collections (window)"),
        ("gc_gen2_total_ms", "gen-2 total, ms"),
        ("gc_gen2_max_ms", "gen-2 longest, ms"),
        ("gc_gen0_count", "gen-0 collections (window)"),
        ("gc_gen1_count", "gen-1 collections (window)"),
        ("start_all_s", "start all, s"),
        ("all_ran_once_s", "all ran once, s"),
        ("cancel_all_s", "cancel all, s"),
    ],
    "idle": [
        ("rss_per_loop_kib", "RSS per job at the idle point, KiB"),
        ("traced_bytes_per_loop", "tracemalloc B per job"),
        ("gc_objects_per_loop", "tracked objects per job"),
        ("gc_total_ms", "collector ms in the window"),
        ("gen2_count", "gen-2 collections in the window"),
        ("window_cpu_s", "CPU s in the window"),
        ("start_all_s", "start all, s"),
        ("cancel_all_s", "cancel all, s"),
    ],
}
_IDLE_MODE = {"anytasks_host": "host", "anytasks": "taskgroup"}


def _worker_argv(workload: str, impl: str, backend: str, args: argparse.Namespace) -> list[str]:
    sizes = ["--n", str(args.n), "--interval", str(args.interval), "--window", str(args.window)]
    if workload == "w4":
        sizes += ["--spread", str(args.spread)]
        return [str(HERE / "w4_scale.py"), "--impl", impl, "--backend", backend, *sizes]
    mode = _IDLE_MODE.get(impl, impl)
    argv = [str(HERE / "idle_profile.py"), "--mode", mode, "--backend", backend, *sizes]
    return [*argv, "--json", *(["--no-trace"] if args.rss else [])]


def _flatten(workload: str, record: dict[str, Any]) -> dict[str, Any]:
    """Lift the per-generation figures to top-level fields."""
    if workload == "w4":
        for generation, figures in (record.get("window_gc") or {}).items():
            for name, value in figures.items():
                record[f"gc_{generation}_{name}"] = value
    else:
        collections = record.get("collections") or {}
        record["gc_total_ms"] = collections.get("gc_total_ms")
        record["gen2_count"] = (collections.get("gen2") or {}).get("count")
        record["window_cpu_s"] = collections.get("window_cpu_s")
    return record


def compare(args: argparse.Namespace) -> Path:
    impls = args.impls.split(",")
    backends = args.backends.split(",")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.compare}.jsonl"
    began = time.perf_counter()
    with path.open("a") as sink:
        for round_ in range(args.rounds):
            for backend in backends:
                runnable = [i for i in impls if _runs_on(i, backend)]
                shift = round_ % len(runnable)
                for position, impl in enumerate(runnable[shift:] + runnable[:shift]):
                    argv = [sys.executable, *_worker_argv(args.compare, impl, backend, args)]
                    started = time.perf_counter()
                    child = subprocess.run(
                        argv, capture_output=True, text=True, timeout=args.timeout, cwd=HERE
                    )
                    if child.returncode != 0:
                        print(f"FAILED {argv}:\n{child.stderr[-2000:]}", file=sys.stderr)
                        continue
                    record = json.loads(child.stdout.strip().splitlines()[-1])
                    record.update(
                        impl=impl,
                        backend=backend,
                        round=round_,
                        position=position,
                        process_s=time.perf_counter() - started,
                        workload_name=args.compare,
                    )
                    sink.write(json.dumps(_flatten(args.compare, record)) + "\n")
                    sink.flush()
                    print(
                        f"[{time.perf_counter() - began:6.0f} s] round {round_} {backend} "
                        f"{impl}: {record['process_s']:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return path


def _runs_on(impl: str, backend: str) -> bool:
    from _impls import SUPPORTED

    return impl in PROTOTYPES or backend in SUPPORTED.get(impl, ())


def _fmt(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.3g}"
    return f"{med:.3g} ({min(values):.3g}-{max(values):.3g})"


def summarise(path: Path, baseline: str) -> str:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    workload = records[0]["workload_name"]
    runs: dict[tuple[str, str], dict[int, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        runs[(record["backend"], record["impl"])][record["round"]] = record
    header = ["backend", "impl", "figure", "median (min-max)", f"/ {baseline}, per round", "runs"]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for (backend, impl), by_round in sorted(runs.items()):
        base = runs.get((backend, baseline), {})
        for field, label in FIGURES[workload]:
            values = [r[field] for r in by_round.values() if r.get(field) is not None]
            ratios = [
                r[field] / base[n][field]
                for n, r in by_round.items()
                if n in base and r.get(field) is not None and base[n].get(field)
            ]
            ratio = _fmt(ratios) if impl != baseline else "1"
            cells = [backend, impl, label, _fmt(values), ratio, str(len(values))]
            lines.append("| " + " | ".join(cells) + " |")
        if workload == "w4":
            bad = [n for n, r in by_round.items() if not r.get("counts_ok", True)]
            if bad:
                lines.append(f"| {backend} | {impl} | **miscounted in rounds {bad}** | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="a few seconds on every backend")
    parser.add_argument("--compare", choices=("w4", "idle"))
    parser.add_argument("--summarise", type=Path, help="only summarise this records file")
    parser.add_argument(
        "--impls", default="proto_wheel,proto_heap,anytasks_host,anytasks,deadline"
    )
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--baseline", default="anytasks_host")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--spread", type=float, default=0.0, help="w4: start over this many s")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rss", action="store_true", help="idle: RSS instead of tracemalloc")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--out", type=Path, default=Path("/tmp/timer_host"))
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise, args.baseline))
    elif args.check:
        failed = False
        for backend in args.backends.split(","):
            for impl in PROTOTYPES:
                result = check(backend, impl)  # type: ignore[arg-type]
                failed |= not result["ok"]
                print(json.dumps(result), flush=True)
        sys.exit(1 if failed else 0)
    elif args.compare:
        print(summarise(compare(args), args.baseline))
    else:
        parser.error("one of --check, --compare, --summarise")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
