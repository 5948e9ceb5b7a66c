"""Exclusive loops (``exclusive=``) on RedisLease and PostgresLease, against real servers, and
on SQLiteLease.

The properties of engine/test_exclusive.py, in one process but on real time (the servers'
clocks decide expiry): several loops with one key stand for replicas. Each slot runs on exactly
one, a graceful handover loses no slot and moves the fencing token on, and a write fenced with
``current_lease().token`` in the application's own PostgreSQL transaction accepts the holder
and rejects a holder whose lease has passed to another. The same across processes, with
faults, is test_replicas.py.
"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest

import anytasks
from anytasks.lease import PostgresLease, RedisLease, SQLiteLease
from support.leases import Partitioned
from support.servers import PostgresServer, RedisServer, SQLiteFile, Store

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

# Short, for real time: a standby polls every ttl/6 to ttl/2, from 0.1 to 0.3 s here.
TTL = 0.6
SLOT = 0.2
STEP = datetime.timedelta(seconds=SLOT)
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

AnyLease = RedisLease | PostgresLease | SQLiteLease
Run = tuple[str, datetime.datetime, int]


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    return real_time_backend


@pytest.fixture
def make(server: Store) -> Callable[[], AnyLease]:
    """Makes lease objects that share one fresh key on the test's store."""
    key = f"exclusive-{uuid.uuid4()}"

    def factory() -> AnyLease:
        if isinstance(server, RedisServer):
            return RedisLease(server.url, key=key, ttl=TTL)
        if isinstance(server, SQLiteFile):
            return SQLiteLease(server.path, key=key, ttl=TTL)
        return PostgresLease(server.dsn, key=key, ttl=TTL)

    return factory


def replica(name: str, lease: Any, runs: list[Run]) -> anytasks.Loop[[], None]:
    @anytasks.loop(seconds=SLOT, exclusive=lease, name=name)
    async def job() -> None:
        current = anytasks.current_lease()
        runs.append((name, current.slot, current.token))

    return job


def assert_every_slot_once(slots: list[datetime.datetime]) -> None:
    """The slots are consecutive slots of the epoch-aligned grid, each once."""
    assert slots, "no slot ran"
    first = slots[0]
    assert (first - EPOCH) % STEP == datetime.timedelta(0)
    assert slots == [first + n * STEP for n in range(len(slots))]


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition``: what it watches is appended to by loops and worker threads."""
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_each_slot_runs_on_exactly_one_of_three_loops(
    make: Callable[[], AnyLease],
) -> None:
    runs: list[Run] = []
    loops = [replica(name, make(), runs) for name in "abc"]
    async with anyio.create_task_group() as tg:
        for job in loops:
            tg.start_soon(job.run)
        # Until five slots ran, not for a fixed time: connecting and taking the lease first
        # can take longer than a few slots on a loaded machine.
        await wait_for(lambda: len(runs) >= 5)
        tg.cancel_scope.cancel()
    assert_every_slot_once([slot for _, slot, _ in runs])
    assert len(runs) >= 5
    # No handover without a reason: one holder, one token.
    assert len({(name, token) for name, _, token in runs}) == 1


@pytest.mark.parametrize("how", ["cancel", "stop"])
async def test_a_graceful_handover_loses_no_slot_and_moves_the_token_on(
    make: Callable[[], AnyLease], how: str
) -> None:
    runs: list[Run] = []
    loops = {name: replica(name, make(), runs) for name in "abc"}
    async with anyio.create_task_group() as tg:
        for job in loops.values():
            tg.start_soon(job.run)
        await wait_for(lambda: len(runs) >= 3)
        first = runs[-1][0]
        getattr(loops[first], how)()
        handed_over = len(runs)
        await wait_for(lambda: len(runs) >= handed_over + 3)
        tg.cancel_scope.cancel()
    assert_every_slot_once([slot for _, slot, _ in runs])
    holders = list(dict.fromkeys((name, token) for name, _, token in runs))
    assert len(holders) == 2, runs
    (name_1, token_1), (name_2, token_2) = holders
    assert name_1 == first != name_2
    assert token_2 > token_1


@pytest.mark.parametrize("how", ["cancel", "stop"])
async def test_the_end_of_a_run_releases_the_lease_at_once(
    make: Callable[[], AnyLease], how: str
) -> None:
    # Regression: cancel() closed coredis's connections (read by tasks under the run's
    # cancel scope) before the release, which failed, so a standby waited out the ttl.
    runs: list[Run] = []
    job = replica("a", make(), runs)
    async with anyio.create_task_group() as tg:
        tg.start_soon(job.run)
        await wait_for(lambda: len(runs) >= 1)
        getattr(job, how)()
    other = make()
    async with other:
        grant = await other.acquire("b")
        assert grant is not None
        assert grant.token > runs[0][2]
        assert grant.last_slot == runs[-1][1]
        await other.release(grant)


def write_report(dsn: str, table: str, body: str, token: int) -> bool:
    """The fenced write of the docs (docs/replicas.md): in the application's own transaction,
    the row changes only if no later holder has written it; one holder writes it every slot,
    hence ``<=``. Returns whether the write was accepted."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(
            f"UPDATE {table} SET body = %(body)s, fence = %(token)s"
            " WHERE id = 1 AND fence <= %(token)s",
            {"body": body, "token": token},
        )
        return cursor.rowcount == 1


async def test_a_fenced_write_accepts_the_holder_and_rejects_a_stale_one(
    make: Callable[[], AnyLease], postgres_server: PostgresServer
) -> None:
    dsn = postgres_server.dsn
    table = f"report_{uuid.uuid4().hex}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, body text, fence bigint)")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'none yet', 0)")

    # (loop, slot, token, accepted), appended by the worker thread that wrote.
    writes: list[tuple[str, datetime.datetime, int, bool]] = []
    stall = threading.Event()  # the next body of "a" stalls before its write...
    stalled = threading.Event()
    resume = threading.Event()  # ...until this is set

    def write(name: str, slot: datetime.datetime, token: int) -> None:
        if name == "a" and stall.is_set():
            stall.clear()
            stalled.set()
            resume.wait(10)
        accepted = write_report(dsn, table, f"{slot:%H:%M:%S.%f} by {name}", token)
        writes.append((name, slot, token, accepted))

    def fenced(name: str, lease: Any) -> anytasks.Loop[[], None]:
        @anytasks.loop(seconds=SLOT, exclusive=lease, name=name)
        async def job() -> None:
            current = anytasks.current_lease()
            # Not abandoned on cancellation: a write on its way is not stopped by the end of
            # the lease, which is why it must be fenced.
            await anyio.to_thread.run_sync(write, name, current.slot, current.token)

        return job

    store_a = Partitioned(make())
    a, b = fenced("a", store_a), fenced("b", make())
    async with anyio.create_task_group() as tg:
        tg.start_soon(a.run)
        await wait_for(lambda: len(writes) >= 2)
        stall.set()
        await anyio.to_thread.run_sync(stalled.wait, 5)
        # "a" is in the middle of a slot, about to write, and loses the store: its lease
        # expires, "b" takes it over and writes.
        store_a.cut = True
        tg.start_soon(b.run)
        await wait_for(lambda: any(name == "b" for name, *_ in writes))
        resume.set()  # "a" wakes up and writes with its old token
        await wait_for(lambda: any(not accepted for *_, accepted in writes))
        tg.cancel_scope.cancel()

    by_a = [(token, accepted) for name, _, token, accepted in writes if name == "a"]
    by_b = [(token, accepted) for name, _, token, accepted in writes if name == "b"]
    (token_a,) = {token for token, _ in by_a}
    (token_b,) = {token for token, _ in by_b}
    assert token_b > token_a
    assert by_a[-1] == (token_a, False)  # the stale write, rejected
    assert all(accepted for _, accepted in by_a[:-1])
    assert all(accepted for _, accepted in by_b)
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT body, fence FROM {table}").fetchone()
    assert row is not None
    assert row[0].endswith(" by b")
    assert row[1] == token_b
