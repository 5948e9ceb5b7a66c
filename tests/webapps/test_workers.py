"""Three uvicorn workers and the lease of docs/web-apps.md: ``refresh`` runs in every worker,
each slot of ``cleanup`` in one, whether the lease is the page's SQLite file (one host) or its
PostgreSQL or Redis server (several hosts).

The page's ``tasks.py`` for workers logs each slot of ``cleanup`` with the worker's pid and the
fencing token; the test reads those lines from the workers' shared output. The benchmark
``benchmarks/web_workers.py`` does the same for a minute, with a worker killed midway.
"""

from __future__ import annotations

import datetime
import itertools
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.webapps import (
    FAST,
    FASTAPI_APP,
    Server,
    adapted,
    block,
    free_port,
    uvicorn,
    write,
    write_tasks,
)

WORKERS = 3
INTERVAL = datetime.timedelta(seconds=0.2)  # cleanup's, as FAST makes it

WORKERS_TASKS = block("# tasks.py, for uvicorn app:app --workers 3")
SQLITE_LINE = (
    'cleanup_lease = SQLiteLease("/var/lib/myapp/anytasks-lease.db", key="cleanup", ttl=30)\n'
)
HOSTS = block("# Several hosts: pip install")

CLEANUP = re.compile(r"cleanup of (\S+ \S+) by worker (\d+), token (\d+)")


def lease_line(store: Any, tmp_path: Path) -> str:
    """The page's line that makes ``cleanup_lease`` for ``store``, pointed at the test's."""
    if isinstance(store, Path):
        return adapted(SQLITE_LINE, {"/var/lib/myapp/anytasks-lease.db": str(store)})
    imports = next(line for line in HOSTS.splitlines() if line.startswith("from "))
    kind = "PostgresLease" if hasattr(store, "dsn") else "RedisLease"
    line = next(line for line in HOSTS.splitlines() if f"= {kind}(" in line)
    address = store.dsn if kind == "PostgresLease" else store.url
    page_address = re.search(r'\("([^"]+)"', line)
    assert page_address is not None
    return imports + "\n" + adapted(line, {page_address[1]: address}) + "\n"


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return tmp_path / "anytasks-lease.db"
    # The session's real servers (tests/servers.py); a key of its own for each test.
    return request.getfixturevalue(f"{request.param}_server")


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_every_worker_refreshes_and_one_runs_each_slot_of_cleanup(
    store: Any, tmp_path: Path, start: Callable[..., Server], request: pytest.FixtureRequest
) -> None:
    line = lease_line(store, tmp_path)
    key = re.sub(r"\W", "-", request.node.name)
    lease = adapted(line, {'key="cleanup"': f'key="{key}"', "ttl=30": "ttl=1"})
    tasks = adapted(WORKERS_TASKS, {**FAST, SQLITE_LINE: lease})
    write_tasks(tmp_path, tasks)
    write(tmp_path, "app.py", FASTAPI_APP)
    port = free_port()
    server = start(uvicorn("app:app", port, "--workers", str(WORKERS)), port)

    def ran() -> list[tuple[datetime.datetime, int, int]]:
        found = []
        for message in server.logged():
            match = CLEANUP.fullmatch(message)
            if match:
                slot = datetime.datetime.fromisoformat(match[1])
                found.append((slot, int(match[2]), int(match[3])))
        return found

    server.wait_until(
        "every worker to start, and ten slots of cleanup",
        lambda: len(server.markers("started")) == 2 * WORKERS and len(ran()) >= 10,
    )
    first = server.get("/status")
    server.poll("/status", lambda answer: answer["refreshes"] > first["refreshes"])
    assert server.stop(signal.SIGTERM) == 0, server.output()

    pids = {m.pid for m in server.markers("started")}
    assert len(pids) == WORKERS
    # refresh ran in every worker, each iteration once, and its after_loop in each.
    for pid in pids:
        indexes = [
            int(m.words[1])
            for m in server.markers("slot")
            if m.pid == pid and m.words[0] == "refresh"
        ]
        assert indexes
        assert indexes == list(range(len(indexes)))
    stopped = [message for message in server.logged() if message.startswith("refresh stopped")]
    assert len(stopped) == WORKERS
    assert sorted(m.words for m in server.markers("ended")) == sorted(
        [("cleanup", "stopped"), ("refresh", "stopped")] * WORKERS
    )
    # Each slot of cleanup ran once, in one worker, none missed between the first and the
    # last, and the token never went back.
    runs = sorted(ran())
    slots = [slot for slot, _, _ in runs]
    assert len(set(slots)) == len(slots), runs
    assert all(b - a == INTERVAL for a, b in itertools.pairwise(slots)), runs
    assert {pid for _, pid, _ in runs} <= pids
    tokens = [token for _, _, token in runs]
    assert tokens == sorted(tokens)
