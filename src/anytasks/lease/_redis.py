"""RedisLease: a lease on one Redis primary, through coredis (AnyIO: asyncio and Trio).

Two Redis keys per lease key ``K``:

- ``anytasks:lease:K:holder``, a string ``"<token>:<holder>"`` set with ``PX ttl``: the lease
  itself. Redis expires it by its own clock; while it exists, the lease is held.
- ``anytasks:lease:K``, a hash that outlives every holder: ``fence``, the last token handed
  out, and ``slot``, the last slot recorded (microseconds since the Unix epoch).

Each operation is one Lua script, which Redis runs atomically, so "check the holder, then
change" never interleaves with another client.
"""

from __future__ import annotations

import datetime
import math
import os
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import anyio
import anyio.lowlevel

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
    import coredis
    from coredis.commands import Script
    from typing_extensions import Self

# KEYS[1] holder key, KEYS[2] state hash; ARGV[1] holder, ARGV[2] ttl in ms.
# Returns {token} or {token, slot} (the token as a string of digits: Lua's numbers would
# print a large one in exponent form), or nil if another holder has the lease.
# A missing counter (a new key, or a Redis that lost its data) starts from the server's clock
# in microseconds, so tokens still increase after a restart without persistence, as long as
# the server's wall clock does not go back.
ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
    local sep = string.find(current, ':', 1, true)
    if string.sub(current, sep + 1) ~= ARGV[1] then
        return nil
    end
    redis.call('SET', KEYS[1], current, 'PX', ARGV[2])
    return {string.sub(current, 1, sep - 1), redis.call('HGET', KEYS[2], 'slot')}
end
local token
if redis.call('HEXISTS', KEYS[2], 'fence') == 1 then
    token = string.format('%d', redis.call('HINCRBY', KEYS[2], 'fence', 1))
else
    local now = redis.call('TIME')
    token = now[1] .. string.format('%06d', tonumber(now[2]))
    redis.call('HSET', KEYS[2], 'fence', token)
end
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return {token, redis.call('HGET', KEYS[2], 'slot')}
"""

# ARGV[1] "<token>:<holder>", ARGV[2] ttl in ms. Returns {1} or {1, slot}, or nil if lost.
RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return nil
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, redis.call('HGET', KEYS[2], 'slot')}
"""

# ARGV[1] "<token>:<holder>". Returns 1 if released, 0 if it was not held so.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# ARGV[1] "<token>:<holder>", ARGV[2] slot in microseconds. Returns 1 if stored, else 0.
RECORD_SLOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
local stored = redis.call('HGET', KEYS[2], 'slot')
if stored and tonumber(stored) >= tonumber(ARGV[2]) then
    return 0
end
redis.call('HSET', KEYS[2], 'slot', ARGV[2])
return 1
"""

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _to_micros(slot: datetime.datetime) -> int:
    return (slot - _EPOCH) // datetime.timedelta(microseconds=1)


def _from_micros(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    return _EPOCH + datetime.timedelta(microseconds=int(value))


@final
class RedisLease(KeyedLease):
    """A lease on a single Redis primary (Redis 6.2 or later), through coredis.

    Expiry is Redis's own (``SET ... PX``), by the server's clock; acquire, renew, release
    and record-slot are Lua scripts, so each check-and-change is atomic. The fencing counter
    and the last slot live in a hash that expiry does not touch. Configure Redis to persist
    (``appendonly yes``) so that the last slot survives a restart; tokens keep increasing
    even without it (a lost counter restarts from the server's clock in microseconds). Under
    asynchronous replication a failover to a replica can lose the latest grant, counter
    included: two holders may then overlap with the *same* token, which a ``fence <= token``
    check accepts from both. Use one primary without failover (or ``min-replicas-to-write``)
    where that matters; see the "Running replicas" page.

    coredis keeps its connections in a task group, so the lease must be used inside
    ``async with lease:``, in the task that calls it. The connections are named
    ``anytasks-lease-<pid>`` (the process's id), as ``CLIENT LIST`` shows them.

    :param url: a Redis URL, such as ``redis://localhost:6379/0`` or
        ``unix:///run/redis.sock``.
    :param key: the name of the lease; the Redis keys are ``anytasks:lease:<key>`` and
        ``anytasks:lease:<key>:holder``.
    :param ttl: seconds that an acquire or renew keeps the lease.
    :raises TypeError: if ``url`` or ``key`` is not a str or ``ttl`` not a number.
    :raises ValueError: if ``url`` or ``key`` is empty or ``ttl`` not positive and finite.
    """

    __slots__ = ("_client", "_keys", "_scripts", "_stack", "_ttl_ms", "_url")

    def __init__(self, url: str, *, key: str, ttl: float) -> None:
        if not isinstance(url, str):
            raise TypeError(f"`url` must be a str, not {type(url).__name__!r}")
        if not url:
            raise ValueError("`url` must not be empty")
        self._url = url
        super().__init__(key, ttl)
        # Round up: the server must never expire the lease before the holder stops trusting it.
        self._ttl_ms = max(1, math.ceil(self._ttl * 1000))
        self._keys = [f"anytasks:lease:{key}:holder", f"anytasks:lease:{key}"]
        self._client: coredis.Redis[bytes] | None = None
        self._scripts: dict[str, Script[bytes]] = {}
        self._stack: AsyncExitStack | None = None

    def _copy(self) -> RedisLease:
        """A lease like this one with connections of its own (a run of a loop enters it)."""
        return RedisLease(self._url, key=self._key, ttl=self._ttl)

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError(f"{self!r} cannot be entered twice")
        import coredis
        from coredis.retry import NoRetryPolicy

        timeout = max(self._ttl, 1.0)
        client: coredis.Redis[bytes] = coredis.Redis.from_url(
            self._url,
            decode_responses=False,
            # A failed request is reported, not retried: the caller decides, and the grant it
            # holds expires on its own schedule. The next request takes a new connection.
            retry_policy=NoRetryPolicy(),
            connect_timeout=timeout,
            stream_timeout=timeout,
            # Names the process, so that an operator can find the connection (CLIENT LIST).
            client_name=f"anytasks-lease-{os.getpid()}",
        )
        # Entering starts coredis's task group; it connects on the first request.
        stack = AsyncExitStack()
        await stack.enter_async_context(client)
        self._stack = stack
        self._client = client
        self._scripts = {
            name: client.register_script(source)
            for name, source in [
                ("acquire", ACQUIRE),
                ("renew", RENEW),
                ("release", RELEASE),
                ("record_slot", RECORD_SLOT),
            ]
        }
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def aclose(self) -> None:
        """Drop the open connections (the next call opens a new one); the client itself
        shuts down when the ``async with`` block ends.
        """
        await anyio.lowlevel.checkpoint()
        if self._client is not None:
            self._client.connection_pool.disconnect()

    async def _run(self, name: str, args: list[str | int]) -> Any:
        if self._client is None:
            raise RuntimeError(f"{self!r} must be used inside `async with lease:`")
        from coredis.exceptions import ConnectionError as RedisConnectionError

        # The replies are Lua tables of strings and integers, read by the callers.
        script: Any = self._scripts[name]
        try:
            return await script(keys=self._keys, args=args)
        except (
            RedisConnectionError,
            TimeoutError,
            OSError,
            # The connection's tasks ended under it (a cancelled scope around the client).
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
        ) as exc:
            raise LeaseUnavailable(f"{self!r}: {name} failed: {exc!r}") from exc

    async def acquire(self, holder: str) -> Grant | None:
        """See :meth:`Lease.acquire`."""
        check_holder(holder)
        sent_at = anyio.current_time()
        reply = await self._run("acquire", [holder, self._ttl_ms])
        if reply is None:
            return None
        slot = _from_micros(reply[1]) if len(reply) > 1 else None
        return Grant(self._key, holder, int(reply[0]), _valid_until(sent_at, self._ttl), slot)

    async def renew(self, grant: Grant) -> Grant | None:
        """See :meth:`Lease.renew`."""
        check_grant(self, grant)
        sent_at = anyio.current_time()
        reply = await self._run("renew", [f"{grant.token}:{grant.holder}", self._ttl_ms])
        if reply is None:
            return None
        slot = _from_micros(reply[1]) if len(reply) > 1 else None
        return Grant(self._key, grant.holder, grant.token, _valid_until(sent_at, self._ttl), slot)

    async def release(self, grant: Grant) -> None:
        """See :meth:`Lease.release`."""
        check_grant(self, grant)
        await self._run("release", [f"{grant.token}:{grant.holder}"])

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        """See :meth:`Lease.record_slot`."""
        check_grant(self, grant)
        micros = _to_micros(check_slot(slot))
        reply = await self._run("record_slot", [f"{grant.token}:{grant.holder}", micros])
        return bool(reply)
