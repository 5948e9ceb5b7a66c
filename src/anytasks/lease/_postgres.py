"""PostgresLease: a lease row in a PostgreSQL table, through psycopg 3's synchronous
connection in a worker thread (psycopg's AsyncConnection needs asyncio; this runs on Trio too).

Each operation is one statement in its own transaction (autocommit), and every expiry is
decided by ``clock_timestamp()`` on the server. No advisory locks and no prepared statements,
so it works through PgBouncer in transaction mode.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import threading
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.to_thread

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
    import psycopg
    from typing_extensions import LiteralString

#: The table that :class:`PostgresLease` uses (``{table}`` is its name): run it in a
#: migration, or let the first use (or :meth:`PostgresLease.create_table`) run it.
TABLE_SQL = """\
CREATE TABLE IF NOT EXISTS {table} (
    key text PRIMARY KEY,
    holder text,
    token bigint NOT NULL,
    expires_at timestamptz,
    last_slot timestamptz
)"""

# Take the lease if it is free or expired, or keep it if this holder has it. The row lock
# that ON CONFLICT DO UPDATE takes, and the re-check of WHERE against the newest row version
# under READ COMMITTED, make two concurrent takers serialise: the second sees the first's
# row and gets no row back. The token moves on in the same statement whenever the lease
# changes hands, or is taken again after it expired.
_ACQUIRE = """\
INSERT INTO {table} AS l (key, holder, token, expires_at)
VALUES (%(key)s, %(holder)s, 1, clock_timestamp() + %(ttl)s * interval '1 second')
ON CONFLICT (key) DO UPDATE SET
    token = CASE WHEN l.holder = excluded.holder AND l.expires_at > clock_timestamp()
        THEN l.token ELSE l.token + 1 END,
    holder = excluded.holder,
    expires_at = clock_timestamp() + %(ttl)s * interval '1 second'
WHERE l.holder IS NULL OR l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
RETURNING token, last_slot"""

_HELD = "key = %(key)s AND holder = %(holder)s AND token = %(token)s"

_RENEW = f"""\
UPDATE {{table}} SET expires_at = clock_timestamp() + %(ttl)s * interval '1 second'
WHERE {_HELD} AND expires_at > clock_timestamp()
RETURNING last_slot"""

# Release keeps the row: its token and last slot outlive every holder.
_RELEASE = f"UPDATE {{table}} SET holder = NULL, expires_at = NULL WHERE {_HELD}"

_RECORD_SLOT = f"""\
UPDATE {{table}} SET last_slot = %(slot)s
WHERE {_HELD} AND expires_at > clock_timestamp()
    AND (last_slot IS NULL OR last_slot < %(slot)s)
RETURNING 1"""


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    # psycopg gives the session's time zone; the slots are UTC everywhere else.
    return None if value is None else value.astimezone(datetime.timezone.utc)


def _nothing(conn: psycopg.Connection[Any]) -> None:
    """Work for a call that only needs the connection (and so the table)."""


@final
class PostgresLease(KeyedLease):
    """A lease stored as one row of a PostgreSQL table (PostgreSQL 9.5 or later).

    The table (:data:`TABLE_SQL`, default name ``anytasks_lease``) is created on first use if
    it does not exist; create it in a migration instead with that SQL or
    ``await lease.create_table()`` if the application's role may not create tables. Expiry is
    decided by the server's ``clock_timestamp()`` only. The fencing token is a per-key counter
    that the statement taking the lease over increments, so it is as durable as the row: keep
    ``synchronous_commit`` on (the default) for these statements, since with it off a server
    crash can forget the latest grants and hand a token out again. Point a lease at the
    primary: a replica answers reads only.

    One connection per lease object, in autocommit mode, opened on first use and driven
    through :func:`anyio.to_thread.run_sync`; it is closed by ``aclose()`` or at the end of
    ``async with lease:``, and opened again when needed after a failure. Its
    ``application_name`` is ``anytasks-lease-<pid>`` (the process's id), as
    ``pg_stat_activity`` shows it.

    :param dsn: a libpq connection string or URI, such as
        ``postgresql://app@db.internal/app``.
    :param key: the name of the lease (the row's primary key).
    :param ttl: seconds that an acquire or renew keeps the lease.
    :param table: the table's name, optionally schema-qualified (``"ops.leases"``).
    :raises TypeError: if ``dsn``, ``key`` or ``table`` is not a str or ``ttl`` not a number.
    :raises ValueError: if ``dsn``, ``key`` or ``table`` is empty or ``ttl`` not positive and
        finite.
    """

    __slots__ = ("_conn", "_dsn", "_lock", "_sql", "_table", "_table_ready")

    def __init__(self, dsn: str, *, key: str, ttl: float, table: str = "anytasks_lease") -> None:
        for name, value in [("dsn", dsn), ("table", table)]:
            if not isinstance(value, str):
                raise TypeError(f"`{name}` must be a str, not {type(value).__name__!r}")
            if not value:
                raise ValueError(f"`{name}` must not be empty")
        self._dsn = dsn
        super().__init__(key, ttl)
        self._table = table
        self._conn: psycopg.Connection[Any] | None = None
        self._table_ready = False
        self._sql: dict[str, Any] = {}
        # Serialises this object's calls on its one connection, in the worker threads.
        self._lock = threading.Lock()

    def _copy(self) -> PostgresLease:
        """A lease like this one with a connection of its own (a run of a loop uses it)."""
        return PostgresLease(self._dsn, key=self._key, ttl=self._ttl, table=self._table)

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
        """Create the lease table if it does not exist (what the first use does anyway)."""
        await self._call(_nothing)

    def _statements(self) -> dict[str, Any]:
        if not self._sql:
            from psycopg import sql

            table = sql.Identifier(*self._table.split("."))
            statements: list[tuple[str, LiteralString]] = [
                ("table", TABLE_SQL),
                ("acquire", _ACQUIRE),
                ("renew", _RENEW),
                ("release", _RELEASE),
                ("record_slot", _RECORD_SLOT),
            ]
            for name, text in statements:
                self._sql[name] = sql.SQL(text).format(table=table)
        return self._sql

    def _connection(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                # Prepared statements break on PgBouncer in transaction mode.
                prepare_threshold=None,
                connect_timeout=max(2, round(self._ttl)),
                # Names the process, so that an operator can find the connection.
                application_name=f"anytasks-lease-{os.getpid()}",
            )
        if not self._table_ready:
            # Sessions creating the table at once: IF NOT EXISTS does not cover the race (the
            # loser fails on the table's row type), and the winner has made it.
            races = (
                psycopg.errors.UniqueViolation,
                psycopg.errors.DuplicateObject,
                psycopg.errors.DuplicateTable,
            )
            with contextlib.suppress(*races):
                self._conn.execute(self._statements()["table"])
            self._table_ready = True
        return self._conn

    def _run(self, work: Any) -> Any:
        import psycopg

        with self._lock:
            try:
                return work(self._connection())
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                conn, self._conn = self._conn, None
                if conn is not None:
                    conn.close()
                raise LeaseUnavailable(f"{self!r}: {exc}") from exc

    async def _call(self, work: Any) -> Any:
        # Abandon on cancel: a caller whose deadline passed stops waiting at once; the
        # worker finishes the statement and gives the connection back through the lock.
        return await anyio.to_thread.run_sync(self._run, work, abandon_on_cancel=True)

    def _params(self, holder: str, token: int | None = None) -> dict[str, Any]:
        return {"key": self._key, "holder": holder, "token": token, "ttl": self._ttl}

    async def _fetchone(self, name: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        statement = self._statements()[name]

        def work(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            cursor = conn.execute(statement, params)
            return cursor.fetchone() if cursor.description is not None else None

        result: tuple[Any, ...] | None = await self._call(work)
        return result

    async def acquire(self, holder: str) -> Grant | None:
        """See :meth:`Lease.acquire`."""
        check_holder(holder)
        sent_at = anyio.current_time()
        row = await self._fetchone("acquire", self._params(holder))
        if row is None:
            return None
        return Grant(
            self._key, holder, int(row[0]), _valid_until(sent_at, self._ttl), _utc(row[1])
        )

    async def renew(self, grant: Grant) -> Grant | None:
        """See :meth:`Lease.renew`."""
        check_grant(self, grant)
        sent_at = anyio.current_time()
        row = await self._fetchone("renew", self._params(grant.holder, grant.token))
        if row is None:
            return None
        return Grant(
            self._key, grant.holder, grant.token, _valid_until(sent_at, self._ttl), _utc(row[0])
        )

    async def release(self, grant: Grant) -> None:
        """See :meth:`Lease.release`."""
        check_grant(self, grant)
        await self._fetchone("release", self._params(grant.holder, grant.token))

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        """See :meth:`Lease.record_slot`."""
        check_grant(self, grant)
        params = self._params(grant.holder, grant.token) | {"slot": check_slot(slot)}
        return await self._fetchone("record_slot", params) is not None
