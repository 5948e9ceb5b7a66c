"""Exclusive loops (``exclusive=``) in one process, on MemoryLease and virtual time.

Several loops with one key stand for replicas: each slot runs on exactly one of them, a
handover loses no slot, a lost lease cancels the body at the exact end of its validity. The
same against real Redis and PostgreSQL, and across processes, is in
lease/test_exclusive_servers.py and lease/test_replicas.py.
"""

from __future__ import annotations

import datetime
import pickle
import types
import uuid
from typing import Any

import anyio
import pytest

import anytasks
from anytasks import EndReason, IterationFinished, LoopEnd, LoopEvent
from anytasks.lease import MemoryLease
from support.leases import Partitioned

pytestmark = [pytest.mark.anyio, pytest.mark.virtual_time]

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.fixture
def key() -> str:
    # MemoryLease keeps one state per key for the whole process: a key per test.
    return f"job-{uuid.uuid4().hex}"


Run = tuple[str, datetime.datetime, int, float]


def replica(name: str, lease: Any, runs: list[Run], **options: Any) -> anytasks.Loop[[], None]:
    options.setdefault("seconds", 10)

    @anytasks.loop(exclusive=lease, name=name, **options)
    async def job() -> None:
        current = anytasks.current_lease()
        runs.append((name, current.slot, current.token, anyio.current_time()))

    return job


async def test_each_slot_runs_on_one_replica_on_an_epoch_grid(key: str) -> None:
    runs: list[Run] = []
    loops = [replica(name, MemoryLease(key, ttl=3), runs) for name in "abc"]
    async with anyio.create_task_group() as tg:
        await anyio.sleep(3)  # starts at 12:00:03: the first slot is 12:00:10
        for job in loops:
            tg.start_soon(job.run)
        await anyio.sleep(50)
        tg.cancel_scope.cancel()
    assert [(slot, time) for _, slot, _, time in runs] == [
        (at(s), float(s)) for s in (10, 20, 30, 40, 50)
    ]
    # One holder all along: one token, one name.
    assert len({(name, token) for name, _, token, _ in runs}) == 1


async def test_a_graceful_handover_loses_no_slot(key: str) -> None:
    runs: list[Run] = []
    loops = {name: replica(name, MemoryLease(key, ttl=3), runs) for name in "abc"}
    async with anyio.create_task_group() as tg:
        for job in loops.values():
            tg.start_soon(job.run)
        await anyio.sleep(25)
        first = runs[-1][0]
        loops[first].cancel()  # releases the lease: a standby takes it at its next poll
        await anyio.sleep(30)
        tg.cancel_scope.cancel()
    assert [slot for _, slot, _, _ in runs] == [at(s) for s in (0, 10, 20, 30, 40, 50)]
    before = {(name, token) for name, slot, token, _ in runs if slot <= at(20)}
    after = {(name, token) for name, slot, token, _ in runs if slot > at(20)}
    assert before == {(first, 1)}
    (second, token), *rest = after
    assert (rest, token) == ([], 2)
    assert second != first


async def test_a_handover_loses_no_slot_when_standbys_poll_less_often(key: str) -> None:
    # Regression: a standby took the lease only at its polls (ttl/6 to ttl/2 apart, here
    # 1 to 3 s), so with slots 1 s apart a released lease went unused for slots. It also
    # tries when a slot comes due.
    runs: list[Run] = []
    loops = {
        name: replica(name, MemoryLease(key, ttl=6), runs, seconds=1, random=lambda: 0.999)
        for name in "ab"
    }
    async with anyio.create_task_group() as tg:
        tg.start_soon(loops["a"].run)
        await anyio.sleep(0.5)
        tg.start_soon(loops["b"].run)
        await anyio.sleep(2)
        loops["a"].cancel()
        await anyio.sleep(3)
        tg.cancel_scope.cancel()
    assert [(name, slot, token) for name, slot, token, _ in runs] == [
        ("a", at(0), 1),
        ("a", at(1), 1),
        ("a", at(2), 1),
        ("b", at(3), 2),
        ("b", at(4), 2),
        ("b", at(5), 2),
    ]


async def test_stop_releases_the_lease(key: str) -> None:
    runs: list[Run] = []
    job = replica("a", MemoryLease(key, ttl=30), runs, count=2)
    await job.run()
    assert [slot for _, slot, _, _ in runs] == [at(0), at(10)]
    # Released at the end: another holder takes it at once, not after the ttl.
    assert await MemoryLease(key, ttl=30).acquire("other") is not None


async def test_a_restarted_replica_does_not_run_a_recorded_slot_again(key: str) -> None:
    runs: list[Run] = []
    job = replica("a", MemoryLease(key, ttl=3), runs, count=1)
    await job.run()
    await job.run()  # still 12:00:00: the slot is recorded, so the next one is 12:00:10
    assert [(slot, time) for _, slot, _, time in runs] == [(at(0), 0.0), (at(10), 10.0)]


async def test_a_lost_lease_cancels_the_body_when_its_validity_ends(key: str) -> None:
    store = Partitioned(MemoryLease(key, ttl=3))
    events: list[LoopEvent] = []
    started: list[tuple[float, datetime.datetime, int]] = []

    @anytasks.loop(seconds=10, exclusive=store)
    async def job() -> None:
        current = anytasks.current_lease()
        started.append((anyio.current_time(), current.slot, current.token))
        if current.slot == at(10):
            await anyio.sleep(100)

    job.add_listener(events.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await anyio.sleep(10.5)  # the last renewal was at 10 s: valid until 10 + 0.9 * 3
        store.cut = True
        await anyio.sleep(14.5)
        store.cut = False  # back at 25 s: taken again (a new token), slot 30 runs
        await anyio.sleep(10)
        job.stop()
    finished = [
        (e.index, e.outcome, e.duration) for e in events if isinstance(e, IterationFinished)
    ]
    assert finished == [
        (0, "success", 0.0),
        (1, "lease_lost", pytest.approx(2.7)),
        (2, "success", 0.0),
    ]
    assert [(time, slot, token) for time, slot, token in started] == [
        (0.0, at(0), 1),
        (10.0, at(10), 1),
        (30.0, at(30), 2),
    ]
    assert job.last_end == LoopEnd(EndReason.STOPPED, None, 3, at(30), lease_lost=False)


async def test_the_end_says_when_the_last_iteration_lost_its_lease(key: str) -> None:
    store = Partitioned(MemoryLease(key, ttl=3))

    @anytasks.loop(seconds=10, exclusive=store, count=1)
    async def job() -> None:
        store.cut = True
        await anyio.sleep(100)

    await job.run()
    assert job.last_end == LoopEnd(EndReason.COMPLETED, None, 1, at(0), lease_lost=True)
    assert "lease_lost=True" in repr(job.last_end)


async def test_replicas_as_instances_of_a_method_loop(key: str) -> None:
    runs: list[tuple[int, datetime.datetime]] = []
    lease = MemoryLease(key, ttl=3)

    class Worker:
        def __init__(self, number: int) -> None:
            self.number = number

        @anytasks.loop(seconds=10, exclusive=lease)
        async def job(self) -> None:
            runs.append((self.number, anytasks.current_lease().slot))

    workers = [Worker(n) for n in range(3)]
    async with anyio.create_task_group() as tg:
        for worker in workers:
            tg.start_soon(worker.job.run)
        await anyio.sleep(25)
        tg.cancel_scope.cancel()
    assert [slot for _, slot in runs] == [at(0), at(10), at(20)]
    assert len({number for number, _ in runs}) == 1


async def test_preview_of_an_exclusive_interval_loop_is_on_the_epoch_grid(key: str) -> None:
    job = replica("a", MemoryLease(key, ttl=3), [])
    await anyio.sleep(3)
    assert job.preview(3) == [at(10), at(20), at(30)]


async def test_ticks_and_preview_of_an_exclusive_loop_agree(key: str) -> None:
    # Both follow the grid the loop itself runs on: aligned to the Unix epoch, not counted from
    # the start (the virtual clock starts at 12:00:00, so a grid from a start 3 s later would
    # fall on 12:00:03, 12:00:13, ...).
    await anyio.sleep(3)
    job = replica("a", MemoryLease(key, ttl=3), [])
    previewed = job.preview(3)
    ticked = [tick.scheduled async for tick in job.ticks(count=3)]
    assert previewed == ticked == [at(10), at(20), at(30)]


def test_current_lease_outside_an_exclusive_body() -> None:
    with pytest.raises(RuntimeError, match=r"outside the body of a loop with exclusive="):
        anytasks.current_lease()


def test_exclusive_must_be_a_lease() -> None:
    with pytest.raises(TypeError, match=r"`exclusive` must be a lease .* not 'str'"):
        anytasks.loop(seconds=1, exclusive="redis://localhost")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"not 'SimpleNamespace'"):
        anytasks.loop(seconds=1, exclusive=types.SimpleNamespace(key="k", ttl=1))  # type: ignore[call-overload]


def test_ticks_take_no_lease() -> None:
    with pytest.raises(
        TypeError, match="ticks\\(\\) got an unexpected keyword argument 'exclusive'"
    ):
        anytasks.ticks(seconds=1, exclusive=MemoryLease("k", ttl=1))  # type: ignore[arg-type]


def test_current_lease_is_a_frozen_value() -> None:
    lease = anytasks.CurrentLease("k", 3, T0)
    assert lease == anytasks.CurrentLease("k", 3, T0)
    assert hash(lease) == hash(anytasks.CurrentLease("k", 3, T0))
    assert pickle.loads(pickle.dumps(lease)) == lease
    assert repr(lease) == (
        "CurrentLease(key='k', token=3, slot=datetime.datetime(2026, 1, 5, 12, 0, "
        "tzinfo=datetime.timezone.utc))"
    )
    with pytest.raises(AttributeError, match="CurrentLease is frozen"):
        lease.token = 4  # type: ignore[misc]


async def test_a_failure_as_the_run_is_cancelled_is_not_lost(key: str) -> None:
    # The body fails in the tick in which the loop is cancelled: the keeper's task group and
    # the store's exit see the cancellation, but the body's error still ends the run, as it
    # does for a loop without a lease (docs/lifecycle.md: an unhandled error is never lost).
    errors: list[Exception] = []
    boom = ValueError("boom")

    @anytasks.loop(seconds=10, exclusive=MemoryLease(key, ttl=30))
    async def job() -> None:
        job.cancel()
        raise boom

    @job.error
    async def error(exc: Exception) -> None:
        errors.append(exc)

    with pytest.raises(ValueError, match="boom"):
        await job.run()
    assert errors == [boom]
    assert job.last_end == LoopEnd(EndReason.FAILED, boom, 0, T0)
    assert await MemoryLease(key, ttl=30).acquire("other") is not None


async def test_system_exit_in_the_body_is_not_wrapped_in_an_exception_group(key: str) -> None:
    # The keeper's task group must not turn sys.exit(3) into a BaseExceptionGroup (which
    # would exit with status 1 and a traceback), as it does not for a loop without a lease.
    @anytasks.loop(seconds=10, exclusive=MemoryLease(key, ttl=30))
    async def job() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit) as raised:
        await job.run()
    assert raised.value.code == 3
    assert await MemoryLease(key, ttl=30).acquire("other") is not None


async def test_a_paused_replica_gives_the_lease_up(key: str) -> None:
    runs: list[Run] = []
    loops = {name: replica(name, MemoryLease(key, ttl=3), runs) for name in "ab"}
    async with anyio.create_task_group() as tg:
        for job in loops.values():
            tg.start_soon(job.run)
        await anyio.sleep(15)
        first = runs[-1][0]
        loops[first].pause()  # gives the lease up within a keeper step, ttl/3
        await anyio.sleep(20)
        loops[first].resume()  # stands by: the other keeps the lease
        await anyio.sleep(10)
        tg.cancel_scope.cancel()
    assert [slot for _, slot, _, _ in runs] == [at(s) for s in (0, 10, 20, 30, 40)]
    holders = [(name, token) for name, _, token, _ in runs]
    second = "b" if first == "a" else "a"
    assert holders == [(first, 1), (first, 1), (second, 2), (second, 2), (second, 2)]
