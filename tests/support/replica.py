"""One replica of the fault tests (test_replicas.py), run as its own process.

An exclusive loop whose body writes the slot it runs to a shared PostgreSQL table, fenced by
the lease's token in the same transaction, and logs every attempt, accepted or not::

    python tests/support/replica.py BACKEND STORE LEASE_URL DSN KEY TTL SLOT CONTROL_DIR

BACKEND is ``asyncio``, ``asyncio+uvloop`` or ``trio``; STORE ``redis``, ``postgres`` or
``sqlite`` (LEASE_URL is then the database file's path).
The tables (made by the test): ``fence_<KEY>`` (one row: the highest token that wrote),
``runs_<KEY>`` (the work: one row per slot run, written only past the fence) and
``attempts_<KEY>`` (every write tried, with ``accepted``).

A file ``CONTROL_DIR/pause-<pid>`` makes the next body stop the whole process with SIGSTOP
just before its write (after writing ``paused-<pid>``): the test then lets another replica
take over and sends SIGCONT, and the write lands late with a stale token. The process ends
when its standard input closes (the test is gone) or after ten minutes.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg

import anytasks
from anytasks.lease import PostgresLease, RedisLease, SQLiteLease


def main() -> None:
    backend, store, lease_url, dsn, key, ttl, slot, control = sys.argv[1:9]
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {os.getpid()} {backend} %(message)s"
    )
    faulthandler.register(signal.SIGUSR1)  # the test asks for the stacks when stuck
    # Never outlive the test: it holds our standard input open.
    threading.Thread(target=_exit_at_eof, daemon=True).start()
    threading.Timer(600, os._exit, [3]).start()

    lease: Any
    if store == "redis":
        lease = RedisLease(lease_url, key=key, ttl=float(ttl))
    elif store == "sqlite":
        lease = SQLiteLease(lease_url, key=key, ttl=float(ttl))
    else:
        lease = PostgresLease(lease_url, key=key, ttl=float(ttl))
    writer = Writer(dsn, key, backend, Path(control))

    @anytasks.loop(seconds=float(slot), exclusive=lease, name=f"replica {backend}")
    async def job() -> None:
        current = anytasks.current_lease()
        # In a worker thread that the end of the lease does not stop (as a real write on its
        # way is not stopped): that is what the fence is for.
        await anyio.to_thread.run_sync(writer.write, current.slot, current.token)

    if backend == "asyncio+uvloop":
        import uvloop

        anyio.run(
            job.run, backend="asyncio", backend_options={"loop_factory": uvloop.new_event_loop}
        )
    else:
        anyio.run(job.run, backend=backend)


def _exit_at_eof() -> None:
    sys.stdin.read()
    os._exit(0)


class Writer:
    def __init__(self, dsn: str, key: str, backend: str, control: Path) -> None:
        self.dsn, self.key, self.backend, self.control = dsn, key, backend, control
        self.conn: psycopg.Connection[Any] | None = None

    def write(self, slot: Any, token: int) -> None:
        pause = self.control / f"pause-{os.getpid()}"
        if pause.exists():
            pause.unlink()
            note = {"slot": slot.isoformat(), "token": token, "at": time.time()}
            (self.control / f"paused-{os.getpid()}").write_text(json.dumps(note))
            os.kill(os.getpid(), signal.SIGSTOP)  # the whole process, mid-body
        for attempt in (1, 2):
            try:
                self._connect_and_write(slot, token)
            except psycopg.OperationalError as exc:
                # The server may have ended the session (the idle-in-transaction timeout
                # below): once more, on a new connection.
                logging.warning("write of slot %s failed (attempt %d): %r", slot, attempt, exc)
                if self.conn is not None:
                    self.conn.close()
            except psycopg.Error as exc:
                logging.warning("write of slot %s failed: %r", slot, exc)
                if self.conn is not None:
                    self.conn.close()
                return
            else:
                return

    def _connect_and_write(self, slot: Any, token: int) -> None:
        if self.conn is None or self.conn.closed:
            # A transaction left open (a client that lost its place after SIGSTOP and
            # SIGCONT, seen once: the server waiting for it, it for the server) would hold
            # the fence row's lock for good, and no replica could write again. The server ends
            # such a transaction after 0.5 s, as PostgreSQL advises for sessions that may
            # stall mid-transaction; a writer's own takes milliseconds. A holder stopped inside
            # it loses that write (its session ends), which a stale holder's write may.
            self.conn = psycopg.connect(
                self.dsn,
                application_name="replica writer",
                options="-c idle_in_transaction_session_timeout=500",
            )
        self._write(self.conn, slot, token)

    def _write(self, conn: psycopg.Connection[Any], slot: Any, token: int) -> None:
        k = self.key
        params = {"slot": slot, "token": token, "pid": os.getpid(), "backend": self.backend}
        with conn.transaction():
            # The fence: this row is locked until the transaction ends, so writers take
            # turns, and it moves only forward. One holder writes every slot: "<=".
            fence = conn.execute(
                f"UPDATE fence_{k} SET token = %(token)s WHERE token <= %(token)s", params
            )
            accepted = fence.rowcount == 1
            if accepted:
                conn.execute(
                    f"INSERT INTO runs_{k} (slot, token, pid, backend)"
                    " VALUES (%(slot)s, %(token)s, %(pid)s, %(backend)s)",
                    params,
                )
            conn.execute(
                f"INSERT INTO attempts_{k} (slot, token, pid, backend, accepted)"
                " VALUES (%(slot)s, %(token)s, %(pid)s, %(backend)s, %(accepted)s)",
                params | {"accepted": accepted},
            )


if __name__ == "__main__":
    main()
