"""What a loop calls back: its hooks, and which exceptions it retries (a base of ``Loop``)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ._handled import check_exception_types, default_exception_types

_HookT = TypeVar("_HookT", bound=Callable[..., Coroutine[Any, Any, Any]])


def check_coroutine_function(func: object, where: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{where} needs a coroutine function (async def), got {func!r}")


class Hooks:
    """The registered hooks and handled exception types of a :class:`~anytasks.Loop`.

    The runner calls the hooks; this part only keeps them, checked.
    """

    __slots__ = ("_after_loop", "_before_loop", "_error", "_exception_types")

    def _init_hooks(self) -> None:
        self._before_loop: Callable[..., Awaitable[Any]] | None = None
        self._after_loop: Callable[..., Awaitable[Any]] | None = None
        self._error: Callable[..., Awaitable[Any]] | None = None
        self._exception_types = default_exception_types()

    def _copy_hooks(self, other: Hooks) -> None:
        self._before_loop = other._before_loop
        self._after_loop = other._after_loop
        self._error = other._error
        self._exception_types = other._exception_types

    # -- exception types -----------------------------------------------------------

    def add_exception_type(self, *exceptions: type[Exception]) -> None:
        """Add exception types that count as passing trouble, retried with backoff.

        :raises TypeError: if an argument is not a subclass of :class:`Exception`
            (cancellation, :class:`KeyboardInterrupt` and :class:`SystemExit` are
            never retried).
        """
        checked = check_exception_types(exceptions)
        self._exception_types = tuple(dict.fromkeys((*self._exception_types, *checked)))

    def remove_exception_type(self, *exceptions: type[BaseException]) -> bool:
        """Remove exception types from the handled ones.

        :returns: whether every one of them was handled before.
        """
        before = len(self._exception_types)
        self._exception_types = tuple(t for t in self._exception_types if t not in exceptions)
        return len(self._exception_types) == before - len(set(exceptions))

    def clear_exception_types(self) -> None:
        """Handle no exception types at all: every exception ends the loop."""
        self._exception_types = ()

    # -- hooks -----------------------------------------------------------------------

    def before_loop(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to run before the first iteration.

        It takes no arguments (but ``self`` in a class). Useful to wait for
        something first, such as ``bot.wait_until_ready()``. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        check_coroutine_function(coro, f"{self!r} before_loop")
        self._before_loop = coro
        return coro

    def after_loop(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to run after the loop has ended, however it ended.

        It takes no arguments (but ``self`` in a class) and runs shielded from
        the loop's cancellation, so it can still await; check
        :meth:`is_being_cancelled` to tell a cancel from a normal end. Returns
        ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        check_coroutine_function(coro, f"{self!r} after_loop")
        self._after_loop = coro
        return coro

    def error(self, coro: _HookT) -> _HookT:
        """Register a coroutine function to call with an unhandled exception.

        It is called with any unhandled exception of the body or of
        :meth:`before_loop`, and takes that exception (after ``self`` in a
        class). The default logs it with its traceback on the ``anytasks``
        logger. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function.
        """
        check_coroutine_function(coro, f"{self!r} error")
        self._error = coro
        return coro
