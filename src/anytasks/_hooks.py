"""What a loop calls back: its hooks, its listeners, and which exceptions it retries (a base
of ``Loop``)."""

from __future__ import annotations

import functools
import inspect
import math
import types
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


def guess_method(func: Callable[..., Any]) -> bool | None:
    """Whether a loop of ``func`` will pass ``self`` to its hooks: True for a function defined
    in a class body whose first parameter is ``self``, False for one defined elsewhere that
    has no ``self``, None when unsure (``__set_name__`` or the first run tells)."""
    if inspect.ismethod(func):
        return False  # bound already
    while isinstance(func, functools.partial):
        func = func.func
    parts = str(getattr(func, "__qualname__", "")).split(".")
    in_class = len(parts) > 1 and parts[-2] != "<locals>"
    # Plain functions only: a bound method (inside a partial, say) shows its function's code.
    code = func.__code__ if isinstance(func, types.FunctionType) else None
    if (
        code is not None
        and code.co_argcount
        and not hasattr(func, "__wrapped__")
        and not hasattr(func, "__signature__")
    ):
        # What inspect.signature() would say, read off the code: a tenth of the cost, and
        # paid for every loop made (benchmarks/history/2026-11-30-issue8-closing-pass.md).
        first: str | None = code.co_varnames[0]
    else:
        try:
            first = next(iter(inspect.signature(func).parameters), None)
        except (TypeError, ValueError):
            return None
    takes_self = first == "self"
    if in_class == takes_self:
        return in_class
    return None  # a static method, or a function made to be put on a class later


#: How many positional arguments a hook takes: the fewest and the most; None if unknown.
Arity = tuple[int, float] | None


def arity(func: Callable[..., Any]) -> Arity:
    """The positional arguments ``func`` can be called with (and no others)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read: let the call decide
        return None
    required, most = 0, 0.0
    for parameter in parameters:
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            required += parameter.default is parameter.empty
        elif parameter.kind is parameter.VAR_POSITIONAL:
            most = math.inf
        elif parameter.kind is parameter.KEYWORD_ONLY and parameter.default is parameter.empty:
            return (1, 0.0)  # callable with no positional arguments at all
    return (required, most)


def fits(taken: Arity, count: int) -> bool:
    return taken is None or taken[0] <= count <= taken[1]


# What each hook takes besides ``self``: (the fewest, the most), and how to say it.
_TAKES: dict[str, tuple[int, int, str]] = {
    "before_loop": (0, 0, "no arguments"),
    "after_loop": (0, 1, "no arguments or one (the LoopEnd)"),
    "error": (1, 1, "one argument (the exception)"),
}


class Hooks:
    """The registered hooks, listeners and handled exception types of a
    :class:`~anytasks.Loop`.

    The runner calls the hooks; this part only keeps them, checked.
    """

    __slots__ = (
        "_after_loop",
        "_arities",
        "_before_loop",
        "_error",
        "_exception_types",
        "_listeners",
        "_listeners_counted",
        "_method",
    )

    def _init_hooks(self, method: bool | None) -> None:
        self._before_loop: Callable[..., Awaitable[Any]] | None = None
        self._after_loop: Callable[..., Awaitable[Any]] | None = None
        # The hooks' arities by kind, read from their signatures once, when registered.
        self._arities: dict[str, Arity] = {}
        self._error: Callable[..., Awaitable[Any]] | None = None
        self._exception_types = default_exception_types()
        self._listeners: tuple[Listener, ...] = ()
        # While the loop has listeners: what takes it off the count of loops with listeners
        # (run at the latest when the loop is garbage collected).
        self._listeners_counted: weakref.finalize[[int], Hooks] | None = None
        # Whether the hooks get ``self`` first (the loop is declared on a class); None while
        # that is unsure: __set_name__, or the run (with or without an instance), tells.
        self._method = method

    def _copy_hooks(self, other: Hooks) -> None:
        self._before_loop = other._before_loop
        self._after_loop = other._after_loop
        self._arities = other._arities
        self._error = other._error
        self._exception_types = other._exception_types
        self._method = other._method
        self._listeners_counted = None
        self._set_listeners(other._listeners)

    def _recheck_hooks(self, method: bool) -> None:
        """Check the hooks again, now that it is known whether they get ``self``."""
        self._method = method
        self._check_hooks(method)

    def _check_hooks(self, method: bool) -> None:
        """Raise TypeError if a hook cannot be called with ``self`` first (or without)."""
        for kind in _TAKES:
            hook = self._hook(kind)
            if hook is not None:
                self._check_arity(kind, hook, method)

    def _takes_end(self, method: bool) -> bool:
        """Whether after_loop takes the LoopEnd, called with ``self`` or not."""
        return fits(self._arities.get("after_loop"), method + 1)

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

    def _check_arity(self, kind: str, hook: Callable[..., Any], method: bool | None) -> None:
        """Raise TypeError if ``hook`` cannot be called as a ``kind`` hook: with ``self`` first
        or not as ``method`` says, or either way while that is unknown (None)."""
        fewest, most, takes = _TAKES[kind]
        taken = self._arities.get(kind) if hook is self._hook(kind) else arity(hook)
        ways = (False, True) if method is None else (method,)
        if any(fits(taken, n + way) for way in ways for n in range(fewest, most + 1)):
            return
        name = getattr(hook, "__qualname__", repr(hook))
        where = " besides self, as the loop is declared on a class" if method else ""
        raise TypeError(f"{self!r} {kind} hook {name!r} must take {takes}{where}")

    def _hook(self, kind: str) -> Callable[..., Any] | None:
        if kind == "before_loop":
            return self._before_loop
        return self._after_loop if kind == "after_loop" else self._error

    def _register(self, kind: str, hook: Callable[..., Any]) -> None:
        check_coroutine_function(hook, f"{self!r} {kind}")
        self._check_arity(kind, hook, self._method)
        self._arities = {**self._arities, kind: arity(hook)}

    def before_loop(self, coro: _BeforeT) -> _BeforeT:
        """Register a coroutine function to run before the first iteration.

        It takes no arguments (but ``self`` in a class). Useful to wait for
        something first, such as ``bot.wait_until_ready()``. Returns ``coro``.

        :raises TypeError: if ``coro`` is not a coroutine function, or takes other
            arguments.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        self._register("before_loop", coro)
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
        self._register("after_loop", coro)
        self._after_loop = coro
        return coro

    def error(self, coro: _ErrorT) -> _ErrorT:
        """Register a coroutine function to call with an unhandled exception.

        It is called with any unhandled exception of the body or of
        :meth:`before_loop`, and takes that exception (after ``self`` in a
        class). The default logs it with its traceback on the ``anytasks``
        logger. Returns ``coro``. It is not called for a :class:`BaseException` that
        is no :class:`Exception` (such as ``pytest.fail()``'s): that fails the run
        and goes on up (:attr:`EndReason.FAILED <anytasks.EndReason.FAILED>`).

        :raises TypeError: if ``coro`` is not a coroutine function, or does not take
            one argument.

        .. versionchanged:: 0.2
           The number of parameters is checked here.
        """
        self._register("error", coro)
        self._error = coro
        return coro

    # -- listeners -------------------------------------------------------------------

    def add_listener(self, listener: _ListenerT) -> _ListenerT:
        """Deliver this loop's events to ``listener``, a function of one
        :class:`~anytasks.LoopEvent`.

        It is called synchronously in the loop's task, before the global listeners of
        :func:`~anytasks.add_listener` (see there), so it cannot be an ``async def``
        function. Added to a loop declared on a class, it goes to the copies of the instances
        made from then on. Returns ``listener``.

        :raises TypeError: if ``listener`` is not callable, or is an async function (also a
            :func:`functools.partial` of one, or an object whose ``__call__`` is one).

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
