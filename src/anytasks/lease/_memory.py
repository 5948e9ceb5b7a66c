"""MemoryLease: a lease shared by the loops of one process, on the event loop's clock."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, final

import anyio
import anyio.lowlevel

from ._common import Grant, KeyedLease, check_grant, check_holder, check_slot
from ._common import valid_until as _valid_until

if TYPE_CHECKING:
    pass


class _State:
    """One key's lease, as the server would keep it."""

    __slots__ = ("expires_at", "holder", "last_slot", "token")

    def __init__(self) -> None:
        self.holder: str | None = None
        self.token = 0
        self.expires_at = float("-inf")
        self.last_slot: datetime.datetime | None = None


# One state per key, for every MemoryLease in the process: that is what makes two lease
# objects with one key compete. Never shrinks; keys are few and named by the program.
_registry: dict[str, _State] = {}


@final
class MemoryLease(KeyedLease):
    """A lease that the loops of one process share: for tests, and for several loops (or
    several instances of a method loop) that must not run at once.

    Every ``MemoryLease`` with the same ``key`` in the process competes for one lease. Time is
    the event loop's clock (:func:`anyio.current_time`), which is also the "server" clock, so it
    runs on :mod:`anytasks.testing`'s virtual time. It opens nothing: ``aclose()`` and the
    ``async with`` block are there for the common interface.

    :param key: the name of the lease.
    :param ttl: seconds that an acquire or renew keeps the lease.
    :raises TypeError: if ``key`` is not a str or ``ttl`` not a number.
    :raises ValueError: if ``key`` is empty or ``ttl`` is not positive and finite.
    """

    __slots__ = ()

    def __init__(self, key: str, *, ttl: float) -> None:
        super().__init__(key, ttl)

    def _copy(self) -> MemoryLease:
        # (Every copy shares the key's state: that is what a copy of it must do.)
        return MemoryLease(self._key, ttl=self._ttl)

    def _state(self) -> _State:
        return _registry.setdefault(self._key, _State())

    def _held_by(self, state: _State, grant: Grant, now: float) -> bool:
        same = state.holder == grant.holder and state.token == grant.token
        return same and now < state.expires_at

    async def acquire(self, holder: str) -> Grant | None:
        """See :meth:`Lease.acquire`."""
        check_holder(holder)
        await anyio.lowlevel.checkpoint()
        state = self._state()
        now = anyio.current_time()
        if state.holder != holder or now >= state.expires_at:
            if state.holder is not None and now < state.expires_at:
                return None
            state.holder = holder
            state.token += 1
        state.expires_at = now + self._ttl
        return Grant(self._key, holder, state.token, _valid_until(now, self._ttl), state.last_slot)

    async def renew(self, grant: Grant) -> Grant | None:
        """See :meth:`Lease.renew`."""
        check_grant(self, grant)
        await anyio.lowlevel.checkpoint()
        state = self._state()
        now = anyio.current_time()
        if not self._held_by(state, grant, now):
            return None
        state.expires_at = now + self._ttl
        return Grant(
            self._key, grant.holder, grant.token, _valid_until(now, self._ttl), state.last_slot
        )

    async def release(self, grant: Grant) -> None:
        """See :meth:`Lease.release`."""
        check_grant(self, grant)
        await anyio.lowlevel.checkpoint()
        state = self._state()
        if state.holder == grant.holder and state.token == grant.token:
            state.holder = None
            state.expires_at = float("-inf")

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        """See :meth:`Lease.record_slot`."""
        check_grant(self, grant)
        slot = check_slot(slot)
        await anyio.lowlevel.checkpoint()
        state = self._state()
        if not self._held_by(state, grant, anyio.current_time()):
            return False
        if state.last_slot is not None and slot <= state.last_slot:
            return False
        state.last_slot = slot
        return True

    async def aclose(self) -> None:
        """Nothing to close; see :meth:`Lease.aclose`."""
        await anyio.lowlevel.checkpoint()
