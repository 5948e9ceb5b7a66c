"""anytasks: discord.ext.tasks-style background loops on AnyIO, for asyncio and Trio."""

from ._backoff import ExponentialBackoff as ExponentialBackoff
from ._host import BackgroundHost as BackgroundHost
from ._host import background as background
from ._loop import Loop as Loop
from ._loop import loop as loop
from ._state import LoopState as LoopState

__all__ = ["BackgroundHost", "ExponentialBackoff", "Loop", "LoopState", "background", "loop"]

__version__ = "0.1.0"

# Tracebacks, reprs and docs should say anytasks.Loop, not anytasks._loop.Loop.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name  # pyright: ignore[reportPossiblyUnboundVariable]  # __all__ is not empty
