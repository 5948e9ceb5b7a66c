"""A host's parked runs by due time: a binary heap whose entries can be withdrawn early.

A run that waits in a :func:`~anytasks.background` host for its next slot gives its task up
and leaves an entry here (:mod:`anytasks._host`): its due time, a sequence number that keeps
entries with the same due time in the order they came, and the run. A run that is woken early
(``stop()``, ``cancel()``, a change of schedule) withdraws its entry: the run is cleared from
it, and the empty entry is dropped when it reaches the top or when the empty entries are half
of the heap. An entry is a list, not a tuple, for that: a withdrawn entry holds no run, so the
run's memory goes at once, and what stays is 88 bytes.

A heap rather than a timer wheel, although a wheel costs less per entry: a wheel fires a slot at
its end, late by up to its tick, and a loop's times are exact, under
:mod:`anytasks.testing`'s virtual clocks too
(benchmarks/history/2026-12-07-timer-host-prototype.md).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")

#: A parked item: ``[due, sequence number, item]``; the item is None once withdrawn.
Entry = list[Any]

#: A heap with at least this many withdrawn entries, half of it or more, is rebuilt without them.
COMPACT_AT = 64
#: At most this many spare entries are kept for reuse.
SPARE_ENTRIES = 1024


class TimerQueue(Generic[_T]):
    """Items by due time, earliest first."""

    __slots__ = ("_heap", "_sequence", "_spare", "_withdrawn")

    def __init__(self) -> None:
        self._heap: list[Entry] = []
        self._sequence = itertools.count()
        self._withdrawn = 0
        # Entries given back (release()), reused by push(): an entry made per wait would be
        # an object that lives as long as the wait, and 100 000 of them a second keep the
        # collector's oldest generation busy
        # (benchmarks/history/2026-12-07-issue19-host-timers.md).
        self._spare: list[Entry] = []

    def __len__(self) -> int:
        """How many items are parked (withdrawn entries not counted)."""
        return len(self._heap) - self._withdrawn

    @property
    def held(self) -> int:
        """How many entries the heap holds, withdrawn ones included: its memory."""
        return len(self._heap)

    def push(self, due: float, item: _T) -> Entry:
        """Park ``item`` until ``due``; return its entry, by which it is withdrawn."""
        spare = self._spare
        if spare:
            entry = spare.pop()
            entry[0], entry[1], entry[2] = due, next(self._sequence), item
        else:
            entry = [due, next(self._sequence), item]
        heapq.heappush(self._heap, entry)
        return entry

    def release(self, entry: Entry) -> None:
        """Give back an entry that pop_due() returned, once it has been read."""
        entry[2] = None
        if len(self._spare) < SPARE_ENTRIES:
            self._spare.append(entry)

    def is_first(self, entry: Entry) -> bool:
        """Whether ``entry`` is the earliest, the one the host's wait is for."""
        heap = self._heap
        return bool(heap) and heap[0] is entry

    def withdraw(self, entry: Entry) -> None:
        """Take the item of ``entry`` out before it is due."""
        if entry[2] is None:
            return
        entry[2] = None
        self._withdrawn += 1
        heap = self._heap
        if self._withdrawn >= COMPACT_AT and 2 * self._withdrawn >= len(heap):
            heap[:] = [live for live in heap if live[2] is not None]
            heapq.heapify(heap)
            self._withdrawn = 0

    def next_due(self) -> float | None:
        """When the earliest item is due; None if none is parked."""
        heap = self._heap
        while heap and heap[0][2] is None:
            self.release(heapq.heappop(heap))
            self._withdrawn -= 1
        if not heap:
            return None
        due: float = heap[0][0]
        return due

    def pop_due(self, now: float) -> Entry | None:
        """The earliest entry if it is due at ``now`` (``due <= now``), taken out; else None.

        Give it back with :meth:`release` once it has been read."""
        heap = self._heap
        while heap:
            entry = heap[0]
            if entry[2] is None:  # withdrawn
                self.release(heapq.heappop(heap))
                self._withdrawn -= 1
            elif entry[0] <= now:
                return heapq.heappop(heap)
            else:
                return None
        return None

    def items(self) -> list[_T]:
        """The parked items, in no particular order."""
        return [entry[2] for entry in self._heap if entry[2] is not None]
