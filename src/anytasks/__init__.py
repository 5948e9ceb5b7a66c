"""anytasks: discord.ext.tasks-style background loops on AnyIO, for asyncio and Trio."""

from ._backoff import ExponentialBackoff as ExponentialBackoff
from ._decorator import loop as loop
from ._host import BackgroundHost as BackgroundHost
from ._host import background as background
from ._loop import Loop as Loop
from ._schedules import AnyOf as AnyOf
from ._schedules import Cron as Cron
from ._schedules import Daily as Daily
from ._schedules import Every as Every
from ._schedules import Schedule as Schedule
from ._schedules import cron as cron
from ._schedules import daily as daily
from ._schedules import every as every
from ._state import LoopState as LoopState
from ._ticks import Tick as Tick
from ._ticks import Ticks as Ticks
from ._ticks import ticks as ticks

__all__ = [
    "AnyOf",
    "BackgroundHost",
    "Cron",
    "Daily",
    "Every",
    "ExponentialBackoff",
    "Loop",
    "LoopState",
    "Schedule",
    "Tick",
    "Ticks",
    "background",
    "cron",
    "daily",
    "every",
    "loop",
    "ticks",
]

__version__ = "0.1.0"

# Tracebacks, reprs and docs should say anytasks.Loop, not anytasks._loop.Loop.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name  # pyright: ignore[reportPossiblyUnboundVariable]  # __all__ is not empty
