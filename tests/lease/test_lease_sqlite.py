"""What only SQLiteLease has: the checks of its path, the file's lock held by other processes
(and a holder killed with it), failover after ``kill -9``, its two clocks, many keys in one
file, tokens that survive the file. Real files and real processes throughout, on real time.

The contract that it shares with RedisLease and PostgresLease (handover, tokens, expiry,
release, slots, processes that never overlap) is tested in test_lease_servers.py, and exclusive
loops on it in test_exclusive_servers.py and test_replicas.py.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from anytasks.lease import LeaseUnavailable, SQLiteLease
from anytasks.lease._sqlite import (
    NETWORK_FILESYSTEMS,
    host_clock,
    mount_of,
    problem_with_place,
    read_mounts,
)
from support.paths import SRC

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

UTC = datetime.timezone.utc
SLOT = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    """Real clocks: the host's clocks decide expiry."""
    return real_time_backend


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "leases.db"


def _python(code: str, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


# -- the path -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        (None, TypeError, "`path` must be a str or os.PathLike, not 'NoneType'"),
        (b"/tmp/x.db", TypeError, "`path` must be a str or os.PathLike, not 'bytes'"),
        ("", ValueError, "`path` must not be empty"),
        (":memory:", ValueError, "`path` must be a file's path, got ':memory:'.*MemoryLease"),
        ("file:x.db?mode=rwc", ValueError, "`path` must be a file's path, got 'file:x.db"),
    ],
)
def test_the_path_is_validated_when_the_lease_is_made(
    path: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SQLiteLease(path, key="k", ttl=1)  # type: ignore[arg-type]


def test_a_relative_path_is_made_absolute_when_the_lease_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lease = SQLiteLease(Path("leases.db"), key="k", ttl=1)
    assert lease.path == str(tmp_path / "leases.db")
    assert repr(lease) == f"SQLiteLease({str(tmp_path / 'leases.db')!r}, key='k', ttl=1.0)"


def _not_a_database(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("not a database, but long enough to have a header\n")
    return tmp_path / "notes.txt"


@pytest.mark.parametrize(
    ("place", "message"),
    [
        (
            lambda tmp: tmp,
            r"'{tmp}' is a directory: give SQLiteLease a file in it, such as '{tmp}/",
        ),
        (
            lambda tmp: tmp / "missing" / "leases.db",
            r"the folder of '{tmp}/missing/leases.db', '{tmp}/missing', does not exist",
        ),
        (
            lambda tmp: _not_a_database(tmp) / "leases.db",
            r"the folder of '{tmp}/notes.txt/leases.db', '{tmp}/notes.txt', is not a folder",
        ),
        (lambda tmp: _not_a_database(tmp), "file is not a database"),
    ],
    ids=["a directory", "no folder", "a file for a folder", "not a database"],
)
async def test_a_path_that_cannot_hold_the_lease_is_unavailable_and_says_why(
    tmp_path: Path, place: Any, message: str
) -> None:
    lease = SQLiteLease(place(tmp_path), key="k", ttl=1)  # made: nothing is checked yet
    async with lease:
        expected = message.format(tmp=re.escape(str(tmp_path)))
        for call in (lease.create_table, lambda: lease.acquire("a")):
            with pytest.raises(LeaseUnavailable, match=expected) as caught:
                await call()
            assert str(caught.value).startswith(f"{lease!r}: ")
    if "database" in message:
        assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


async def test_a_folder_that_comes_later_is_used_then(tmp_path: Path) -> None:
    lease = SQLiteLease(tmp_path / "volume" / "leases.db", key="k", ttl=1)
    async with lease:
        with pytest.raises(LeaseUnavailable, match="does not exist"):
            await lease.acquire("a")
        (tmp_path / "volume").mkdir()
        assert await lease.acquire("a") is not None


UNWRITABLE = """
    import anyio, sys
    from anytasks.lease import LeaseUnavailable, SQLiteLease

    async def main():
        async with SQLiteLease(sys.argv[1], key="k", ttl=1) as lease:
            try:
                await lease.acquire("a")
            except LeaseUnavailable as exc:
                print(exc)

    anyio.run(main)
"""


def test_a_folder_that_cannot_be_written_is_unavailable_and_says_why(tmp_path: Path) -> None:
    # Root may write anywhere: as root, the process runs without that capability.
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and util-linux's setpriv is not there")
        caps = "-dac_override,-dac_read_search"
        prefix = (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")
    folder = tmp_path / "read-only"
    folder.mkdir(0o555)
    try:
        process = _python(UNWRITABLE, str(folder / "leases.db"), prefix=prefix)
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0
        assert f"the folder '{folder}' cannot be written by this process" in out
        assert "'leases.db' and its -wal and -shm files" in out
    finally:
        folder.chmod(0o755)


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export /srv/shared nfs4 rw,vers=4.2,addr=10.0.0.2 0 0
//fileserver/team /mnt/team\\040drive cifs rw,vers=3.1.1 0 0
/dev/vdb /srv/shared/local ext4 rw 0 0
tmpfs /srv/shared/local tmpfs rw 0 0
"""


def test_the_mount_of_a_path_is_read_from_proc_mounts() -> None:
    assert mount_of("/srv/shared/app/leases.db", MOUNTS) == ("/srv/shared", "nfs4")
    assert mount_of("/mnt/team drive/leases.db", MOUNTS) == ("/mnt/team drive", "cifs")
    # The deepest mount point holds the path; of two mounts on one point, the later.
    assert mount_of("/srv/shared/local/leases.db", MOUNTS) == ("/srv/shared/local", "tmpfs")
    assert mount_of("/srv/sharedx/leases.db", MOUNTS) == ("/", "ext4")
    assert {"nfs", "nfs4", "cifs", "smb3", "9p", "fuse.sshfs"} <= NETWORK_FILESYSTEMS


def test_a_file_on_a_network_filesystem_is_refused_and_the_message_says_what_to_use(
    tmp_path: Path,
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    path = str(share / "leases.db")
    mounts = MOUNTS + f"server:/export {share} nfs4 rw 0 0\n"
    assert problem_with_place(path, mounts) == (
        f"{path!r} is on a network filesystem (nfs4 at {str(share)!r}), where SQLite's "
        "locks cannot be trusted: keep the file on a local disk of this host, or use "
        "RedisLease or PostgresLease to share a lease between hosts"
    )
    # Through a symbolic link too.
    (tmp_path / "link").symlink_to(share, target_is_directory=True)
    assert f"(nfs4 at {str(share)!r})" in str(problem_with_place(str(tmp_path / "link/x"), mounts))
    # This machine's own file system (the test's folder) is fine.
    assert problem_with_place(path, read_mounts()) is None


# -- the lock -----------------------------------------------------------------------------

LOCKER = """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    seconds = sys.stdin.readline()  # how long to keep the lock, once the test says
    if seconds.strip():
        import time
        time.sleep(float(seconds))
        conn.execute("COMMIT")
        print("unlocked", flush=True)
        sys.stdin.readline()
"""


@contextlib.contextmanager
def locked(path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the database's lock, until the block ends or it is told to
    let go after some seconds (a line on its standard input)."""
    process = _python(LOCKER, str(path))
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "locked\n"
        yield process
    finally:
        process.kill()
        process.communicate()


async def test_a_lock_held_by_another_process_is_waited_for_then_unavailable(
    path: Path,
) -> None:
    lease = SQLiteLease(path, key="k", ttl=0.9)  # busy timeout: ttl/3
    async with lease:
        grant = await lease.acquire("a")
        assert grant is not None
        with locked(path) as locker:
            started = anyio.current_time()
            with pytest.raises(LeaseUnavailable, match="database is locked") as caught:
                await lease.renew(grant)
            assert 0.3 <= anyio.current_time() - started < 0.7
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)

            # A lock let go within the busy timeout is waited for.
            assert locker.stdin is not None
            locker.stdin.write("0.1\n")
            locker.stdin.flush()
            renewed = await lease.renew(grant)
            assert renewed is not None
            assert renewed.token == grant.token
        assert await lease.renew(renewed) is not None
        await lease.release(renewed)


async def test_a_call_cancelled_while_waiting_for_the_lock_stops_waiting_at_once(
    path: Path,
) -> None:
    lease = SQLiteLease(path, key="k", ttl=3)  # busy timeout: 1 s
    async with lease:
        await lease.create_table()
        with locked(path) as locker:
            started = anyio.current_time()
            with anyio.move_on_after(0.1):
                await lease.acquire("a")
            assert anyio.current_time() - started < 0.5
            assert locker.stdin is not None
            locker.stdin.write("0\n")
            locker.stdin.flush()
            # The abandoned call ends with the lock; this one waits for it, then runs.
            assert await lease.acquire("a") is not None


HOLDER = """
    import anyio, os, sys, time
    from anytasks.lease import SQLiteLease

    path, key, ttl, stop_in_transaction = sys.argv[1:5]

    async def main():
        async with SQLiteLease(path, key=key, ttl=float(ttl)) as lease:
            grant = await lease.acquire("doomed")
            if stop_in_transaction == "yes":
                import sqlite3
                conn = sqlite3.connect(path, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                print(grant.token, time.monotonic(), flush=True)
                time.sleep(60)
            while True:
                sent = time.monotonic()
                grant = await lease.renew(grant)
                print(grant.token, sent, flush=True)
                await anyio.sleep(lease.ttl / 3)

    anyio.run(main)
"""


def _holder(
    path: Path, key: str, ttl: float, *, in_transaction: bool
) -> tuple[subprocess.Popen[str], int, float]:
    """A process that holds the lease (and, if told, the file's lock): its token, and when it
    sent its first renewal."""
    process = _python(HOLDER, str(path), key, str(ttl), "yes" if in_transaction else "no")
    assert process.stdout is not None
    token, sent = process.stdout.readline().split()
    return process, int(token), float(sent)


async def test_a_holder_killed_with_the_lock_leaves_no_lock_behind(path: Path) -> None:
    process, _, _ = _holder(path, "k", 30, in_transaction=True)
    process.kill()
    process.communicate()
    lease = SQLiteLease(path, key="k", ttl=30)  # busy timeout: 5 s, far above what follows
    async with lease:
        started = anyio.current_time()
        assert await lease.acquire("b") is None  # the lease is still held (30 s)...
        assert anyio.current_time() - started < 0.5  # ...but the lock went with the process


async def test_failover_after_kill_9_of_the_holder_costs_at_most_one_ttl(path: Path) -> None:
    ttl = 1.0
    process, token, last_sent = _holder(path, "k", ttl, in_transaction=False)
    await anyio.sleep(0.5)
    killed_at = time.monotonic()
    process.send_signal(signal.SIGKILL)
    out, _ = process.communicate()
    # When the holder sent the last renewal that it saw answered, by the monotonic clock
    # that every process of the host shares.
    if out:
        last_sent = float(out.split()[-1])
    lease = SQLiteLease(path, key="k", ttl=ttl)
    async with lease:
        while (grant := await lease.acquire("standby")) is None:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        taken_at = time.monotonic()
    assert grant.token == token + 1
    assert taken_at >= last_sent + ttl  # not before the ttl ran out...
    assert taken_at - killed_at <= ttl + 0.2  # ...and at most one ttl after the kill


# -- the clocks ---------------------------------------------------------------------------


def test_the_host_clock_is_the_kernels_boot_and_monotonic_clock() -> None:
    boot_id, offset = host_clock()
    if not Path("/proc/sys/kernel/random/boot_id").exists():
        assert (boot_id, offset) == (None, 0.0)
        return
    assert boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert offset == 0.0  # the tests do not run in a time namespace of their own


def _set_row(path: Path, **values: Any) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        conn.execute(f"UPDATE anytasks_lease SET {assignments}", values)


@pytest.mark.parametrize(
    ("boot", "monotonic_left", "wall_left", "held"),
    [
        ("this boot", 30, -30, True),  # this boot: the monotonic clock decides...
        ("this boot", -30, 30, False),
        ("another boot", 30, -30, False),  # ...another boot's: the wall clock
        ("another boot", -30, 30, True),
        (None, 30, -30, False),  # a writer that knew no boot: the wall clock
        (None, -30, 30, True),
    ],
)
async def test_the_clock_that_decides_expiry_is_the_one_the_writer_shares(
    path: Path, boot: str | None, monotonic_left: float, wall_left: float, held: bool
) -> None:
    this_boot, offset = host_clock()
    if this_boot is None:
        pytest.skip("no boot id to read here: the wall clock decides every time")
    a, b = SQLiteLease(path, key="k", ttl=60), SQLiteLease(path, key="k", ttl=60)
    async with a, b:
        grant = await a.acquire("a")
        assert grant is not None
        _set_row(
            path,
            boot_id=this_boot if boot == "this boot" else boot,
            expires_monotonic=time.monotonic() - offset + monotonic_left,
            expires_at=time.time() + wall_left,
        )
        taken = await b.acquire("b")
        assert (taken is None) == held
        assert (await a.renew(grant) is not None) == held
        if taken is not None:
            assert taken.token == grant.token + 1


# -- the file -----------------------------------------------------------------------------


async def test_many_keys_share_one_file_in_wal_mode(path: Path) -> None:
    leases = [SQLiteLease(path, key=key, ttl=5) for key in ("report", "cleanup", "backup")]
    async with leases[0], leases[1], leases[2]:
        grants = [await lease.acquire("a") for lease in leases]
        assert all(grant is not None for grant in grants)
        other = SQLiteLease(path, key="report", ttl=5)
        async with other:
            assert await other.acquire("b") is None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute("SELECT key, holder FROM anytasks_lease ORDER BY key").fetchall()
    assert rows == [("backup", "a"), ("cleanup", "a"), ("report", "a")]


def test_workers_that_start_together_on_a_new_file_all_get_an_answer(tmp_path: Path) -> None:
    # Regression: switching a new file to WAL mode failed at once with "database is locked"
    # when another connection was switching it too, as workers starting together do.
    def worker(path: Path, start: threading.Barrier, answers: list[object]) -> None:
        async def main() -> None:
            lease = SQLiteLease(path, key="k", ttl=3)
            async with lease:
                start.wait()
                try:
                    answers.append(await lease.acquire(f"worker-{threading.get_ident()}"))
                except LeaseUnavailable as exc:
                    answers.append(exc)

        anyio.run(main)

    for round in range(30):
        path = tmp_path / f"{round}.db"
        start, answers = threading.Barrier(4), list[object]()
        threads = [threading.Thread(target=worker, args=(path, start, answers)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not [a for a in answers if isinstance(a, Exception)], answers
        assert sum(answer is not None for answer in answers) == 1
        with contextlib.closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def _open_fds(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    targets = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            targets.append(os.readlink(fd))
    return [t for t in targets if t.startswith(str(path))]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc")
async def test_aclose_closes_the_file_and_the_next_call_opens_it_again(path: Path) -> None:
    lease = SQLiteLease(path, key="k", ttl=5)
    async with lease:
        grant = await lease.acquire("a")
        assert grant is not None
        assert _open_fds(path)
        await lease.aclose()
        assert not _open_fds(path)
        assert await lease.renew(grant) is not None
    assert not _open_fds(path)


def _delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def test_tokens_keep_increasing_when_the_file_is_lost(path: Path) -> None:
    tokens = []
    for _ in range(3):
        async with SQLiteLease(path, key="k", ttl=5) as lease:
            grant = await lease.acquire("a")
            assert grant is not None
            assert await lease.record_slot(grant, SLOT)
            tokens.append(grant.token)
        _delete_database(path)
    assert tokens == sorted(set(tokens))
    # A new key starts from the wall clock, in microseconds.
    assert abs(tokens[-1] / 1e6 - time.time()) < 60
