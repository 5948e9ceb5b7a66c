"""anytasks: discord.ext.tasks-style background loops on AnyIO, for asyncio and Trio."""

from ._backoff import ExponentialBackoff as ExponentialBackoff
from ._decorator import loop as loop
from ._engine.events import IterationFinished as IterationFinished
from ._engine.events import IterationRetrying as IterationRetrying
from ._engine.events import IterationSkipped as IterationSkipped
from ._engine.events import IterationStarted as IterationStarted
from ._engine.events import IterationTimedOut as IterationTimedOut
from ._engine.events import LoopEnded as LoopEnded
from ._engine.events import LoopEvent as LoopEvent
from ._engine.events import LoopStarted as LoopStarted
from ._engine.events import add_listener as add_listener
from ._engine.events import remove_listener as remove_listener
from ._engine.state import LoopState as LoopState
from ._host import BackgroundHost as BackgroundHost
from ._host import background as background
from ._lease_context import CurrentLease as CurrentLease
from ._lease_context import current_lease as current_lease
from ._loop import Loop as Loop
from ._outcome import EndReason as EndReason
from ._outcome import ErrorAction as ErrorAction
from ._outcome import IterationOutcome as IterationOutcome
from ._outcome import IterationTimeout as IterationTimeout
from ._outcome import LoopEnd as LoopEnd
from ._outcome import SkipReason as SkipReason
from ._outcome import TimeoutAction as TimeoutAction
from ._running import RunningLoops as RunningLoops
from ._running import running as running
from ._schedules.cron import Cron as Cron
from ._schedules.cron import cron as cron
from ._schedules.daily import Daily as Daily
from ._schedules.daily import daily as daily
from ._schedules.every import Every as Every
from ._schedules.every import every as every
from ._schedules.protocol import Schedule as Schedule
from ._schedules.union import AnyOf as AnyOf
from ._ticks import Tick as Tick
from ._ticks import Ticks as Ticks
from ._ticks import ticks as ticks

__all__ = [
    "AnyOf",
    "BackgroundHost",
    "Cron",
    "CurrentLease",
    "Daily",
    "EndReason",
    "ErrorAction",
    "Every",
    "ExponentialBackoff",
    "IterationFinished",
    "IterationOutcome",
    "IterationRetrying",
    "IterationSkipped",
    "IterationStarted",
    "IterationTimedOut",
    "IterationTimeout",
    "Loop",
    "LoopEnd",
    "LoopEnded",
    "LoopEvent",
    "LoopStarted",
    "LoopState",
    "RunningLoops",
    "Schedule",
    "SkipReason",
    "Tick",
    "Ticks",
    "TimeoutAction",
    "add_listener",
    "background",
    "cron",
    "current_lease",
    "daily",
    "every",
    "loop",
    "remove_listener",
    "running",
    "ticks",
]

__version__ = "0.2.0.dev0"

# Tracebacks, reprs and docs should say anytasks.Loop, not anytasks._loop.Loop. (Not the
# Literal type aliases: they would print as anytasks.Literal[...].)
for _name in __all__:
    if _name not in ("ErrorAction", "IterationOutcome", "SkipReason", "TimeoutAction"):
        globals()[_name].__module__ = __name__
del _name  # pyright: ignore[reportPossiblyUnboundVariable]  # __all__ is not empty
