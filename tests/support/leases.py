"""A lease store wrapper for the exclusive-loop tests: a replica cut off from its store."""

from __future__ import annotations

import datetime
from typing import Any

from anytasks.lease import Grant, Lease, LeaseUnavailable


class Partitioned:
    """A lease store that the test can cut this replica off from: every call then raises
    LeaseUnavailable, as if the network between them were down."""

    def __init__(self, inner: Lease) -> None:
        self.inner = inner
        self.cut = False
        self.key, self.ttl = inner.key, inner.ttl

    def _check(self) -> None:
        if self.cut:
            raise LeaseUnavailable("partitioned from the store")

    async def acquire(self, holder: str) -> Grant | None:
        self._check()
        return await self.inner.acquire(holder)

    async def renew(self, grant: Grant) -> Grant | None:
        self._check()
        return await self.inner.renew(grant)

    async def release(self, grant: Grant) -> None:
        self._check()
        await self.inner.release(grant)

    async def record_slot(self, grant: Grant, slot: datetime.datetime) -> bool:
        self._check()
        return await self.inner.record_slot(grant, slot)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> Partitioned:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.inner.__aexit__(*exc)
