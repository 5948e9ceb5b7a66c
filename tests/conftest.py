"""Every async test runs on every backend it can run on: asyncio, asyncio+uvloop and Trio.

asyncio and Trio run on virtual time (``anytasks.testing``): timers fire at once and
``anyio.current_time()`` moves exactly as the schedule says, so tests assert exact
times. uvloop's timers live in libuv and cannot be virtual, so a test that needs a
virtual clock carries ``@pytest.mark.virtual_time`` and is generated for asyncio and
Trio only; the rest use zero or tiny intervals and assert orders and counts.

``pytest_generate_tests`` below makes that matrix: a combination that cannot run is not
collected, rather than collected and skipped. A test that chooses its backends itself
(``@pytest.mark.parametrize("anyio_backend", ...)``, or a module's own ``anyio_backend``
fixture, as the tests on the real clock have) is left to its choice.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from anytasks.testing import virtual_time
from support.backends import BACKENDS, VIRTUAL_TIME_BACKENDS, on_real_time

# The real servers of the lease tests (support/servers.py), started only when a test needs
# one, and the SQLite file of SQLiteLease's.
from support.servers import postgres_server as postgres_server
from support.servers import pytest_terminal_summary as pytest_terminal_summary
from support.servers import redis_server as redis_server
from support.servers import remote_server as remote_server
from support.servers import server as server
from support.servers import sqlite_file as sqlite_file


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``anyio_backend`` with the backends that the test can run on."""
    if "anyio_backend" not in metafunc.fixturenames or _chooses_its_backends(metafunc):
        return
    virtual = metafunc.definition.get_closest_marker("virtual_time") is not None
    metafunc.parametrize(
        "anyio_backend", VIRTUAL_TIME_BACKENDS if virtual else BACKENDS, indirect=True
    )


def _chooses_its_backends(metafunc: pytest.Metafunc) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs["argnames"]
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "anyio_backend" in argnames:
            return True
    return any(hasattr(owner, "anyio_backend") for owner in (metafunc.module, metafunc.cls))


@pytest.fixture
def virtual_start() -> datetime.datetime:
    """The virtual wall-clock time a test starts at; parametrize to change it."""
    return datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def anyio_backend(
    request: pytest.FixtureRequest, virtual_start: datetime.datetime
) -> tuple[str, dict[str, Any]]:
    """The backend of ``request.param``: asyncio and Trio on virtual time, uvloop on its own."""
    if request.param == "asyncio+uvloop":
        if request.node.get_closest_marker("virtual_time"):
            pytest.fail("a virtual_time test asked for asyncio+uvloop, which has no virtual clock")
        return on_real_time("asyncio+uvloop")
    return virtual_time(request.param, start=virtual_start)


@pytest.fixture(params=BACKENDS)
def real_time_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Every backend on its real clock, for a module whose ``anyio_backend`` returns it: the
    service's signals, the lease servers' clocks and the real-time checks run in real time."""
    return on_real_time(request.param)


@pytest.fixture
def backend_name(request: pytest.FixtureRequest) -> str:
    """'asyncio', 'asyncio+uvloop' or 'trio', for the few tests that must differ."""
    return str(request.node.callspec.params["anyio_backend"])
