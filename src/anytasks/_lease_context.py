"""What the body of an exclusive loop knows about its lease: :func:`current_lease`."""

from __future__ import annotations

import datetime
from contextvars import ContextVar
from typing import final

from ._frozen import Frozen


@final
class CurrentLease(Frozen):
    """The lease under which an exclusive loop's body runs: see :func:`current_lease`.

    .. versionadded:: 0.2
    """

    __slots__ = ("key", "slot", "token")
    __match_args__ = ("key", "token", "slot")

    key: str
    """The lease's key."""
    token: int
    """The fencing token: it strictly increases every time the lease changes hands for this
    key. Pass it with every write that a stale holder must not make."""
    slot: datetime.datetime
    """The slot being run (aware UTC): the schedule's time, before any jitter."""

    def __init__(self, key: str, token: int, slot: datetime.datetime) -> None:
        self._set(key=key, token=token, slot=slot)

    def __repr__(self) -> str:
        return f"CurrentLease(key={self.key!r}, token={self.token!r}, slot={self.slot!r})"


current: ContextVar[CurrentLease | None] = ContextVar("anytasks_current_lease", default=None)


def current_lease() -> CurrentLease:
    """The lease of the exclusive loop whose body is running in the calling task (and the
    tasks it starts): its key, fencing token and slot.

    :raises RuntimeError: outside the body of a loop made with ``exclusive=``.

    Synopsis::

        @anytasks.loop(hours=24, exclusive=PostgresLease(DSN, key="report", ttl=30))
        async def report():
            lease = anytasks.current_lease()
            await save_report(fence=lease.token, day=lease.slot.date())

    .. versionadded:: 0.2
    """
    lease = current.get()
    if lease is None:
        raise RuntimeError(
            "anytasks.current_lease() was called outside the body of a loop with exclusive="
        )
    return lease
