"""RedisLease and PostgresLease against real servers (support/servers.py), and SQLiteLease on a
file that several lease objects (and processes) open, on real time.

The stores' clocks decide expiry, so these tests cannot run on virtual time: they override
``anyio_backend`` with real clocks and keep the ttls short (0.3 to 1 s). What only SQLiteLease
has (its file's checks, its lock, its clocks) is in test_lease_sqlite.py.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import psycopg
import pytest

from anytasks.lease import (
    SAFETY_MARGIN,
    Grant,
    LeaseUnavailable,
    PostgresLease,
    RedisLease,
    SQLiteLease,
)
from support.paths import SRC
from support.servers import PostgresServer, RedisServer, SQLiteFile, Store

pytestmark = pytest.mark.anyio

UTC = datetime.timezone.utc
SLOT = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

AnyLease = RedisLease | PostgresLease | SQLiteLease
Factory = Callable[..., AnyLease]


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    """Real clocks: the servers' clocks run in real time."""
    return real_time_backend


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def make(server: Store, key: str) -> Factory:
    """Makes lease objects for one fresh key on the test's store."""

    def factory(ttl: float = 0.5) -> AnyLease:
        if isinstance(server, RedisServer):
            return RedisLease(server.url, key=key, ttl=ttl)
        if isinstance(server, SQLiteFile):
            return SQLiteLease(server.path, key=key, ttl=ttl)
        return PostgresLease(server.dsn, key=key, ttl=ttl)

    return factory


def _sql(server: PostgresServer, statement: str, params: Any = None) -> list[Any]:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


async def _kill_connections(server: RedisServer | PostgresServer) -> None:
    """Close this process's lease connections from the server's side, found by the name
    that the stores give them."""
    name = f"anytasks-lease-{os.getpid()}"
    if isinstance(server, PostgresServer):
        killed = await anyio.to_thread.run_sync(
            _sql,
            server,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [name],
        )
        assert killed
        return
    import coredis

    async with coredis.Redis.from_url(server.url, decode_responses=True) as admin:
        clients = [c["id"] for c in await admin.client_list() if c["name"] == name]
        assert clients
        for client in clients:
            await admin.client_kill(identifier=client)


def _remote(server: RedisServer | PostgresServer, key: str, ttl: float) -> AnyLease:
    if isinstance(server, RedisServer):
        return RedisLease(server.url, key=key, ttl=ttl)
    return PostgresLease(server.dsn, key=key, ttl=ttl)


async def _retrying(call: Callable[[], Any]) -> Any:
    """The call, once more if the first try only found the connection gone."""
    try:
        return await call()
    except LeaseUnavailable:
        return await call()


async def test_only_one_of_many_holders_gets_the_lease(make: Factory) -> None:
    # A ttl of 2 s, never waited for here: SQLiteLease waits ttl/3 for the file's write lock,
    # and with 0.5 s that was 0.17 s: once, on a CI machine running two suites side by side,
    # four first connections to a new file took longer ("database is locked").
    leases = [make(ttl=2.0) for _ in range(4)]
    grants: dict[str, Grant | None] = {}

    async def take(lease: AnyLease, holder: str) -> None:
        grants[holder] = await lease.acquire(holder)

    async with leases[0], leases[1], leases[2], leases[3]:
        for _ in range(3):
            grants.clear()
            async with anyio.create_task_group() as tg:
                for number, lease in enumerate(leases):
                    tg.start_soon(take, lease, f"holder-{number}")
            winners = [grant for grant in grants.values() if grant is not None]
            assert len(winners) == 1
            await leases[int(winners[0].holder[-1])].release(winners[0])


async def test_tokens_increase_with_every_handover(make: Factory) -> None:
    a, b = make(ttl=0.3), make(ttl=0.3)
    tokens: list[int] = []
    async with a, b:
        for _ in range(3):
            for lease, holder in [(a, "a"), (b, "b")]:
                grant = await lease.acquire(holder)
                assert grant is not None
                again = await lease.acquire(holder)  # the holder keeps it and its token
                assert again is not None
                assert again.token == grant.token
                tokens.append(grant.token)
                await lease.release(grant)
        # Handing over by expiry moves the token on too, even to the same holder.
        grant = await a.acquire("a")
        assert grant is not None
        await anyio.sleep(0.35)
        late = await a.acquire("a")
        assert late is not None
        tokens += [grant.token, late.token]
    assert tokens == sorted(set(tokens))


async def test_expiry_is_the_servers_and_validity_counts_from_before_the_request(
    make: Factory,
) -> None:
    a, b = make(ttl=0.4), make(ttl=0.4)
    async with a, b:
        before = anyio.current_time()
        grant = await a.acquire("a")
        after = anyio.current_time()
        assert grant is not None
        sent_at = grant.valid_until - 0.4 * (1 - SAFETY_MARGIN)
        assert before <= sent_at <= after
        assert await b.acquire("b") is None
        await anyio.sleep(grant.valid_until - anyio.current_time())
        # The holder has stopped trusting it; the server has not given it away yet.
        assert await b.acquire("b") is None
        await anyio.sleep(0.1)
        taken = await b.acquire("b")
        assert taken is not None
        assert taken.token > grant.token
        assert await a.renew(grant) is None


async def test_renewing_extends_the_lease(make: Factory) -> None:
    a, b = make(ttl=0.4), make(ttl=0.4)
    async with a, b:
        grant = await a.acquire("a")
        assert grant is not None
        for _ in range(4):  # 0.8 s in all, twice the ttl
            await anyio.sleep(0.2)
            renewed = await a.renew(grant)
            assert renewed is not None
            assert renewed.token == grant.token
            assert renewed.valid_until > grant.valid_until
            grant = renewed
            assert await b.acquire("b") is None


async def test_release_lets_a_standby_take_over_at_once(make: Factory) -> None:
    a, b = make(ttl=30), make(ttl=30)
    async with a, b:
        grant = await a.acquire("a")
        assert grant is not None
        assert await b.acquire("b") is None
        await a.release(grant)
        await a.release(grant)  # idempotent
        taken = await b.acquire("b")
        assert taken is not None
        await a.release(grant)  # stale: leaves b's lease alone
        assert await b.renew(taken) is not None
        assert await a.acquire("a") is None
        await b.release(taken)


async def test_record_slot_round_trip_and_stale_tokens(make: Factory) -> None:
    a, b = make(ttl=0.3), make(ttl=0.3)
    async with a, b:
        grant = await a.acquire("a")
        assert grant is not None
        assert grant.last_slot is None
        assert await a.record_slot(grant, SLOT)
        assert not await a.record_slot(grant, SLOT)  # not later
        assert not await a.record_slot(grant, SLOT - datetime.timedelta(seconds=1))
        renewed = await a.renew(grant)
        assert renewed is not None
        assert renewed.last_slot == SLOT
        later = SLOT + datetime.timedelta(minutes=1, microseconds=1)
        assert await a.record_slot(renewed, later)

        await anyio.sleep(0.35)
        taken = await b.acquire("b")
        assert taken is not None
        assert taken.last_slot == later
        assert taken.last_slot.tzinfo is UTC
        # The expired holder cannot record, even a later slot.
        assert not await a.record_slot(renewed, later + datetime.timedelta(hours=1))
        await b.release(taken)
        assert not await b.record_slot(taken, later + datetime.timedelta(hours=1))


async def test_a_killed_connection_is_reported_and_the_next_call_reconnects(
    remote_server: RedisServer | PostgresServer, key: str
) -> None:
    server = remote_server
    lease = _remote(server, key, ttl=5)
    async with lease:
        grant = await lease.acquire("a")
        assert grant is not None
        for _ in range(3):
            await _kill_connections(server)
            if isinstance(server, PostgresServer):
                # psycopg learns of it from the next statement, which fails.
                with pytest.raises(LeaseUnavailable) as caught:
                    await lease.renew(grant)
                assert isinstance(caught.value, ConnectionError)
                assert isinstance(caught.value.__cause__, psycopg.OperationalError)
            # coredis's reader sees the socket close, so its next request takes a new one.
            renewed = await lease.renew(grant)
            assert renewed is not None
            assert renewed.token == grant.token
        await lease.release(grant)


async def test_a_restarted_server_is_reached_again_and_tokens_still_increase(
    remote_server: RedisServer | PostgresServer, key: str
) -> None:
    server = remote_server
    lease = _remote(server, key, ttl=5)
    async with lease:
        grant = await lease.acquire("a")
        assert grant is not None
        assert await lease.record_slot(grant, SLOT)
        await lease.release(grant)
        await anyio.to_thread.run_sync(server.stop)
        try:
            with pytest.raises(LeaseUnavailable, match=r"acquire|connect|Connection"):
                await lease.acquire("b")
        finally:
            await anyio.to_thread.run_sync(server.start)
        after = await _retrying(lambda: lease.acquire("b"))
        assert after is not None
        assert after.token > grant.token
        assert after.last_slot == SLOT
        await lease.release(after)


async def test_redis_tokens_increase_even_after_redis_lost_its_data(
    redis_server: RedisServer, key: str
) -> None:
    import coredis

    lease = RedisLease(redis_server.url, key=key, ttl=5)
    async with lease, coredis.Redis.from_url(redis_server.url) as admin:
        grants: list[Grant] = []
        for _ in range(3):
            grant = await lease.acquire("a")
            assert grant is not None
            grants.append(grant)
            await lease.release(grant)
            await admin.delete([f"anytasks:lease:{key}", f"anytasks:lease:{key}:holder"])
    assert [g.token for g in grants] == sorted({g.token for g in grants})


def _create_report(server: PostgresServer, table: str) -> None:
    _sql(server, f"CREATE TABLE {table} (id int PRIMARY KEY, body text, fence bigint)")
    _sql(server, f"INSERT INTO {table} VALUES (1, 'none yet', 0)")


def _write_report(server: PostgresServer, table: str, body: str, token: int) -> int:
    """The fencing example of anytasks.lease's docstring: the write carries the token."""
    with psycopg.connect(server.dsn) as conn:
        cursor = conn.execute(
            f"UPDATE {table} SET body = %(body)s, fence = %(token)s"
            " WHERE id = %(id)s AND fence < %(token)s",
            {"body": body, "id": 1, "token": token},
        )
        return cursor.rowcount


async def test_fencing_rejects_the_write_of_a_paused_holder(
    make: Factory, postgres_server: PostgresServer
) -> None:
    table = f"report_{uuid.uuid4().hex}"
    await anyio.to_thread.run_sync(_create_report, postgres_server, table)
    a, b = make(ttl=0.3), make(ttl=0.3)
    async with a, b:
        paused = await a.acquire("a")
        assert paused is not None
        await anyio.sleep(0.35)  # "a" is paused past its ttl; "b" takes over and writes
        taken = await b.acquire("b")
        assert taken is not None
        write = anyio.to_thread.run_sync
        assert await write(_write_report, postgres_server, table, "by b", taken.token) == 1
        # "a" wakes up and writes with its stale token: rejected.
        assert await write(_write_report, postgres_server, table, "by a", paused.token) == 0
    rows = await anyio.to_thread.run_sync(
        _sql, postgres_server, f"SELECT body, fence FROM {table}"
    )
    assert rows == [("by b", taken.token)]


COMPETITOR = textwrap.dedent(
    """
    import asyncio, json, random, sys, time
    from anytasks.lease import LeaseUnavailable, PostgresLease, RedisLease, SQLiteLease

    kind, url, key, holder, seconds = sys.argv[1:6]
    store = {"redis": RedisLease, "postgres": PostgresLease, "sqlite": SQLiteLease}[kind]
    lease = store(url, key=key, ttl=0.3)

    async def main():
        held = []
        # Ready, then all go together: imports take seconds apart on a loaded machine.
        print("ready", flush=True)
        sys.stdin.readline()
        end = time.monotonic() + float(seconds)
        async with lease:
            while time.monotonic() < end:
                try:
                    grant = await lease.acquire(holder)
                except LeaseUnavailable:
                    # The store did not answer in time (SQLite's busy timeout is ttl/3,
                    # 0.1 s here): not held, as an exclusive loop takes it; try again.
                    await asyncio.sleep(0.01)
                    continue
                if grant is None:
                    await asyncio.sleep(random.uniform(0.005, 0.03))
                    continue
                got = time.monotonic()
                await asyncio.sleep(random.uniform(0, 0.1))
                if random.random() < 0.3:
                    # Give it up without releasing: the others wait for the server's expiry.
                    held.append([grant.token, got, grant.valid_until])
                    await asyncio.sleep(max(0, grant.valid_until - time.monotonic()) + 0.05)
                    continue
                held.append([grant.token, got, min(time.monotonic(), grant.valid_until)])
                await lease.release(grant)
                await asyncio.sleep(random.uniform(0.01, 0.05))
        print(json.dumps(held))

    asyncio.run(main())
    """
)


def test_processes_competing_for_one_key_never_overlap(server: Store, key: str) -> None:
    if isinstance(server, RedisServer):
        kind, url = "redis", server.url
    elif isinstance(server, SQLiteFile):
        kind, url = "sqlite", str(server.path)
    else:
        kind, url = "postgres", server.dsn
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", COMPETITOR, kind, url, key, f"p{n}", "1.5"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for n in range(3)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    windows: list[tuple[int, float, float, str]] = []
    for n, process in enumerate(processes):
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        windows += [(token, got, until, f"p{n}") for token, got, until in json.loads(out)]
    windows.sort(key=lambda window: window[1])
    # How many handovers happen depends on the machine's load; some must have happened.
    assert len(windows) >= 3
    assert len({holder for *_, holder in windows}) >= 2
    # time.monotonic() is one clock for every process on Linux: compare the windows.
    for earlier, later in itertools.pairwise(windows):
        # Tokens increase with every change of holder; a holder that takes the lease again
        # before the server expired it keeps its token.
        same_holder = later[3] == earlier[3]
        assert later[0] > earlier[0] or (same_holder and later[0] == earlier[0]), (earlier, later)
        assert later[1] >= earlier[2], (earlier, later)  # no two hold at once


async def test_the_table_can_be_created_ahead_in_a_schema(
    postgres_server: PostgresServer, key: str
) -> None:
    schema = f"ops_{uuid.uuid4().hex}"
    await anyio.to_thread.run_sync(_sql, postgres_server, f"CREATE SCHEMA {schema}")
    lease = PostgresLease(postgres_server.dsn, key=key, ttl=1, table=f"{schema}.leases")
    async with lease:
        await lease.create_table()
        tables = await anyio.to_thread.run_sync(
            _sql,
            postgres_server,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            [schema],
        )
        assert tables == [("leases",)]
        assert await lease.acquire("a") is not None
    await lease.aclose()  # closed already: nothing to do


async def test_redis_lease_connections_close_and_reopen(
    redis_server: RedisServer, key: str
) -> None:
    lease = RedisLease(redis_server.url, key=key, ttl=1)
    async with lease:
        with pytest.raises(RuntimeError, match=r"RedisLease\(.*\) cannot be entered twice"):
            await lease.__aenter__()
        grant = await lease.acquire("a")
        assert grant is not None
        await lease.aclose()
        assert await lease.renew(grant) is not None
        await lease.release(grant)
    with pytest.raises(RuntimeError, match="must be used inside"):
        await lease.acquire("a")


async def test_a_store_that_is_not_there_is_unavailable(key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        leases: list[AnyLease] = [
            RedisLease(f"redis://127.0.0.1:{port}", key=key, ttl=1),
            PostgresLease(f"postgresql://postgres@127.0.0.1:{port}/postgres", key=key, ttl=1),
        ]
        for lease in leases:
            with pytest.raises(LeaseUnavailable) as caught:
                async with lease:
                    await lease.acquire("a")
            assert caught.value.__cause__ is not None
