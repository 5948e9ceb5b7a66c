"""One replica of many runs each slot: the lease an exclusive loop keeps, and its guard.

A run of a loop made with ``exclusive=`` has a keeper task beside its iterations. As a
standby, the keeper tries to acquire the lease about every ttl/3 (with jitter, so that
replicas do not poll in step), and a standby tries once more when a slot comes due; as the
holder, the keeper renews it every ttl/3. An iteration runs its
slot only if the run holds the lease and the slot is later than the last one that any holder
recorded, and only after recording it, so that no slot runs twice. The body runs in a cancel
scope whose deadline is the grant's proven validity, which each renewal moves: a renewal that
is refused, or validity that runs out (the store unreachable, the process paused), cancels the
body, and the run goes back to standby. The end of the run gives the lease up, so that a
standby takes over at its next poll rather than after a ttl.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Generator

import anyio
from anyio.abc import TaskStatus

from .._frozen import replace
from .._lease_context import CurrentLease, current
from .._schedules.missed import draw
from ..lease._common import Grant, Lease, LeaseUnavailable

logger = logging.getLogger("anytasks")

#: The longest that giving the lease up may hold up the end of a run: a store that does not
#: answer lets the lease expire instead.
RELEASE_TIMEOUT = 5.0


def holder_id() -> str:
    """A holder name unique to this run: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"


def fresh_copy(lease: Lease) -> Lease:
    """A copy of ``lease`` with its own connections, for one run (the stores make one);
    ``lease`` itself for a store of your own."""
    copy: Callable[[], Lease] | None = getattr(lease, "_copy", None)
    return copy() if copy is not None else lease


class Exclusive:
    """The lease side of one run of an exclusive loop."""

    __slots__ = (
        "grant",
        "holder",
        "lease",
        "lost",
        "name",
        "paused",
        "poll",
        "random",
        "scope",
        "scope_token",
    )

    def __init__(
        self,
        lease: Lease,
        name: str,
        random: Callable[[], float],
        paused: Callable[[], bool] = lambda: False,
    ) -> None:
        self.lease = fresh_copy(lease)
        self.holder = holder_id()
        self.name = name
        self.random = random
        # Whether the loop is paused: then it gives the lease up and stands by, so that a
        # paused replica does not hold the others back.
        self.paused = paused
        self.poll = lease.ttl / 3
        # What the run holds, while it does.
        self.grant: Grant | None = None
        # The cancel scope of the body running under the lease, and that lease's token.
        self.scope: anyio.CancelScope | None = None
        self.scope_token = 0
        # Whether the latest iteration lost its lease.
        self.lost = False

    async def run(self, iterate: Callable[[], Awaitable[object]]) -> None:
        """Run ``iterate`` with the keeper beside it; give the lease up at the end."""
        failure: BaseException | None = None
        try:
            async with self.lease:
                try:
                    async with anyio.create_task_group() as keeper:
                        # Once the keeper has tried for the lease: a replica that starts on a
                        # slot can then run it.
                        await keeper.start(self._keep, name=f"lease keeper of loop {self.name!r}")
                        try:
                            await iterate()
                        except anyio.get_cancelled_exc_class():
                            raise
                        except BaseException as exc:
                            # Raised below: the task group would wrap it in an exception group
                            # (SystemExit and KeyboardInterrupt too).
                            failure = exc
                        finally:
                            keeper.cancel_scope.cancel()
                finally:
                    await self._release()
        except anyio.get_cancelled_exc_class():
            # The run was cancelled as the body failed (the task group's or the store's exit
            # saw it): the body's error still wins, as it does for a loop without a lease.
            if failure is None:
                raise
        if failure is not None:
            raise failure

    # -- the keeper -------------------------------------------------------------------

    async def _keep(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        lease = self.lease
        while True:
            grant = self.grant
            try:
                if self.paused():
                    await self._release()
                elif grant is None:
                    acquired = await lease.acquire(self.holder)
                    if acquired is not None:
                        self._hold(acquired)
                else:
                    renewed = await lease.renew(grant)
                    if renewed is None:
                        self._lose("another holder has it")
                    else:
                        self._hold(renewed)
            except Exception as exc:
                # The store is unreachable (or a store of your own failed): a grant still
                # runs out on its own schedule.
                logger.warning(
                    "Lease %r of loop %r: %s",
                    lease.key,
                    self.name,
                    exc,
                    exc_info=not isinstance(exc, LeaseUnavailable),
                )
                held = self.grant
                if held is not None and anyio.current_time() >= held.valid_until:
                    self._lose("its validity ran out")
            task_status.started()
            task_status = anyio.TASK_STATUS_IGNORED
            held = self.grant
            if held is None:
                # Standby: from ttl/6 to ttl/2, so that replicas spread out.
                delay = self.poll * (0.5 + draw(self.random))
            else:
                # Holder: renew every ttl/3, and after a failed renewal once more before
                # the grant runs out.
                delay = min(self.poll, max(0.0, held.valid_until - anyio.current_time()) / 2)
            await anyio.sleep(delay)

    def _hold(self, grant: Grant) -> None:
        previous, self.grant = self.grant, grant
        if previous is None:
            logger.info("Loop %r holds lease %r (token %d)", self.name, grant.key, grant.token)
        scope = self.scope
        if scope is not None:
            if grant.token == self.scope_token:
                scope.deadline = grant.valid_until
            else:  # the lease changed hands since the body began, if only to this run again
                scope.cancel()

    def _lose(self, why: str) -> None:
        grant, self.grant = self.grant, None
        if grant is not None:
            logger.warning("Loop %r lost lease %r (%s); standing by", self.name, grant.key, why)
        if self.scope is not None:
            self.scope.cancel()

    async def _release(self) -> None:
        grant, self.grant = self.grant, None
        if grant is None:
            return
        # Shielded from the run's cancellation, and bounded: a store that does not answer
        # lets the lease expire instead. On connections of its own: a cancelled run's have
        # gone with it (coredis reads them in tasks under the run's cancel scope, and before
        # AnyIO 4.16 a request on them waited for the deadline instead of failing).
        deadline = anyio.current_time() + min(self.lease.ttl, RELEASE_TIMEOUT)
        with anyio.CancelScope(shield=True, deadline=deadline) as scope:
            try:
                lease = fresh_copy(self.lease)
                if lease is self.lease:  # a store of your own: no copy to make
                    await lease.release(grant)
                else:
                    async with lease:
                        await lease.release(grant)
            except Exception as exc:
                logger.warning(
                    "Loop %r could not release lease %r (it expires after its ttl): %r",
                    self.name,
                    grant.key,
                    exc,
                )
        if scope.cancelled_caught:
            logger.warning(
                "Loop %r could not release lease %r in %.1f s (it expires after its ttl)",
                self.name,
                grant.key,
                min(self.lease.ttl, RELEASE_TIMEOUT),
            )

    # -- the iterations -----------------------------------------------------------------

    def last_recorded(self) -> datetime.datetime | None:
        """The latest slot that any holder recorded, if this run holds the lease: where a
        replica that starts (again) after a stop picks its schedule up."""
        grant = self.grant
        return None if grant is None else grant.last_slot

    async def claim(self, slot: datetime.datetime) -> bool:
        """Whether this run may run ``slot``: it holds the lease, the slot is later than any
        recorded, and recording it succeeded."""
        grant = self.grant
        if grant is None:
            # A standby tries for the lease when a slot comes due too, not only at its polls
            # (ttl/6 to ttl/2 apart): a holder that gave the lease up before the slot is
            # followed on time, however short the interval is beside the ttl.
            grant = await self._acquire_now()
            if grant is None:
                return False
        if anyio.current_time() >= grant.valid_until:
            return False
        if grant.last_slot is not None and slot <= grant.last_slot:
            return False
        try:
            recorded = await self.lease.record_slot(grant, slot)
        except Exception as exc:
            logger.warning(
                "Loop %r could not record slot %s in lease %r: %s",
                self.name,
                slot.isoformat(),
                grant.key,
                exc,
            )
            return False
        held = self.grant
        if recorded and held is not None and held.token == grant.token:
            self.grant = replace(held, last_slot=slot)
            return True
        return False

    async def _acquire_now(self) -> Grant | None:
        try:
            acquired = await self.lease.acquire(self.holder)
        except Exception:
            return None  # the keeper reports a store that cannot be reached
        if acquired is not None:
            self._hold(acquired)
        return acquired

    @contextlib.contextmanager
    def guard(self, slot: datetime.datetime) -> Generator[anyio.CancelScope]:
        """A cancel scope for the body of ``slot`` that ends with the lease's validity."""
        grant = self.grant
        scope = anyio.CancelScope(deadline=-math.inf if grant is None else grant.valid_until)
        self.scope, self.scope_token = scope, 0 if grant is None else grant.token
        reset = current.set(CurrentLease(self.lease.key, self.scope_token, slot))
        try:
            with scope:
                yield scope
        finally:
            self.scope = None
            current.reset(reset)
            self.lost = scope.cancelled_caught
