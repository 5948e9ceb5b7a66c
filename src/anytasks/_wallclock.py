"""The wall clock that time-of-day loops read, which follows virtual time under test."""

from __future__ import annotations

import datetime
import sys
from collections.abc import Callable

__all__ = ["now"]

# The hook that `anytasks.testing`'s virtual event loop and virtual clock provide.
_HOOK = "_anytasks_wall_now"


def now() -> datetime.datetime:
    """Return the current wall-clock time as an aware UTC datetime.

    This is :func:`datetime.datetime.now` in UTC, unless the calling task runs under a virtual
    clock from :mod:`anytasks.testing`: then it is the virtual wall time, which starts at the
    clock's ``start`` and advances with the event loop's virtual time.

    Trio is looked at before asyncio, because a Trio task may run inside an asyncio loop (guest
    mode, trio-asyncio) and it is then Trio's clock that governs it. Neither library is imported
    here: a library that nobody has imported cannot be running, so this stays cheap, and
    ``import anytasks`` never pulls in Trio.
    """
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            clock = trio.lowlevel.current_clock()
        except RuntimeError:
            pass  # not inside trio.run()
        else:
            return _call_hook(clock)

    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            pass  # no running event loop in this thread
        else:
            return _call_hook(loop)

    return datetime.datetime.now(datetime.timezone.utc)


def _call_hook(owner: object) -> datetime.datetime:
    wall_now: Callable[[], datetime.datetime] | None = getattr(owner, _HOOK, None)
    if wall_now is None:
        return datetime.datetime.now(datetime.timezone.utc)
    return wall_now()
