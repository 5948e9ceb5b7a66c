"""What ``anytasks run MODULE:OBJECT`` names: the loops to run, found from that string.

``OBJECT`` is an attribute path (``loops``, ``App.loops``, ``app.loops``), as in an entry
point's ``module:attr.attr``. It may be a :class:`~anytasks.Loop`, an iterable of loops, or
an async factory: a coroutine function callable with no arguments that returns a loop or an
iterable of loops, awaited in the event loop that will run them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from .._loop import Loop

AnyLoop = Loop[..., Any]
LoopsFactory = Callable[[], Awaitable[list[AnyLoop]]]


class TargetError(Exception):
    """``MODULE:OBJECT`` names nothing that can be run: a usage error, with its message."""


def load_target(spec: str) -> LoopsFactory:
    """Import ``MODULE:OBJECT`` and return an async function that gives its loops.

    A loop or an iterable of loops is checked here, at once; what a factory returns is
    checked when the returned function has awaited it.

    :raises TargetError: if ``spec`` is malformed, cannot be imported or found, or names
        something other than a loop, an iterable of loops or an async factory.
    """
    obj = _resolve(spec)
    if inspect.iscoroutinefunction(obj):
        factory: Callable[[], Awaitable[object]] = obj
        try:
            inspect.signature(factory).bind()
        except TypeError:
            raise TargetError(f"{spec}: the factory must be callable with no arguments") from None
        except ValueError:  # no signature to inspect: the call will tell
            pass

        async def from_factory() -> list[AnyLoop]:
            made = await factory()
            return _loops_in(made, f"{spec}()", "returned", "a Loop or an iterable of loops")

        return from_factory
    expected = "a Loop, an iterable of loops or an async factory"
    loops = _loops_in(obj, spec, "is", expected)

    async def ready() -> list[AnyLoop]:
        return loops

    return ready


def _resolve(spec: str) -> object:
    module_name, colon, path = spec.partition(":")
    attributes = path.split(".")
    if (
        not colon
        or not all(part.isidentifier() for part in module_name.split("."))
        or not all(part.isidentifier() for part in attributes)
    ):
        raise TargetError(f"expected MODULE:OBJECT (such as app:loops), got {spec!r}")
    try:
        obj: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the named module (or a package on its path) missing is a usage error; a
        # module that exists but fails to import its own dependencies raises as it is.
        parts = module_name.split(".")
        if exc.name not in {".".join(parts[:n]) for n in range(1, len(parts) + 1)}:
            raise
        raise TargetError(f"{spec}: no module named {exc.name!r}") from None
    for depth, attribute in enumerate(attributes):
        try:
            obj = getattr(obj, attribute)
        except AttributeError:
            owner = ".".join([module_name, *attributes[:depth]])
            raise TargetError(f"{spec}: {owner} has no attribute {attribute!r}") from None
    return obj


def _loops_in(obj: object, source: str, verb: str, expected: str) -> list[AnyLoop]:
    """The loops that ``obj`` is or holds, each once, in order, none of them running."""
    loops = (
        [cast("AnyLoop", obj)] if isinstance(obj, Loop) else _items(obj, source, verb, expected)
    )
    for loop in loops:
        if loop.is_running():
            raise TargetError(
                f"{source}: loop {loop.name!r} is running already (anytasks run starts the loops)"
            )
    return loops


def _items(obj: object, source: str, verb: str, expected: str) -> list[AnyLoop]:
    kind = type(obj).__name__
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise TargetError(f"{source} {verb} an object of type {kind}, not {expected}")
    loops: list[AnyLoop] = []
    for index, item in enumerate(cast("Iterable[object]", obj)):
        if not isinstance(item, Loop):
            raise TargetError(
                f"{source}: item {index} is an object of type {type(item).__name__}, not a Loop"
            )
        if not any(item is seen for seen in loops):
            loops.append(cast("AnyLoop", item))
    if not loops:
        raise TargetError(f"{source} {verb} an empty {kind}: no loops to run")
    return loops
