"""Fault tests: three replica processes, one exclusive loop, a shared PostgreSQL table.

Each replica (support/replica.py; one on asyncio, one on asyncio+uvloop, one on Trio) runs the
same exclusive loop, every SLOT seconds; its body writes the slot it runs to a shared table in
PostgreSQL, fenced by its token in the same transaction, and logs every attempt. Against each
lease store (Redis, PostgreSQL, an SQLite file), one test runs a sequence of faults on
whichever replica holds the lease: ``kill -9``; SIGSTOP for longer than the ttl, then SIGCONT;
the same stop in the middle of a body, just before its write (which then lands late, with a
stale token); then, for the servers, killing its connection to the lease store from the
server's side and restarting the lease store's server, and for SQLite, another process holding
the database's lock for a while (the file's equivalent of a server that does not answer).

Then, over every slot of the test: no slot ran twice (no two attempts, let alone accepted
writes, for one slot); no write with a stale token was accepted (accepted tokens never go
back); the paused holder's late write was rejected; and every slot between the first and the
last has an accepted write, except in the window after a fault: at most the fault's own length
(a server's downtime), the ttl, one standby poll (ttl/2) and one slot. The failover times
(fault to the first write after it) are printed at the end of the session; docs/replicas.md
quotes them.

The PostgreSQL lease runs on a cluster of its own, so that restarting it leaves the shared
table's server up.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest

from support.backends import BACKENDS
from support.paths import SRC, SUPPORT
from support.servers import (
    PostgresServer,
    RedisServer,
    SQLiteFile,
    Store,
    postgres_cluster,
    reports,
)

TTL = 1.0
SLOT = 0.1
# Twice over, so that the faults hit holders on different backends.
PROCESS_FAULTS = ["kill -9", "SIGSTOP", "SIGSTOP mid-body"]
FAULTS = {
    "redis": [*PROCESS_FAULTS, "connection killed", "server restart"] * 2,
    "postgres": [*PROCESS_FAULTS, "connection killed", "server restart"] * 2,
    "sqlite": [*PROCESS_FAULTS, "database locked"] * 2,
}
# How long the "database locked" fault holds SQLite's lock: longer than a busy timeout (ttl/3),
# so that the holder's calls fail, and shorter than its validity, so that it keeps the lease.
LOCKED = 0.5
# What a loaded machine may add to the window, beyond ttl + ttl/2 + one slot: process
# scheduling, and a standby's request on its way.
SLACK = 0.3

REPLICA = SUPPORT / "replica.py"

pytestmark = [pytest.mark.timeout(180), pytest.mark.replicas]


@pytest.fixture(scope="module")
def lease_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the lease alone: restarting it leaves the shared table up."""
    with postgres_cluster() as server:
        yield server


@dataclass
class Fault:
    kind: str
    holder: int  # the pid that held the lease
    backend: str
    token: int
    start: float  # time.time() of the fault
    end: float  # when it was over: the server answers again (the others: = start)
    recovered_at: float = 0.0  # the first accepted write after the fault
    new_holder: int = 0
    new_backend: str = ""
    new_token: int = 0

    @property
    def failover(self) -> float:
        """From the fault to the first slot written after it."""
        return self.recovered_at - self.start


class Replicas:
    """The replica processes of one test and the shared tables they write."""

    def __init__(self, store: str, lease_url: str, dsn: str, control: Path) -> None:
        self.store, self.lease_url, self.dsn, self.control = store, lease_url, dsn, control
        self.key = f"r{uuid.uuid4().hex[:12]}"
        self.processes: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
        self.conn = psycopg.connect(dsn, autocommit=True)
        k = self.key
        self.conn.execute(f"CREATE TABLE fence_{k} (token bigint NOT NULL)")
        self.conn.execute(f"INSERT INTO fence_{k} VALUES (0)")
        for table in (f"runs_{k}", f"attempts_{k}"):
            self.conn.execute(
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, slot timestamptz NOT NULL,"
                " token bigint NOT NULL, pid int NOT NULL, backend text NOT NULL,"
                " at timestamptz NOT NULL DEFAULT clock_timestamp()"
                + (", accepted boolean NOT NULL)" if table.startswith("attempts") else ")")
            )

    def spawn(self, backend: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        log = (self.control / f"{backend}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [
                *(sys.executable, str(REPLICA), backend, self.store, self.lease_url),
                *(self.dsn, self.key, str(TTL), str(SLOT), str(self.control)),
            ],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        self.processes[process.pid] = (process, backend)

    def check_alive(self) -> None:
        for pid, (process, backend) in self.processes.items():
            if process.poll() is not None and process.returncode != -signal.SIGKILL:
                pytest.fail(f"replica {pid} ({backend}) exited with {process.returncode}")

    def close(self) -> None:
        for process, _ in self.processes.values():
            if process.poll() is None:
                process.kill()  # a stopped process too
            process.wait()
            if process.stdin is not None:
                process.stdin.close()
        self.conn.close()

    def diagnose(self) -> str:
        """What the servers and the replicas are doing: for a failure's message."""
        lines = []
        for dsn in {self.dsn, self.lease_url} - {""}:
            if not dsn.startswith("postgresql"):
                continue
            with psycopg.connect(dsn, autocommit=True) as conn:
                lines += map(str, conn.execute(
                    "SELECT pid, application_name, state, wait_event_type, wait_event,"
                    " left(query, 70) FROM pg_stat_activity WHERE datname IS NOT NULL"
                ).fetchall())  # fmt: skip
        for pid, (process, _) in self.processes.items():
            if process.poll() is None:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGUSR1)  # support/replica.py: dump its threads' stacks
        time.sleep(1)
        for log in sorted(self.control.glob("*.log")):
            lines += [f"--- {log.name}", log.read_text()[-6000:]]
        return "\n".join(lines)

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.format(k=self.key), params).fetchall()

    def last_run(self) -> tuple[int, int, float]:
        """The latest accepted write: pid, token, when."""
        rows = self.query("SELECT pid, token, at FROM runs_{k} ORDER BY id DESC LIMIT 1")
        assert rows, "no slot has run"
        pid, token, at = rows[0]
        return pid, token, at.timestamp()

    def wait_for_run(self, after: float, condition: Callable[[int], bool] = bool) -> tuple:
        """The first accepted write later than ``after`` whose pid meets ``condition``."""
        deadline = time.monotonic() + 15
        while True:
            rows = self.query(
                "SELECT pid, token, at FROM runs_{k} WHERE at > to_timestamp(%s) ORDER BY id",
                [after],
            )
            for pid, token, at in rows:
                if condition(pid):
                    return pid, token, at.timestamp()
            self.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"no replica wrote after the fault\n{self.diagnose()}")
            time.sleep(0.02)


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


async def _kill_redis_client(url: str, name: str) -> int:
    import coredis

    async with coredis.Redis.from_url(url, decode_responses=True) as admin:
        clients = [c["id"] for c in await admin.client_list() if c["name"] == name]
        for client in clients:
            await admin.client_kill(identifier=client)
        return len(clients)


def _kill_connection(store: str, server: RedisServer | PostgresServer, pid: int) -> None:
    name = f"anytasks-lease-{pid}"
    if isinstance(server, RedisServer):
        assert anyio.run(_kill_redis_client, server.url, name) >= 1
        return
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [name],
        ).fetchall()
    assert killed


def _lock_database(path: Path, seconds: float) -> float:
    """Hold the database's lock for ``seconds``, as a stuck process would; when it was let go."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        conn.execute("COMMIT")
        return time.time()
    finally:
        conn.close()


def _inject(kind: str, replicas: Replicas, server: Store) -> Fault:
    """One fault on the holder; back when a replica writes again after it."""
    pid, token, _ = replicas.last_run()
    process, backend = replicas.processes[pid]
    start = time.time()
    end = start
    other = (lambda p: p != pid) if kind in ("kill -9", "SIGSTOP", "SIGSTOP mid-body") else bool
    if kind == "kill -9":
        os.kill(pid, signal.SIGKILL)
        process.wait()
        replicas.spawn(backend)  # back to three
        new = replicas.wait_for_run(start, other)
    elif kind == "SIGSTOP":
        # Stopped anywhere, perhaps in the middle of its fenced write's transaction, whose
        # lock on the fence row then holds up the next holder's writes until SIGCONT.
        os.kill(pid, signal.SIGSTOP)
        time.sleep(TTL * 2)
        os.kill(pid, signal.SIGCONT)
        new = replicas.wait_for_run(start, other)
    elif kind == "SIGSTOP mid-body":
        (replicas.control / f"pause-{pid}").touch()
        paused = replicas.control / f"paused-{pid}"
        _wait(lambda: paused.exists() and _stopped(pid))
        note = json.loads(paused.read_text())
        start = end = note["at"]
        token = note["token"]
        new = replicas.wait_for_run(start, other)
        time.sleep(max(0.0, start + TTL + 0.2 - time.time()))
        os.kill(pid, signal.SIGCONT)  # its write lands now, with the old token
        _wait(
            lambda: bool(
                replicas.query(
                    "SELECT 1 FROM attempts_{k} WHERE pid = %s AND slot = %s", [pid, note["slot"]]
                )
            )
        )
    elif kind == "connection killed":
        assert not isinstance(server, SQLiteFile)
        _kill_connection(replicas.store, server, pid)
        new = replicas.wait_for_run(start)
    elif kind == "database locked":
        assert isinstance(server, SQLiteFile)
        end = _lock_database(server.path, LOCKED)
        new = replicas.wait_for_run(end)
    else:
        assert kind == "server restart"
        assert not isinstance(server, SQLiteFile)
        server.restart()
        end = time.time()
        new = replicas.wait_for_run(end)
    new_pid, new_token, recovered_at = new
    fault = Fault(
        kind, pid, backend, token, start, end, recovered_at, new_pid,
        replicas.processes[new_pid][1], new_token,
    )  # fmt: skip
    replicas.check_alive()
    return fault


@pytest.mark.parametrize("store", ["redis", "postgres", "sqlite"])
def test_three_replicas_through_faults(
    store: str,
    request: pytest.FixtureRequest,
    postgres_server: PostgresServer,
    tmp_path: Path,
) -> None:
    server: Store
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        lease_url = server.url
    elif store == "sqlite":
        server = SQLiteFile(tmp_path / "lease.db")
        lease_url = str(server.path)
    else:
        server = request.getfixturevalue("lease_postgres")
        lease_url = server.dsn
    replicas = Replicas(store, lease_url, postgres_server.dsn, tmp_path)
    faults: list[Fault] = []
    began = time.monotonic()
    try:
        for backend in BACKENDS:
            replicas.spawn(backend)
        replicas.wait_for_run(0)
        time.sleep(1)  # every replica is up and polling
        for kind in FAULTS[store]:
            faults.append(_inject(kind, replicas, server))
            time.sleep(1)  # steady slots between faults
        runs = replicas.query("SELECT slot, token, pid, at FROM runs_{k} ORDER BY id")
        attempts = replicas.query(
            "SELECT slot, token, pid, accepted FROM attempts_{k} ORDER BY id"
        )
    finally:
        replicas.close()
    elapsed = time.monotonic() - began
    check(store, runs, attempts, faults, elapsed)


def window(fault: Fault) -> float:
    """How long after a fault (after a server is back) slots may be lost: the lease expires
    (the ttl), a standby polls (at most ttl/2), the next slot comes."""
    return TTL + TTL / 2 + SLOT


def check(
    store: str,
    runs: list[tuple[Any, ...]],
    attempts: list[tuple[Any, ...]],
    faults: list[Fault],
    elapsed: float,
) -> None:
    # No slot ran twice: no two accepted writes, and not even two attempts, for one slot.
    twice = [s for s, n in collections.Counter(a[0] for a in attempts).items() if n > 1]
    assert not twice, f"slots run twice: {twice}"
    assert len({r[0] for r in runs}) == len(runs)
    # No stale write was accepted: in commit order (the fence row serialises the writers),
    # accepted tokens never go back.
    tokens = [r[1] for r in runs]
    assert tokens == sorted(tokens)
    # The paused holders' late writes were rejected.
    rejected = [(a[2], a[1]) for a in attempts if not a[3]]
    for fault in faults:
        if fault.kind == "SIGSTOP mid-body":
            assert (fault.holder, fault.token) in rejected
    # Each fault that takes the holder away hands the lease on, with a larger token.
    for fault in faults:
        if fault.kind in ("kill -9", "SIGSTOP", "SIGSTOP mid-body"):
            assert fault.new_holder != fault.holder
            assert fault.new_token > fault.token

    # Every slot from the first to the last has an accepted write, but in the window after
    # a fault: each run of lost slots starts at or after the slot that the latest fault
    # before it interrupted, and ends within that fault's window.
    slots = sorted(r[0].timestamp() for r in runs)
    lost: dict[int, int] = collections.Counter()  # slots lost, by fault
    for before, after in itertools.pairwise(slots):
        missing = round((after - before) / SLOT) - 1
        if not missing:
            continue
        first = before + SLOT
        previous = [n for n, f in enumerate(faults) if f.start - SLOT <= first]
        assert previous, f"{missing} slots lost from {first} before any fault"
        fault = faults[previous[-1]]
        assert after - SLOT <= fault.end + window(fault) + SLACK, (fault, first, missing)
        lost[previous[-1]] += missing
    report = reports.setdefault("fault tests: three replicas, ttl 1 s, slots 0.1 s", [])
    for n, fault in enumerate(faults):
        assert lost[n] * SLOT <= (fault.end - fault.start) + window(fault) + SLACK, fault
        downtime = f", {fault.end - fault.start:.2f} s down" if fault.end > fault.start else ""
        report.append(
            f"{store:8} {fault.kind:17} {fault.backend:>14} -> {fault.new_backend:14}"
            f" failover {fault.failover:4.2f} s{downtime}, {lost[n]:2} slots lost,"
            f" token +{fault.new_token - fault.token}"
        )
    report.append(
        f"{store:8} {len(runs)} slots run, {len(rejected)} stale writes rejected,"
        f" {len(attempts)} attempts, in {elapsed:.1f} s"
    )
