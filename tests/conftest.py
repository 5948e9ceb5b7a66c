"""Every async test runs on asyncio, asyncio+uvloop and Trio.

asyncio and Trio run on virtual time (``anytasks.testing``): timers fire at once and
``anyio.current_time()`` moves exactly as the schedule says, so tests assert exact
times. uvloop's timers live in libuv and cannot be virtual, so tests that need a
virtual clock carry ``@pytest.mark.virtual_time`` and are skipped there; the rest
use zero or tiny intervals and assert orders and counts.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from anytasks.testing import virtual_time

# The real servers of the lease tests (support/servers.py), started only when a test needs
# one, and the SQLite file of SQLiteLease's.
from support.servers import postgres_server as postgres_server
from support.servers import pytest_terminal_summary as pytest_terminal_summary
from support.servers import real_time_backend as real_time_backend
from support.servers import redis_server as redis_server
from support.servers import remote_server as remote_server
from support.servers import server as server
from support.servers import sqlite_file as sqlite_file

BACKENDS = ["asyncio", "asyncio+uvloop", "trio"]


@pytest.fixture
def virtual_start() -> datetime.datetime:
    """The virtual wall-clock time a test starts at; parametrize to change it."""
    return datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture(params=BACKENDS)
def anyio_backend(
    request: pytest.FixtureRequest, virtual_start: datetime.datetime
) -> tuple[str, dict[str, Any]]:
    if request.param == "asyncio+uvloop":
        if request.node.get_closest_marker("virtual_time"):
            pytest.skip("uvloop's libuv timers cannot run on virtual time")
        import uvloop

        return "asyncio", {"loop_factory": uvloop.new_event_loop}
    return virtual_time(request.param, start=virtual_start)


@pytest.fixture
def backend_name(request: pytest.FixtureRequest) -> str:
    """'asyncio', 'asyncio+uvloop' or 'trio', for the few tests that must differ."""
    return str(request.node.callspec.params["anyio_backend"])
