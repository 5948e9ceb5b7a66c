"""The backends that the suite runs on, and markers for the tests that run on some only."""

from __future__ import annotations

from typing import Any

import pytest

#: Every backend, with the ids of AnyIO's own suite.
BACKENDS = ["asyncio", "asyncio+uvloop", "trio"]
#: The backends with a virtual clock (anytasks.testing): uvloop's timers live in libuv.
VIRTUAL_TIME_BACKENDS = ["asyncio", "trio"]

#: For what only asyncio has: a fallback ``asyncio.Task`` (``start()`` without a host), a native
#: ``Task.cancel()``, a task factory.
asyncio_only = pytest.mark.parametrize(
    "anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True
)


def on_real_time(backend: str) -> tuple[str, dict[str, Any]]:
    """AnyIO's backend name and options for ``backend`` (one of BACKENDS) on its real clock."""
    if backend == "asyncio+uvloop":
        import uvloop

        return "asyncio", {"loop_factory": uvloop.new_event_loop}
    return backend, {}
