"""What the Prometheus and OpenTelemetry listeners share: the loops seen, and the clock."""

from __future__ import annotations

import datetime
import threading
import weakref
from typing import TYPE_CHECKING, Any, final

from .._engine.backend import wall_now
from .._frozen import Frozen

if TYPE_CHECKING:
    from .._loop import Loop

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)


def wall_time() -> float:
    """The wall clock as a Unix time: virtual under :mod:`anytasks.testing`."""
    return wall_now().timestamp()


def unix_nanos(when: datetime.datetime) -> int:
    """``when`` (aware) in nanoseconds since the Unix epoch, exactly (no float rounding)."""
    return (when - _EPOCH) // _MICROSECOND * 1000


@final
class LoopReading(Frozen):
    """What the loops of one name report at collection time."""

    __slots__ = ("name", "next_run", "running")
    __match_args__ = ("name", "running", "next_run")

    name: str
    #: Whether a run of one of them is in progress.
    running: bool
    #: The earliest next iteration among them, as a Unix time; None if none is due.
    next_run: float | None

    def __init__(self, name: str, running: bool, next_run: float | None) -> None:
        self._set(name=name, running=running, next_run=next_run)


class SeenLoops:
    """The loops a listener has had events from, held weakly and read when metrics are
    collected, possibly from another thread (an HTTP server's, an exporter's).

    Reading the loops then, rather than keeping gauges up to date on events, leaves no stale
    value behind: a loop that ended reports no next run, and one that was garbage-collected
    reports nothing at all.
    """

    __slots__ = ("_lock", "_loops")

    def __init__(self) -> None:
        self._loops: weakref.WeakSet[Loop[Any, Any]] = weakref.WeakSet()
        self._lock = threading.Lock()

    def see(self, loop: Loop[Any, Any]) -> None:
        if loop not in self._loops:
            with self._lock:
                self._loops.add(loop)

    def read(self) -> list[LoopReading]:
        """One reading per loop name (the copies of a loop declared on a class share theirs),
        sorted by name."""
        with self._lock:
            loops = list(self._loops)
        readings: dict[str, LoopReading] = {}
        for loop in loops:
            name = loop.name
            next_iteration = loop.next_iteration
            next_run = None if next_iteration is None else next_iteration.timestamp()
            running = loop.is_running()
            seen = readings.get(name)
            if seen is not None:
                running = running or seen.running
                if next_run is None or (seen.next_run is not None and seen.next_run < next_run):
                    next_run = seen.next_run
            readings[name] = LoopReading(name, running, next_run)
        return [readings[name] for name in sorted(readings)]
