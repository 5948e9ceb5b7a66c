"""Real Redis and PostgreSQL servers for the lease tests: started once per session, stopped
at its end (also when tests fail), on random loopback ports, with data in a temporary folder;
and, as the third store, an SQLite file in the test's own temporary folder.

The binaries come from Debian's ``redis-server`` and ``postgresql`` packages. When they are
missing the tests that need them are skipped, unless ``ANYTASKS_REQUIRE_SERVERS=1`` (as
``.ci/run`` sets), which makes that an error. As root, each server runs as its package's user
(``redis``, ``postgres``; PostgreSQL refuses to run as root), through ``Popen(user=...)``.
How long each start took (the first, then the restarts of the failover tests) is printed at
the end of the session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REQUIRE = os.environ.get("ANYTASKS_REQUIRE_SERVERS") == "1"

start_times: dict[str, list[float]] = {}

#: Lines that tests want shown at the end of the session, by section (the fault tests'
#: failover times).
reports: dict[str, list[str]] = {}


def _missing(what: str) -> None:
    message = f"{what} (install Debian's redis-server and postgresql packages)"
    if REQUIRE:
        pytest.fail(f"ANYTASKS_REQUIRE_SERVERS=1 but {message}", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(user: str) -> dict[str, Any]:
    """Popen's arguments that run a server as ``user`` when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _owned_tmpdir(user: str, prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _wait_for_port(port: int, deadline: float, process: subprocess.Popen[bytes] | None) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _record(name: str, seconds: float) -> None:
    start_times.setdefault(name, []).append(seconds)


@dataclass
class RedisServer:
    """One redis-server; ``url`` for clients, ``restart()`` for the failover tests."""

    binary: str
    directory: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        started = time.monotonic()
        user = "redis" if _has_user("redis") else "nobody"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--unixsocket", str(self.directory / "redis.sock"),
                "--dir", str(self.directory),
                # Persist every write, as a lease store should (see RedisLease).
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            **_as_user(user),
        )  # fmt: skip
        _wait_for_port(self.port, time.monotonic() + 10, self.process)
        _record("redis-server start", time.monotonic() - started)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class PostgresServer:
    """One PostgreSQL cluster; ``dsn`` for clients, ``restart()`` for the failover tests."""

    bindir: Path
    directory: Path
    port: int = field(default_factory=_free_port)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            **_as_user("postgres"),
            stdout=subprocess.DEVNULL,
        )

    def init(self) -> None:
        started = time.monotonic()
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.data),
                "--auth=trust",
                "--username=postgres",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **_as_user("postgres"),
        )  # fmt: skip
        _record("postgres initdb", time.monotonic() - started)

    def start(self) -> None:
        started = time.monotonic()
        # fsync off only risks data on an operating-system crash, which a test does not
        # survive anyway; synchronous_commit stays on, as the lease table needs (see
        # PostgresLease): the restart tests stop the server the hard way.
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.directory}"
            " -c fsync=off -c full_page_writes=off"
        )
        self._pg_ctl("-l", str(self.directory / "postgres.log"), "-o", options, "-w", "start")
        _record("postgres start", time.monotonic() - started)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop")
        self.start()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class SQLiteFile:
    """The SQLiteLease store: a database file that no one has opened yet."""

    path: Path


#: Every lease store that processes can share.
Store = RedisServer | PostgresServer | SQLiteFile


@pytest.fixture
def sqlite_file(tmp_path: Path) -> SQLiteFile:
    return SQLiteFile(tmp_path / "anytasks-lease.db")


@pytest.fixture(params=["redis", "postgres", "sqlite"])
def server(request: pytest.FixtureRequest) -> Store:
    """Each store in turn (a test that takes it runs against all three)."""
    fixture = {"redis": "redis_server", "postgres": "postgres_server"}.get(
        request.param, "sqlite_file"
    )
    result: Store = request.getfixturevalue(fixture)
    return result


@pytest.fixture(params=["redis", "postgres"])
def remote_server(request: pytest.FixtureRequest) -> RedisServer | PostgresServer:
    """Each server in turn: the stores with connections to kill and a server to restart."""
    result: RedisServer | PostgresServer = request.getfixturevalue(f"{request.param}_server")
    return result


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server was not found")
    assert binary is not None
    user = "redis" if _has_user("redis") else "nobody"
    server = RedisServer(binary, _owned_tmpdir(user, "anytasks-redis-"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresServer]:
    """A new PostgreSQL cluster, running until the block ends (skips if there is none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        _missing("PostgreSQL's initdb was not found in /usr/lib/postgresql/*/bin")
    if os.geteuid() == 0 and not _has_user("postgres"):
        _missing("running as root, and there is no postgres user to run PostgreSQL as")
    server = PostgresServer(Path(found[-1]).parent, _owned_tmpdir("postgres", "anytasks-pg-"))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with postgres_cluster() as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if start_times:
        terminalreporter.section("lease test servers: start-up times")
        for name, seconds in start_times.items():
            shown = ", ".join(f"{s:.2f} s" for s in seconds)
            terminalreporter.write_line(f"{name}: {shown}")
    for section, lines in reports.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)
