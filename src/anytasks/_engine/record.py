"""What a :class:`~anytasks.Loop` and its run share: the one mutable object of a loop's lifetime.

The Loop writes its settings, hooks and listeners here (each a value it replaces, never mutates);
the run reads them in place, so that a change applies to the run in progress at once, and writes
here what outlives it: whether it failed and how it ended. The Loop itself is the public face,
holding nothing that changes but this record.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from .events import count_loop_listeners

if TYPE_CHECKING:
    from .._outcome import LoopEnd
    from .events import Listener
    from .hooks import Hooks
    from .options import LoopOptions
    from .run import Run


class LoopRecord:
    """The state of one :class:`~anytasks.Loop`, shared with its runs."""

    __slots__ = ("failed", "hooks", "last_end", "listeners", "listeners_counted", "options", "run")

    def __init__(self, options: LoopOptions, hooks: Hooks) -> None:
        # What the loop was configured with, and its hooks: frozen values, replaced on change.
        self.options = options
        self.hooks = hooks
        # The loop's own listeners, before the global ones.
        self.listeners: tuple[Listener, ...] = ()
        # While the loop has listeners: what takes it off the count of loops with listeners
        # (run at the latest when the loop is garbage collected).
        self.listeners_counted: weakref.finalize[[int], object] | None = None
        # The run in progress, or None.
        self.run: Run | None = None
        # Whether the last run ended with an unhandled exception (reset by the next start).
        self.failed = False
        # How the latest run ended, once one has.
        self.last_end: LoopEnd | None = None

    def set_listeners(self, listeners: tuple[Listener, ...], owner: object) -> None:
        """Replace the loop's own listeners; ``owner`` is the loop, whose collection takes it
        off the count of loops with listeners (``events.listening``)."""
        self.listeners = listeners
        counted = self.listeners_counted
        if listeners and counted is None:
            count_loop_listeners(1)
            self.listeners_counted = weakref.finalize(owner, count_loop_listeners, -1)
        elif not listeners and counted is not None:
            counted()
            self.listeners_counted = None
