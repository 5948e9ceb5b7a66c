"""Which exceptions count as passing network trouble, to be retried with backoff, and which
end a run as failed."""

from __future__ import annotations

import sys
from typing import cast

import anyio

from .backend import cancelled_exc_class

if sys.version_info < (3, 11):
    import asyncio

    from exceptiongroup import BaseExceptionGroup

    # A distinct class before Python 3.11; an alias of TimeoutError since.
    _ASYNCIO_TIMEOUT: tuple[type[BaseException], ...] = (asyncio.TimeoutError,)
else:
    _ASYNCIO_TIMEOUT = ()

# (module, attribute) pairs looked up only if the program has imported the module
# already: importing aiohttp or discord ourselves would cost every user their import
# time, and an exception type from a library nobody imported can never be raised.
_OPTIONAL_TYPES = (
    ("trio", "BrokenResourceError"),
    ("aiohttp", "ClientError"),
    ("httpx", "TransportError"),
    ("discord", "GatewayNotFound"),
    ("discord", "ConnectionClosed"),
)


_MODULE_NAMES = tuple(dict.fromkeys(name for name, _ in _OPTIONAL_TYPES))
# The last result, and the optional modules (or None) that were imported when it was made.
_cached: tuple[tuple[object, ...], tuple[type[BaseException], ...]] | None = None


def default_exception_types() -> tuple[type[BaseException], ...]:
    """The exception types a new loop retries: connection trouble of the usual libraries.

    Computed again only when one of the optional libraries has been imported since
    the last call, so that 10 000 loops share one tuple instead of building 10 000.
    """
    global _cached
    modules = tuple(map(sys.modules.get, _MODULE_NAMES))
    if _cached is not None and _cached[0] == modules:
        return _cached[1]
    types = _compute_default_exception_types()
    _cached = (modules, types)
    return types


def _compute_default_exception_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [
        OSError,
        TimeoutError,
        *_ASYNCIO_TIMEOUT,
        anyio.BrokenResourceError,
    ]
    for module_name, attribute in _OPTIONAL_TYPES:
        module = sys.modules.get(module_name)
        exc_type = getattr(module, attribute, None)
        if isinstance(exc_type, type) and issubclass(exc_type, BaseException):
            types.append(exc_type)
    return tuple(dict.fromkeys(types))


def is_handled(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    """Whether ``exc`` is one of ``types``; a group counts if every leaf does.

    A body that runs its own task group reports its failures as an exception
    group, so "the connection dropped in two subtasks" must count like a plain
    connection error.
    """
    if isinstance(exc, BaseExceptionGroup):
        # isinstance() leaves the type argument unknown to pyright.
        group = cast("BaseExceptionGroup[BaseException]", exc)
        return all(is_handled(inner, types) for inner in group.exceptions)
    return isinstance(exc, types)


def fails_the_run(exc: BaseException) -> bool:
    """Whether ``exc``, raised through a run, makes it fail: any exception but a cancellation,
    :class:`KeyboardInterrupt`, :class:`SystemExit` or :class:`GeneratorExit` (or a group
    holding one), which end it as cancelled.

    So a :class:`BaseException` of another kind, such as ``pytest.fail()``'s, is a failure.
    """
    if isinstance(exc, Exception):
        return True
    stops = (cancelled_exc_class(), KeyboardInterrupt, SystemExit, GeneratorExit)
    if isinstance(exc, BaseExceptionGroup):
        group = cast("BaseExceptionGroup[BaseException]", exc)
        return group.subgroup(stops) is None
    return not isinstance(exc, stops)


def check_exception_types(exceptions: tuple[object, ...]) -> tuple[type[Exception], ...]:
    """Validate the arguments of ``add_exception_type`` and friends."""
    for index, exc in enumerate(exceptions):
        if not isinstance(exc, type):
            raise TypeError(f"exception type #{index} must be a class, not {type(exc).__name__!r}")
        if not issubclass(exc, Exception):
            # Cancellation, KeyboardInterrupt and SystemExit must never be retried.
            raise TypeError(
                f"exception type #{index} must be a subclass of Exception, got {exc.__name__!r}"
            )
    return cast("tuple[type[Exception], ...]", exceptions)  # checked above
