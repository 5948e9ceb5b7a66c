"""Markers for the tests that run on some backends only."""

from __future__ import annotations

import pytest

#: For what only asyncio has: a fallback ``asyncio.Task`` (``start()`` without a host), a native
#: ``Task.cancel()``, a task factory.
asyncio_only = pytest.mark.parametrize(
    "anyio_backend", ["asyncio", "asyncio+uvloop"], indirect=True
)
