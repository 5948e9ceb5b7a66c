"""anytasks.lease without servers: MemoryLease on virtual time, validation, lazy imports, the
package's exports."""

from __future__ import annotations

import datetime
import math
import subprocess
import sys
import uuid

import anyio
import pytest

import anytasks.lease as lease_package
from anytasks.lease import (
    SAFETY_MARGIN,
    Grant,
    Lease,
    MemoryLease,
    PostgresLease,
    RedisLease,
    SQLiteLease,
)

pytestmark = pytest.mark.anyio

UTC = datetime.timezone.utc
SLOT = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def key() -> str:
    """A key of its own: MemoryLease's registry lives as long as the process."""
    return f"test-{uuid.uuid4()}"


def test_every_store_is_a_lease() -> None:
    stores = [
        MemoryLease("k", ttl=1),
        RedisLease("redis://localhost", key="k", ttl=1),
        PostgresLease("postgresql://localhost/db", key="k", ttl=1),
        SQLiteLease("/var/lib/app/leases.db", key="k", ttl=1),
    ]
    for store in stores:
        assert isinstance(store, Lease)
        assert (store.key, store.ttl) == ("k", 1.0)
        assert "key='k'" in repr(store)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"key": 3, "ttl": 1}, TypeError, "`key` must be a str, not 'int'"),
        ({"key": "", "ttl": 1}, ValueError, "`key` must not be empty"),
        ({"key": "k", "ttl": "1"}, TypeError, "`ttl` must be a number, not 'str'"),
        ({"key": "k", "ttl": True}, TypeError, "`ttl` must be a number"),
        ({"key": "k", "ttl": 0}, ValueError, "`ttl` must be a positive finite number, got 0"),
        ({"key": "k", "ttl": math.inf}, ValueError, "`ttl` must be a positive finite number"),
        ({"key": "k", "ttl": math.nan}, ValueError, "`ttl` must be a positive finite number"),
    ],
)
def test_construction_is_validated(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        MemoryLease(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        RedisLease("redis://localhost", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        PostgresLease("postgresql://localhost/db", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error, match=message):
        SQLiteLease("/var/lib/app/leases.db", **kwargs)  # type: ignore[arg-type]


def test_urls_and_table_are_validated() -> None:
    with pytest.raises(TypeError, match="`url` must be a str"):
        RedisLease(None, key="k", ttl=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`url` must not be empty"):
        RedisLease("", key="k", ttl=1)
    with pytest.raises(TypeError, match="`dsn` must be a str"):
        PostgresLease(b"x", key="k", ttl=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`table` must not be empty"):
        PostgresLease("postgresql://localhost/db", key="k", ttl=1, table="")


async def test_redis_lease_outside_its_block_says_so() -> None:
    lease = RedisLease("redis://localhost", key="k", ttl=1)
    with pytest.raises(RuntimeError, match=r"RedisLease\(key='k', ttl=1.0\) must be used inside"):
        await lease.acquire("a")
    await lease.aclose()  # nothing open: nothing to do


def test_importing_the_lease_module_imports_no_client() -> None:
    code = (
        "import sys, anytasks\n"
        "assert 'anytasks.lease' not in sys.modules\n"
        "import anytasks.lease as lease\n"
        "lease.RedisLease('redis://x', key='k', ttl=1)\n"
        "lease.PostgresLease('postgresql://x', key='k', ttl=1)\n"
        "lease.SQLiteLease('/var/lib/app/leases.db', key='k', ttl=1)\n"
        "clients = ('coredis', 'psycopg', 'redis', 'asyncpg', 'sqlite3')\n"
        "print(sorted(m for m in clients if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out == "[]\n"


def test_the_package_exports_every_store_under_its_own_name() -> None:
    public = {name for name in dir(lease_package) if not name.startswith("_")}
    # Sorted as ruff's RUF022 sorts it: constants first.
    assert lease_package.__all__ == sorted(lease_package.__all__, key=lambda n: not n.isupper())
    assert set(lease_package.__all__) == public
    for name in lease_package.__all__:
        if isinstance(getattr(lease_package, name), type):
            assert getattr(lease_package, name).__module__ == "anytasks.lease"


@pytest.mark.virtual_time
async def test_memory_lease_on_virtual_time(key: str) -> None:
    a = MemoryLease(key, ttl=10)
    b = MemoryLease(key, ttl=10)
    start = anyio.current_time()
    async with a, b:
        grant = await a.acquire("a")
        assert grant is not None
        assert grant.valid_until == start + 10 * (1 - SAFETY_MARGIN)
        assert await b.acquire("b") is None
        again = await a.acquire("a")
        assert again is not None
        assert again.token == grant.token

        await anyio.sleep(8)
        renewed = await a.renew(grant)
        assert renewed is not None
        assert (renewed.token, renewed.valid_until) == (grant.token, start + 8 + 9)
        await anyio.sleep(8)  # 16 s after the acquire, 8 after the renewal: still held
        assert await b.acquire("b") is None

        assert await a.record_slot(renewed, SLOT)
        assert not await a.record_slot(renewed, SLOT)  # not later than the stored one
        await anyio.sleep(10)  # expired by the store's clock
        assert await a.renew(renewed) is None
        assert not await a.record_slot(renewed, SLOT + datetime.timedelta(1))

        taken = await b.acquire("b")
        assert taken is not None
        assert taken.token > grant.token
        assert taken.last_slot == SLOT
        await a.release(renewed)  # stale: releases nothing
        assert await a.acquire("a") is None
        await b.release(taken)
        await b.release(taken)  # idempotent
        back = await a.acquire("a")
        assert back is not None
        assert back.token > taken.token


@pytest.mark.virtual_time
async def test_memory_lease_taken_again_after_expiry_gets_a_new_token(key: str) -> None:
    lease = MemoryLease(key, ttl=1)
    first = await lease.acquire("a")
    await anyio.sleep(1)
    second = await lease.acquire("a")
    assert first is not None
    assert second is not None
    assert second.token == first.token + 1


async def test_arguments_of_calls_are_validated(key: str) -> None:
    lease = MemoryLease(key, ttl=1)
    with pytest.raises(TypeError, match="`holder` must be a str"):
        await lease.acquire(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`holder` must not be empty"):
        await lease.acquire("")
    grant = await lease.acquire("a")
    assert grant is not None
    other = Grant("other", "a", grant.token, grant.valid_until, None)
    with pytest.raises(ValueError, match=f"`grant` is for key 'other', not '{key}'"):
        await lease.renew(other)
    with pytest.raises(TypeError, match="`grant` must be a Grant"):
        await lease.release(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="`slot` must be a datetime"):
        await lease.record_slot(grant, "2026")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="`slot` must be an aware datetime"):
        await lease.record_slot(grant, SLOT.replace(tzinfo=None))
    seoul = datetime.timezone(datetime.timedelta(hours=9))
    assert await lease.record_slot(grant, SLOT.astimezone(seoul))
    renewed = await lease.renew(grant)
    assert renewed is not None
    assert renewed.last_slot == SLOT
    assert renewed.last_slot.tzinfo is UTC
