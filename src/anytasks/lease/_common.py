"""What every lease store shares: the grant, the error, the protocol, validation, the margin."""

from __future__ import annotations

import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, final, runtime_checkable

from .._checks import check_seconds
from .._frozen import Frozen

if TYPE_CHECKING:
    from typing_extensions import Self

#: The share of the ttl that a holder gives up, so that it stops trusting its lease before the
#: server can give it away. Expiry is measured from the holder's monotonic clock read *before*
#: the request was sent, so network and server delays only shorten the holder's belief; what
#: is left to cover is the two clocks running at different rates, which real clocks do by far
#: less than 1 %. The servers round the ttl up (Redis: to the next millisecond), never down.
SAFETY_MARGIN = 0.1


class LeaseUnavailable(ConnectionError):
    """The lease store could not be reached: connecting or a request failed (or, for
    :class:`SQLiteLease`, its file cannot be used; the message says why).

    Nothing is known about the outcome of the request that failed: treat the lease as lost
    (it is, at the latest, when the grant's ``valid_until`` passes). The next call on the same
    lease object connects again. The original error, where there is one, is the
    ``__cause__``.
    """


@final
class Grant(Frozen):
    """Proof that a holder held a lease, and until when it may rely on that.

    :ivar key: the lease's key.
    :ivar holder: who holds it (the string passed to ``acquire``).
    :ivar token: the fencing token: an integer that strictly increases every time the lease
        changes hands for this key (and when a holder takes it again after it expired). Pass
        it with every write that must not come from a stale holder (see :mod:`anytasks.lease`).
    :ivar valid_until: until when, on this process's monotonic clock
        (:func:`anyio.current_time`), the holder may act as the only holder: the clock read
        before the request was sent, plus the ttl, less the safety margin.
    :ivar last_slot: the latest slot that any holder of this key recorded with
        :meth:`Lease.record_slot`, or ``None``.
    """

    __slots__ = ("holder", "key", "last_slot", "token", "valid_until")
    __match_args__ = ("key", "holder", "token", "valid_until", "last_slot")

    key: str
    holder: str
    token: int
    valid_until: float
    last_slot: datetime.datetime | None

    def __init__(
        self,
        key: str,
        holder: str,
        token: int,
        valid_until: float,
        last_slot: datetime.datetime | None,
    ) -> None:
        self._set(
            key=key, holder=holder, token=token, valid_until=valid_until, last_slot=last_slot
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"Grant({fields})"


@runtime_checkable
class Lease(Protocol):
    """A named lease that at most one holder has at a time, with expiry by the store's clock.

    The stores (:class:`MemoryLease`, :class:`SQLiteLease`, :class:`RedisLease`,
    :class:`PostgresLease`) share this interface. Use a lease as an async context manager in
    the task that calls it (``async with lease:``); the block closes its connections. Every
    method may raise :class:`LeaseUnavailable` when the store cannot be reached (or used); the
    next call reconnects.
    """

    @property
    def key(self) -> str:
        """The name of the lease: every lease object with this key competes for one lease."""
        ...

    @property
    def ttl(self) -> float:
        """Seconds that an acquire or renew keeps the lease, by the store's clock."""
        ...

    async def acquire(self, holder: str) -> Grant | None:
        """Take the lease for ``holder`` if it is free or expired, or keep it if ``holder``
        already holds it (the same token, a new expiry). ``None`` if someone else holds it.
        """
        ...

    async def renew(self, grant: Grant) -> Grant | None:
        """Extend the lease if ``grant``'s holder still holds it with ``grant``'s token:
        a new grant with the same token and a later ``valid_until``; ``None`` if it was lost.
        """
        ...

    async def release(self, grant: Grant) -> None:
        """Give the lease up so a standby can take it at once; nothing if it was already lost.

        Idempotent. The fencing counter and the last slot are kept.
        """
        ...

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        """Store ``slot`` (an aware datetime) as the last slot run, if ``grant`` still holds
        the lease and ``slot`` is later than the stored one. Returns whether it was stored.
        """
        ...

    async def aclose(self) -> None:
        """Close the connections this lease opened; the next call opens them again."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"`key` must be a str, not {type(key).__name__!r}")
    if not key:
        raise ValueError("`key` must not be empty")
    return key


def check_ttl(ttl: object) -> float:
    return check_seconds("ttl", ttl, positive=True)


def check_holder(holder: object) -> str:
    if not isinstance(holder, str):
        raise TypeError(f"`holder` must be a str, not {type(holder).__name__!r}")
    if not holder:
        raise ValueError("`holder` must not be empty")
    return holder


def check_grant(lease: Lease, grant: object) -> Grant:
    if not isinstance(grant, Grant):
        raise TypeError(f"`grant` must be a Grant, not {type(grant).__name__!r}")
    if grant.key != lease.key:
        raise ValueError(f"`grant` is for key {grant.key!r}, not {lease.key!r}")
    return grant


def check_slot(slot: object) -> datetime.datetime:
    if not isinstance(slot, datetime.datetime):
        raise TypeError(f"`slot` must be a datetime, not {type(slot).__name__!r}")
    if slot.utcoffset() is None:
        raise ValueError(f"`slot` must be an aware datetime, got {slot!r}")
    return slot.astimezone(datetime.timezone.utc)


def valid_until(sent_at: float, ttl: float) -> float:
    """How long a holder may trust a lease granted by a request sent at ``sent_at``."""
    return sent_at + ttl * (1 - SAFETY_MARGIN)


class KeyedLease:
    """What every lease store has: its checked ``key`` and ``ttl``, and a repr naming them."""

    __slots__ = ("_key", "_ttl")

    def __init__(self, key: object, ttl: object) -> None:
        self._key = check_key(key)
        self._ttl = check_ttl(ttl)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self._key!r}, ttl={self._ttl!r})"

    @property
    def key(self) -> str:
        """The name of the lease."""
        return self._key

    @property
    def ttl(self) -> float:
        """Seconds that an acquire or renew keeps the lease."""
        return self._ttl

    async def aclose(self) -> None:
        """Close what the store holds open; see :meth:`Lease.aclose`."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
