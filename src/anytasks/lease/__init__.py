"""Leases that let one replica of many run a loop's slot: in memory, in an SQLite file (the
processes of one host), Redis or PostgreSQL.

A lease is held by one holder at a time and expires by the *store's* clock unless renewed
(for SQLite, the host's).
A holder trusts it until its grant's ``valid_until``, measured on its own monotonic clock from
*before* the request was sent, less a safety margin (:data:`SAFETY_MARGIN` of the ttl), so a
slow network or a slow server only makes the holder give up sooner. Renew about every ttl/3.

``import anytasks.lease`` imports neither coredis nor psycopg (nor sqlite3): each store imports
its client when it is first used. Install them with the extras ``anytasks[redis]`` and
``anytasks[postgres]``; SQLiteLease needs only the standard library.

Synopsis::

    from anytasks.lease import PostgresLease

    lease = PostgresLease("postgresql://app@db/app", key="daily-report", ttl=30)
    async with lease:
        grant = await lease.acquire("replica-1")
        if grant is not None:
            ...  # work until anyio.current_time() reaches grant.valid_until
            grant = await lease.renew(grant)  # None: lost, stop working
            await lease.release(grant)

Fencing
-------
A lease alone keeps replicas from *starting* the same work; it cannot stop a holder that was
paused (a long GC, a stopped VM, a slow disk) from writing after its lease has passed to
another. The grant's ``token`` increases every time the lease changes hands, so the store
that receives the writes can reject the stale one. In PostgreSQL, keep the highest token seen
beside the data and make every write conditional on it, in the same transaction::

    ALTER TABLE report ADD COLUMN fence bigint NOT NULL DEFAULT 0;

    cursor = conn.execute(
        "UPDATE report SET body = %(body)s, fence = %(token)s "
        "WHERE id = %(id)s AND fence < %(token)s",
        {"body": body, "id": report_id, "token": grant.token},
    )
    if cursor.rowcount == 0:
        ...  # a newer holder has written: this holder is stale, drop the write

Use ``fence <= %(token)s`` where one holder writes the same row more than once.
"""

from ._common import SAFETY_MARGIN as SAFETY_MARGIN
from ._common import Grant as Grant
from ._common import Lease as Lease
from ._common import LeaseUnavailable as LeaseUnavailable
from ._memory import MemoryLease as MemoryLease
from ._postgres import TABLE_SQL as TABLE_SQL
from ._postgres import PostgresLease as PostgresLease
from ._redis import RedisLease as RedisLease
from ._sqlite import SQLiteLease as SQLiteLease

__all__ = [
    "SAFETY_MARGIN",
    "TABLE_SQL",
    "Grant",
    "Lease",
    "LeaseUnavailable",
    "MemoryLease",
    "PostgresLease",
    "RedisLease",
    "SQLiteLease",
]

for _name in (
    "Grant",
    "Lease",
    "LeaseUnavailable",
    "MemoryLease",
    "PostgresLease",
    "RedisLease",
    "SQLiteLease",
):
    globals()[_name].__module__ = __name__
del _name
