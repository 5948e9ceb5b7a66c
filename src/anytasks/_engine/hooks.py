"""What a loop calls back, and which exceptions it retries: one frozen :class:`Hooks` value.

Registering a hook or an exception type makes a new value; the copies of a loop declared on a
class share the value they were made with. Each hook's number of parameters is checked when it
is registered (and again once it is known whether the hooks get ``self`` first), so that a
wrong hook fails at decoration time, not at the end of the first run.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import Awaitable, Callable
from typing import Any, final

from .._frozen import Frozen, replace
from .handled import check_exception_types, default_exception_types

HookFunction = Callable[..., Awaitable[Any]]


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


#: The kinds of hook, and what each takes besides ``self``: (the fewest, the most), and how to
#: say it.
KINDS: dict[str, tuple[int, int, str]] = {
    "before_loop": (0, 0, "no arguments"),
    "after_loop": (0, 1, "no arguments or one (the LoopEnd)"),
    "error": (1, 1, "one argument (the exception)"),
}


@final
class Hooks(Frozen):
    """The hooks of a loop, each with its arity, whether they get ``self`` first, and the
    exception types that its iterations retry."""

    __slots__ = (
        "after_loop",
        "arities",
        "before_loop",
        "error",
        "handled",
        "method",
    )
    __match_args__ = ("before_loop", "after_loop", "error", "arities", "handled", "method")

    before_loop: HookFunction | None
    after_loop: HookFunction | None
    error: HookFunction | None
    #: The hooks' arities, read from their signatures once, when registered: before_loop's,
    #: after_loop's and error's.
    arities: tuple[Arity, Arity, Arity]
    #: The exception types that count as passing trouble, retried with backoff.
    handled: tuple[type[BaseException], ...]
    #: Whether the hooks get ``self`` first (the loop is declared on a class); None while that
    #: is unsure: ``__set_name__``, or the run (with or without an instance), tells.
    method: bool | None

    def __init__(
        self,
        before_loop: HookFunction | None,
        after_loop: HookFunction | None,
        error: HookFunction | None,
        arities: tuple[Arity, Arity, Arity],
        handled: tuple[type[BaseException], ...],
        method: bool | None,
    ) -> None:
        self._set(
            before_loop=before_loop,
            after_loop=after_loop,
            error=error,
            arities=arities,
            handled=handled,
            method=method,
        )

    @staticmethod
    def none(method: bool | None) -> Hooks:
        """No hooks, the default exception types; shared by the loops that have no others."""
        handled = default_exception_types()
        made = _NONE.get((method, handled))
        if made is None:
            made = _NONE[(method, handled)] = Hooks(None, None, None, _NO_ARITIES, handled, method)
        return made

    def hook(self, kind: str) -> HookFunction | None:
        if kind == "before_loop":
            return self.before_loop
        return self.after_loop if kind == "after_loop" else self.error

    def with_hook(self, kind: str, hook: HookFunction, owner: object) -> Hooks:
        """These hooks with ``hook`` as the ``kind`` hook, checked: ``owner`` (the loop) names
        the loop in errors.

        :raises TypeError: if ``hook`` is not a coroutine function, or cannot be called with
            the arguments of its kind.
        """
        check_coroutine_function(hook, f"{owner!r} {kind}")
        taken = arity(hook)
        _check_arity(kind, hook, taken, self.method, owner)
        index = tuple(KINDS).index(kind)
        arities = (*self.arities[:index], taken, *self.arities[index + 1 :])
        hooks = {"before_loop": self.before_loop, "after_loop": self.after_loop}
        hooks["error"] = self.error
        hooks[kind] = hook
        return Hooks(
            hooks["before_loop"],
            hooks["after_loop"],
            hooks["error"],
            (arities[0], arities[1], arities[2]),
            self.handled,
            self.method,
        )

    def check(self, method: bool, owner: object) -> None:
        """Raise TypeError if a hook cannot be called with ``self`` first (if ``method``), or
        without it (if not)."""
        for index, kind in enumerate(KINDS):
            hook = self.hook(kind)
            if hook is not None:
                _check_arity(kind, hook, self.arities[index], method, owner)

    def with_method(self, method: bool, owner: object) -> Hooks:
        """These hooks, now that it is known whether they get ``self`` first; checked again."""
        self.check(method, owner)
        return replace(self, method=method)

    def with_handled(self, handled: tuple[type[BaseException], ...]) -> Hooks:
        return replace(self, handled=handled)

    def takes_end(self, method: bool) -> bool:
        """Whether after_loop takes the LoopEnd, called with ``self`` or not."""
        return fits(self.arities[1], method + 1)


_NO_ARITIES: tuple[Arity, Arity, Arity] = (None, None, None)
# The hook sets without hooks, by (method, exception types): one per kind of loop made.
_NONE: dict[tuple[bool | None, tuple[type[BaseException], ...]], Hooks] = {}


def add_exception_types(hooks: Hooks, exceptions: tuple[object, ...]) -> Hooks:
    """``hooks`` with ``exceptions`` added to the handled exception types (checked)."""
    checked = check_exception_types(exceptions)
    return hooks.with_handled(tuple(dict.fromkeys((*hooks.handled, *checked))))


def _check_arity(
    kind: str, hook: Callable[..., Any], taken: Arity, method: bool | None, owner: object
) -> None:
    """Raise TypeError if ``hook`` cannot be called as a ``kind`` hook: with ``self`` first
    or not as ``method`` says, or either way while that is unknown (None)."""
    fewest, most, takes = KINDS[kind]
    ways = (False, True) if method is None else (method,)
    if any(fits(taken, n + way) for way in ways for n in range(fewest, most + 1)):
        return
    name = getattr(hook, "__qualname__", repr(hook))
    where = " besides self, as the loop is declared on a class" if method else ""
    raise TypeError(f"{owner!r} {kind} hook {name!r} must take {takes}{where}")
