"""SQLiteLease: a lease row in an SQLite file that the processes of one host share, through
the standard library's sqlite3 in a worker thread (asyncio, uvloop and Trio alike).

Every operation is one ``BEGIN IMMEDIATE`` transaction: it takes the database's write lock
before it reads the row, so "check the holder, then change" never interleaves with another
process's. The database is in WAL mode with ``synchronous=FULL``: a commit is one append and
one fsync of the write-ahead log, so the write lock is held for well under a millisecond, and
a committed grant or slot survives a power loss.

Which clock decides expiry
--------------------------
The processes share the host, not a server, so the row carries the expiry on two clocks and
the reader picks one:

- ``expires_monotonic``: Linux's ``CLOCK_MONOTONIC`` (:func:`time.monotonic`), with the
  ``boot_id`` of the kernel that it belongs to. It is one clock for every process and
  container of one kernel (a container in a time namespace is put back on the host's clock
  by its offset), and it never steps. A process of the same boot decides by it.
- ``expires_at``: the wall clock (:func:`time.time`). A process of another boot (the host
  rebooted, or the rare setup where two kernels share a local file), or one that cannot read
  its boot id (macOS, Windows, a masked ``/proc``), decides by it: like the servers' clocks
  of the other stores, it may step, and only its rate over one ttl is trusted.

The holder's ``valid_until`` follows the rule of every store: its own monotonic clock read
before the request, plus the ttl, less the safety margin; the row's expiry is read inside the
transaction, later, so it never comes first.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, final

import anyio
import anyio.to_thread

from .._frozen import Frozen
from ._common import (
    Grant,
    KeyedLease,
    LeaseUnavailable,
    check_grant,
    check_holder,
    check_slot,
)
from ._common import valid_until as _valid_until

if TYPE_CHECKING:
    import sqlite3

T = TypeVar("T")

# The longest that a call waits for another process's write lock (SQLite's busy timeout),
# whatever the ttl: a lock held longer than this is held by a process that is stuck.
_MAX_BUSY_TIMEOUT = 5.0

_TABLE = """\
CREATE TABLE IF NOT EXISTS anytasks_lease (
    key TEXT PRIMARY KEY NOT NULL,
    holder TEXT,
    token INTEGER NOT NULL,
    boot_id TEXT,
    expires_monotonic REAL,
    expires_at REAL,
    last_slot INTEGER
) WITHOUT ROWID"""

_SELECT = """\
SELECT holder, token, boot_id, expires_monotonic, expires_at, last_slot
FROM anytasks_lease WHERE key = ?"""

_INSERT = """\
INSERT INTO anytasks_lease (key, holder, token, boot_id, expires_monotonic, expires_at)
VALUES (?, ?, ?, ?, ?, ?)"""

_HOLD = """\
UPDATE anytasks_lease SET holder = ?, token = ?, boot_id = ?, expires_monotonic = ?,
    expires_at = ?
WHERE key = ?"""

# Release keeps the row: its token and last slot outlive every holder.
_RELEASE = """\
UPDATE anytasks_lease SET holder = NULL, boot_id = NULL, expires_monotonic = NULL,
    expires_at = NULL
WHERE key = ? AND holder = ? AND token = ?"""

_RECORD_SLOT = "UPDATE anytasks_lease SET last_slot = ? WHERE key = ?"

#: Filesystems on which SQLite's locks, or the shared memory of WAL mode, cannot be trusted:
#: network and cluster filesystems, and 9p (WSL 2's Windows drives, some VMs' shared folders).
NETWORK_FILESYSTEMS = frozenset(
    {
        "9p",
        "afs",
        "beegfs",
        "ceph",
        "cifs",
        "fuse.cephfs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.s3fs",
        "fuse.sshfs",
        "gfs2",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "nfs",
        "nfs4",
        "ocfs2",
        "smb3",
        "smbfs",
    }
)

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _to_micros(slot: datetime.datetime) -> int:
    return (slot - _EPOCH) // datetime.timedelta(microseconds=1)


def _from_micros(value: int | None) -> datetime.datetime | None:
    return None if value is None else _EPOCH + datetime.timedelta(microseconds=value)


# -- the clocks ---------------------------------------------------------------------------


@functools.cache
def host_clock() -> tuple[str | None, float]:
    """This kernel's boot id, and what to subtract from :func:`time.monotonic` to get the
    host's ``CLOCK_MONOTONIC`` (a time namespace's offset); ``(None, 0.0)`` where either
    cannot be read, which leaves the wall clock to decide."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot_id = file.read().strip()
    except OSError:
        return None, 0.0
    try:
        with open("/proc/self/timens_offsets", encoding="ascii") as file:
            offsets = file.read()
    except FileNotFoundError:
        return boot_id, 0.0  # a kernel without time namespaces: one clock for all
    except OSError:
        return None, 0.0
    for line in offsets.splitlines():
        match = re.fullmatch(r"\s*(monotonic|1)\s+(-?\d+)\s+(\d+)\s*", line)
        if match:
            return boot_id, int(match[2]) + int(match[3]) / 1e9
    return boot_id, 0.0


@final
class Now(Frozen):
    """The time of one transaction, on both clocks the row keeps."""

    __slots__ = ("boot_id", "monotonic", "wall")
    __match_args__ = ("boot_id", "monotonic", "wall")

    boot_id: str | None
    monotonic: float
    wall: float

    def __init__(self, boot_id: str | None, monotonic: float, wall: float) -> None:
        self._set(boot_id=boot_id, monotonic=monotonic, wall=wall)

    @classmethod
    def read(cls) -> Now:
        boot_id, offset = host_clock()
        return cls(boot_id, time.monotonic() - offset, time.time())


@final
class Row(Frozen):
    """One key's row, as read inside a transaction."""

    __slots__ = ("boot_id", "expires_at", "expires_monotonic", "holder", "last_slot", "token")
    __match_args__ = (
        "holder",
        "token",
        "boot_id",
        "expires_monotonic",
        "expires_at",
        "last_slot",
    )

    holder: str | None
    token: int
    boot_id: str | None
    expires_monotonic: float | None
    expires_at: float | None
    last_slot: int | None

    def __init__(
        self,
        holder: str | None,
        token: int,
        boot_id: str | None,
        expires_monotonic: float | None,
        expires_at: float | None,
        last_slot: int | None,
    ) -> None:
        self._set(
            holder=holder,
            token=token,
            boot_id=boot_id,
            expires_monotonic=expires_monotonic,
            expires_at=expires_at,
            last_slot=last_slot,
        )

    def held(self, now: Now) -> bool:
        """Whether a holder has the lease at ``now``: by the monotonic clock when the row
        was written in this boot, else by the wall clock."""
        if self.holder is None:
            return False
        if now.boot_id is not None and self.boot_id == now.boot_id:
            return self.expires_monotonic is not None and now.monotonic < self.expires_monotonic
        return self.expires_at is not None and now.wall < self.expires_at

    def held_by(self, grant: Grant, now: Now) -> bool:
        same = self.holder == grant.holder and self.token == grant.token
        return same and self.held(now)


def first_token(now: Now) -> int:
    """A new key's first token: the wall clock in microseconds, so that tokens still increase
    if the file is lost (deleted, or on a volume made anew), as long as that clock does not go
    back."""
    return max(1, int(now.wall * 1_000_000))


# -- the file's place ---------------------------------------------------------------------


def _unescape(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mount_of(path: str, mounts: str) -> tuple[str, str] | None:
    """The mount point and filesystem type that ``path`` (absolute, symlinks resolved) is on,
    from the text of ``/proc/self/mounts``; the last mount over a point wins."""
    found: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (found is None or len(point) >= len(found[0])):
            found = (point, fields[2])
    return found


def read_mounts() -> str | None:
    """The text of ``/proc/self/mounts``, or ``None`` where there is none (not Linux)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as file:
            return file.read()
    except OSError:
        return None


def problem_with_place(path: str, mounts: str | None) -> str | None:
    """Why ``path`` cannot hold the lease's file, or ``None``: cheap checks of the folder and
    the file, and of the filesystem that they are on, by ``mounts`` (the text of
    ``/proc/self/mounts``; ``None`` to leave that out)."""
    if os.path.isdir(path):
        return (
            f"{path!r} is a directory: give SQLiteLease a file in it, such as "
            f"{os.path.join(path, 'anytasks-lease.db')!r}"
        )
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.exists(folder) else "does not exist"
        return f"the folder of {path!r}, {folder!r}, {what}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"the folder {folder!r} cannot be written by this process: SQLite makes "
            f"{os.path.basename(path)!r} and its -wal and -shm files there"
        )
    if os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return f"{path!r} cannot be read and written by this process"
    if mounts is None:
        return None
    found = mount_of(os.path.realpath(path), mounts)
    if found is not None and found[1] in NETWORK_FILESYSTEMS:
        point, kind = found
        return (
            f"{path!r} is on a network filesystem ({kind} at {point!r}), where SQLite's "
            "locks cannot be trusted: keep the file on a local disk of this host, or use "
            "RedisLease or PostgresLease to share a lease between hosts"
        )
    return None


def _fspath(path: os.PathLike[Any]) -> object:
    return path.__fspath__()


def _check_path(path: object) -> str:
    kind = type(path).__name__
    # (PathLike of what is not known: what __fspath__ returns is checked below.)
    text = _fspath(path) if isinstance(path, os.PathLike) else path  # pyright: ignore[reportUnknownArgumentType]
    if not isinstance(text, str):
        raise TypeError(f"`path` must be a str or os.PathLike, not {kind!r}")
    if not text:
        raise ValueError("`path` must not be empty")
    if text == ":memory:" or text.startswith("file:"):
        raise ValueError(
            f"`path` must be a file's path, got {text!r}: an in-memory database is one "
            "connection's own (use MemoryLease for the loops of one process)"
        )
    return os.path.abspath(text)


# -- the lease ----------------------------------------------------------------------------


@final
class SQLiteLease(KeyedLease):
    """A lease stored as one row of a table in an SQLite file, for the processes of one host:
    the workers of one server (uvicorn, gunicorn, hypercorn), or containers that share a
    volume. No server and no extra: the standard library's :mod:`sqlite3`, in a worker thread,
    on asyncio, uvloop and Trio. For processes on several hosts, use :class:`RedisLease` or
    :class:`PostgresLease`.

    The file and its table (``anytasks_lease``, one row per key, as many keys as you like)
    are made on first use. Each call is one ``BEGIN IMMEDIATE`` transaction, so the check and
    the change it leads to are atomic across processes. The file is put in WAL mode with
    ``synchronous=FULL``: a commit appends to the log and fsyncs it, holding the write lock
    for well under a millisecond, and survives a power loss. A call that finds the write lock
    taken waits for it (SQLite's busy timeout: ttl/3, at most 5 s), then
    raises :class:`LeaseUnavailable`.

    Expiry is decided by the host's clocks: ``CLOCK_MONOTONIC``, which every process of one
    Linux kernel shares and which never steps, and the wall clock where that is not shared
    (after a reboot; on macOS and Windows). The fencing token of a new key starts from the
    wall clock in microseconds and grows by one at every handover, so tokens keep increasing
    even if the file is lost. Keep the file on a persistent local disk, not in a tmpfs.

    The path is checked when the lease is first used, not when it is made (the lease is
    usually made at import time, before the volume or folder need be there): a path that is
    a directory, a folder that does not exist or cannot be written, and a file on a network
    filesystem (NFS, SMB/CIFS, 9p, ...; read from ``/proc/self/mounts`` on Linux), where
    SQLite's locks cannot be trusted, raise :class:`LeaseUnavailable` saying so. Call
    :meth:`create_table` at start-up to find out at once.

    One connection per lease object, opened on first use and driven through
    :func:`anyio.to_thread.run_sync`, one call at a time; it is closed by ``aclose()`` or at
    the end of ``async with lease:``, and opened again when needed after a failure.

    :param path: the database file, such as ``/var/lib/myapp/anytasks-lease.db``; a relative
        path is made absolute when the lease is made. Use a file of its own: the lease puts it
        in WAL mode.
    :param key: the name of the lease (the row's primary key).
    :param ttl: seconds that an acquire or renew keeps the lease.
    :raises TypeError: if ``path`` is not a str or path, ``key`` not a str or ``ttl`` not a
        number.
    :raises ValueError: if ``path`` or ``key`` is empty, ``path`` is ``":memory:"`` or a
        ``file:`` URI, or ``ttl`` is not positive and finite.

    .. versionadded:: 0.2
    """

    __slots__ = ("_busy_timeout", "_conn", "_lock", "_path")

    def __init__(self, path: str | os.PathLike[str], *, key: str, ttl: float) -> None:
        self._path = _check_path(path)
        super().__init__(key, ttl)
        self._busy_timeout = min(self._ttl / 3, _MAX_BUSY_TIMEOUT)
        self._conn: sqlite3.Connection | None = None
        # Serialises this object's calls on its one connection, in the worker threads.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SQLiteLease({self._path!r}, key={self._key!r}, ttl={self._ttl!r})"

    @property
    def path(self) -> str:
        """The database file's absolute path."""
        return self._path

    def _copy(self) -> SQLiteLease:
        """A lease like this one with a connection of its own (a run of a loop uses it)."""
        return SQLiteLease(self._path, key=self._key, ttl=self._ttl)

    async def aclose(self) -> None:
        """Close the connection, if open; the next call opens a new one."""
        # Shielded: the end of a cancelled run must still close it.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    async def create_table(self) -> None:
        """Check the path, and make the file and its table if they do not exist (what the
        first use does anyway): at start-up, to learn at once of a path that cannot be used.

        :raises LeaseUnavailable: if the path cannot hold the lease, saying why.
        """
        await self._call(lambda conn, now: None)

    # -- in the worker thread -----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        import sqlite3

        if self._conn is None:
            problem = problem_with_place(self._path, read_mounts())
            if problem is not None:
                raise LeaseUnavailable(f"{self!r}: {problem}")
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                # Transactions are begun and ended here, explicitly.
                isolation_level=None,
                # Used by one worker thread at a time, under self._lock.
                check_same_thread=False,
            )
            try:
                self._use_wal(conn)
                conn.execute("PRAGMA synchronous = FULL")
                # With the write lock first, as every change here: connections that make the
                # table at once take turns instead of failing on the upgrade of a read.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(_TABLE)
                conn.execute("COMMIT")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        import sqlite3

        # Switching a file to WAL mode needs it to itself, and SQLite answers "database is
        # locked" at once, not after the busy timeout, while another connection has it open
        # (as when several workers start on a new file): try again until the busy timeout.
        # Once the file is in WAL mode this is a no-op. Where WAL cannot be used, the file
        # keeps its rollback journal, in which the transactions are just as atomic.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
            else:
                return

    def _run(self, work: Callable[[sqlite3.Connection, Now], T]) -> T:
        import sqlite3

        with self._lock:
            try:
                conn = self._connection()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    # Read with the write lock held: no other process's change comes between.
                    result = work(conn, Now.read())
                    conn.execute("COMMIT")
                except BaseException:
                    # Closing rolls back whatever the transaction did.
                    self._conn = None
                    conn.close()
                    raise
            except LeaseUnavailable:
                raise
            except (sqlite3.Error, OSError) as exc:
                raise LeaseUnavailable(f"{self!r}: {exc}") from exc
            return result

    async def _call(self, work: Callable[[sqlite3.Connection, Now], T]) -> T:
        # Abandon on cancel: a caller whose deadline passed stops waiting at once; the
        # worker finishes the transaction and gives the connection back through the lock.
        return await anyio.to_thread.run_sync(self._run, work, abandon_on_cancel=True)

    def _row(self, conn: sqlite3.Connection) -> Row | None:
        found: tuple[Any, ...] | None = conn.execute(_SELECT, (self._key,)).fetchone()
        return None if found is None else Row(*found)

    def _expiry(self, now: Now) -> tuple[str | None, float | None, float]:
        """The row's boot id and expiry on both clocks, for a lease taken or renewed ``now``
        (no monotonic expiry where no reader could know whose clock it is on)."""
        monotonic = None if now.boot_id is None else now.monotonic + self._ttl
        return now.boot_id, monotonic, now.wall + self._ttl

    def _hold(self, conn: sqlite3.Connection, holder: str, token: int, now: Now) -> None:
        conn.execute(_HOLD, (holder, token, *self._expiry(now), self._key))

    # -- the operations -----------------------------------------------------------------

    async def acquire(self, holder: str) -> Grant | None:
        """See :meth:`Lease.acquire`."""
        check_holder(holder)

        def work(conn: sqlite3.Connection, now: Now) -> tuple[int, int | None] | None:
            row = self._row(conn)
            if row is None:
                token = first_token(now)
                conn.execute(_INSERT, (self._key, holder, token, *self._expiry(now)))
                return token, None
            if row.held(now):
                if row.holder != holder:
                    return None
                token = row.token  # the holder keeps it, and its token
            else:
                token = row.token + 1  # a new holder, or the same one after expiry
            self._hold(conn, holder, token, now)
            return token, row.last_slot

        sent_at = anyio.current_time()
        result = await self._call(work)
        if result is None:
            return None
        token, slot = result
        return Grant(
            self._key, holder, token, _valid_until(sent_at, self._ttl), _from_micros(slot)
        )

    async def renew(self, grant: Grant) -> Grant | None:
        """See :meth:`Lease.renew`."""
        check_grant(self, grant)

        def work(conn: sqlite3.Connection, now: Now) -> tuple[int | None] | None:
            row = self._row(conn)
            if row is None or not row.held_by(grant, now):
                return None
            self._hold(conn, grant.holder, grant.token, now)
            return (row.last_slot,)

        sent_at = anyio.current_time()
        result = await self._call(work)
        if result is None:
            return None
        return Grant(
            self._key,
            grant.holder,
            grant.token,
            _valid_until(sent_at, self._ttl),
            _from_micros(result[0]),
        )

    async def release(self, grant: Grant) -> None:
        """See :meth:`Lease.release`."""
        check_grant(self, grant)

        def work(conn: sqlite3.Connection, now: Now) -> None:
            conn.execute(_RELEASE, (self._key, grant.holder, grant.token))

        await self._call(work)

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        """See :meth:`Lease.record_slot`."""
        check_grant(self, grant)
        micros = _to_micros(check_slot(slot))

        def work(conn: sqlite3.Connection, now: Now) -> bool:
            row = self._row(conn)
            if row is None or not row.held_by(grant, now):
                return False
            if row.last_slot is not None and row.last_slot >= micros:
                return False
            conn.execute(_RECORD_SLOT, (micros, self._key))
            return True

        return await self._call(work)
