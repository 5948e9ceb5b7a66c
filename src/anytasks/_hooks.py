"""What a loop calls back: its hooks, its listeners, and which exceptions it retries (a base
of ``Loop``)."""

from __future__ import annotations

import functools
import inspect
import math
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ._events import Listener, check_listener, count_loop_listeners
from ._handled import check_exception_types, default_exception_types
from ._outcome import LoopEnd

# What each hook may be, for type checkers: ``self`` comes first in a class, which the types
# cannot tell apart from a function's own first parameter, so they catch a hook with too many
# parameters (or an after_loop whose second one is not a LoopEnd), and registration checks the
# exact count.
_BeforeT = TypeVar(
    "_BeforeT",
    bound=Callable[[], Coroutine[Any, Any, Any]] | Callable[[Any], Coroutine[Any, Any, Any]],
)
_AfterT = TypeVar(
    "_AfterT",
    bound=Callable[[], Coroutine[Any, Any, Any]]
    | Callable[[Any], Coroutine[Any, Any, Any]]
    | Callable[[Any, LoopEnd], Coroutine[Any, Any, Any]],
)
_ListenerT = TypeVar("_ListenerT", bound=Listener)
_ErrorT = TypeVar(
    "_ErrorT",
    bound=Callable[[Any], Coroutine[Any, Any, Any]]
    | Callable[[Any, Any], Coroutine[Any, Any, Any]],
)


def check_coroutine_function(func: object, where: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise TypeError(f"{where} needs a coroutine function (async def), got {func!r}")


def defined_in_class(func: Callable[..., Any]) -> bool:
    """Whether ``func`` was defined in a class body (so a loop of it gets ``self``)."""
    if inspect.ismethod(func):
        return False  # bound already
    while isinstance(func, functools.partial):
        func = func.func
    parts = str(getattr(func, "__qualname__", "")).split(".")
    return len(parts) > 1 and parts[-2] != "<locals>"


def accepts(func: Callable[..., Any], count: int) -> bool:
    """Whether ``func`` can be called with ``count`` positional arguments and no others."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return True
    required, most = 0, 0.0
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            required += parameter.default is parameter.empty
        elif parameter.kind is parameter.VAR_POSITIONAL:
            most = math.inf
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return False
    return required <= count <= most


class Hooks:
    """The registered hooks, listeners and handled exception types of a
    :class:`~anytasks.Loop`.

    The runner calls the hooks; this part only keeps them, checked.
    """

    __slots__ = (
        "_after_loop",
        "_after_takes_end",
        "_before_loop",
        "_error",
        "_exception_types",
        "_listeners",
        "_listeners_counted",
        "_method",
    )

    def _init_hooks(self, method: bool) -> None:
        self._before_loop: Callable[..., Awaitable[Any]] | None = None
        self._after_loop: Callable[..., Awaitable[Any]] | None = None
        # Whether after_loop takes the LoopEnd: decided from its signature when registered.
        self._after_takes_end = False
        self._error: Callable[..., Awaitable[Any]] | None = None
        self._exception_types = default_exception_types()
        self._listeners: tuple[Listener, ...] = ()
        # While the loop has listeners: what takes it off the count of loops with listeners
        # (run at the latest when the loop is garbage collected).
        self._listeners_counted: weakref.finalize[[int], Hooks] | None = None
        # Whether the hooks get ``self`` first: the loop is declared on a class.
        self._method = method

    def _copy_hooks(self, other: Hooks) -> None:
        self._before_loop = other._before_loop
        self._after_loop = other._after_loop
        self._after_takes_end = other._after_takes_end
        self._error = other._error
        self._exception_types = other._exception_types
        self._method = other._method
        self._listeners_counted = None
        self._set_listeners(other._listeners)

    def _recheck_hooks(self, method: bool) -> None:
        """Check the hooks again, now that the loop is known to be declared on a class."""
        self._method = method
        if self._before_loop is not None:
            self._check_before(self._before_loop)
        if self._after_loop is not None:
            self._after_takes_end = self._check_after(self._after_loop)
        if self._error is not None:
            self._check_error(self._error)

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

    def _hook_error(self, kind: str, hook: Callable[..., Any], takes: str) -> TypeError:
        name = getattr(hook, "__qualname__", repr(hook))
        where = "besides self, as the loop is declared on a class" if self._method else ""
        return TypeError(
            f"{self!r} {kind} hook {name!r} must take {takes}{' ' + where if where else ''}"
        )

    def _check_before(self, hook: Callable[..., Any]) -> None:
        if not accepts(hook, self._method):
            raise self._hook_error("before_loop", hook, "no arguments")

    def _check_after(self, hook: Callable[..., Any]) -> bool:
        """Check an after_loop hook; return whether it takes the LoopEnd."""
        if accepts(hook, self._method + 1):
            return True
        if accepts(hook, self._method):
            return False
        raise self._hook_error("after_loop", hook, "no arguments or one (the LoopEnd)")

    def _check_error(self, hook: Callable[..., Any]) -> None:
        if not accepts(hook, self._method + 1):
            raise self._hook_error("error", hook, "one argument (the exception)")

    def before_loop(self, coro: _BeforeT) -> _BeforeT:
        """Register a coroutine function to run before the first iteration.

        It takes no arguments (but ``self`` in a class). Useful to wait for
        something first, such as ``bot.wait_until_ready()``. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or takes other
            arguments.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        check_coroutine_function(coro, f"{self!r} before_loop")
        self._check_before(coro)
        self._before_loop = coro
        return coro

    def after_loop(self, coro: _AfterT) -> _AfterT:
        """Register a coroutine function to run after the loop has ended, however it ended.

        It takes no arguments, or one: the run's :class:`~anytasks.LoopEnd`, which says
        why it ended (after ``self`` in a class; decided from its signature here). It runs
        shielded from the loop's cancellation, so it can still await. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or takes other
            arguments.

        Synopsis::

            @report.after_loop
            async def report_end(end: anytasks.LoopEnd) -> None:
                if end.reason is anytasks.EndReason.FAILED:
                    await alert(f"report failed: {end.exception!r}")

        .. versionchanged:: 0.2
           It may take the :class:`~anytasks.LoopEnd`.
        """
        check_coroutine_function(coro, f"{self!r} after_loop")
        self._after_takes_end = self._check_after(coro)
        self._after_loop = coro
        return coro

    def error(self, coro: _ErrorT) -> _ErrorT:
        """Register a coroutine function to call with an unhandled exception.

        It is called with any unhandled exception of the body or of
        :meth:`before_loop`, and takes that exception (after ``self`` in a
        class). The default logs it with its traceback on the ``anytasks``
        logger. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or does not take
            one argument.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        check_coroutine_function(coro, f"{self!r} error")
        self._check_error(coro)
        self._error = coro
        return coro

    # -- listeners -------------------------------------------------------------------

    def add_listener(self, listener: _ListenerT) -> _ListenerT:
        """Deliver this loop's events to ``listener``, a function of one
        :class:`~anytasks.LoopEvent`.

        It is called synchronously in the loop's task, before the global listeners of
        :func:`~anytasks.add_listener` (see there). Added to a loop declared on a class, it
        goes to the copies of the instances made from then on. Returns ``listener``.

        :raises TypeError: if ``listener`` is not callable.

        .. versionadded:: 0.2
        """
        check_listener(listener)
        self._set_listeners((*self._listeners, listener))
        return listener

    def remove_listener(self, listener: Listener) -> None:
        """Stop delivering this loop's events to ``listener`` (added with :meth:`add_listener`).

        :raises ValueError: if it is not one of this loop's listeners.

        .. versionadded:: 0.2
        """
        listeners = list(self._listeners)
        try:
            listeners.remove(listener)
        except ValueError:
            raise ValueError(f"{listener!r} is not a listener of {self!r}") from None
        self._set_listeners(tuple(listeners))

    def _set_listeners(self, listeners: tuple[Listener, ...]) -> None:
        self._listeners = listeners
        counted = self._listeners_counted
        if listeners and counted is None:
            count_loop_listeners(1)
            self._listeners_counted = weakref.finalize(self, count_loop_listeners, -1)
        elif not listeners and counted is not None:
            counted()
            self._listeners_counted = None
