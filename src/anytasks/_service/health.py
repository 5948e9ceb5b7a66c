"""``anytasks run --health-file``: a file whose age tells when an iteration last succeeded.

A liveness probe compares the file's modification time with the clock (``find PATH -mmin -2``);
the file is created by the first successful iteration, not at start.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import final

from .._engine.events import IterationFinished, LoopEvent

logger = logging.getLogger("anytasks.run")


@final
class HealthFile:
    """A listener that touches ``path`` after every iteration whose outcome is ``"success"``."""

    __slots__ = ("_broken", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._broken = False

    def __call__(self, event: LoopEvent) -> None:
        if isinstance(event, IterationFinished) and event.outcome == "success":
            self.touch()

    def touch(self) -> None:
        try:
            self.path.touch()
        except OSError as exc:
            # Once per outage, not once per iteration: the probe will say the rest.
            if not self._broken:
                logger.warning("cannot touch the health file %s: %s", self.path, exc)
            self._broken = True
        else:
            self._broken = False
