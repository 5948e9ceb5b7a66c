"""Every Python example in ``docs/`` runs, on the backend it claims, and prints what the page says.

The convention for fenced code blocks in the documentation (English and Korean):

- ```` ```python asyncio ````, ```` ```python trio ```` or ```` ```python asyncio trio ````: a
  complete program. It is executed, and must start an event loop of exactly the backends named
  (through ``asyncio.run``, ``trio.run``, ``anyio.run`` or ``anytasks.testing.run``). Those
  entry points run on virtual time here (``anytasks.testing``), so a loop with ``seconds=5``
  takes no real time; ``use_uvloop`` runs in real time, since uvloop cannot be virtual.
- ```` ```python plain ````: a complete program that starts no event loop.
- ```` ```python pytest conftest.py ```` / ```` ```python pytest test_x.py ````: the files of a
  small test suite; the blocks of one page are written to a directory together and run by
  pytest in a subprocess, which must pass (and again without pytest-asyncio and pytest-trio:
  the ``conftest.py`` blocks and the AnyIO-marked tests alone). A block in another language
  with the same tags, such as ```` ```toml pytest pyproject.toml ````, is a configuration file
  of that suite.
- ```` ```python no-run ````: shown but not run (only where running is impossible, such as a
  bot that logs in to Discord); it must still compile.
- ```` ```text output ```` right after a runnable block: the exact standard output of it.

A Python block with any other info string fails, as does a page that uses another way to show
Python code (``{code-block}``, ``{literalinclude}``, a ``py`` fence, ...), so no example can
escape being run.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime
import functools
import importlib.util
import io
import logging
import os
import re
import runpy
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest

import anytasks
import anytasks.lease._memory
import anytasks.testing
from support.paths import DOCS

PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)

# The wall time at which the examples' virtual clocks start, unless an example says otherwise.
START = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)

BACKEND_TAGS = {"asyncio", "trio"}
FORBIDDEN = re.compile(r"code-block|\{code\}|\{code-cell\}|literalinclude|sourcecode|doctest")
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass
class Block:
    page: str
    line: int
    language: str
    tags: list[str]
    source: str
    output: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _closes(line: str, fence: str) -> bool:
    m = FENCE.match(line)
    return (
        m is not None
        and not m["info"].strip()
        and m["fence"][0] == fence[0]
        and len(m["fence"]) >= len(fence)
    )


def parse_blocks(text: str, page: str) -> list[Block]:
    """The fenced code blocks of a MyST page, with the bodies of directives searched too."""
    lines = text.splitlines()
    blocks: list[Block] = []
    open_directives: list[str] = []
    last_end = -1  # index of the closing fence of the last code block
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        if open_directives and _closes(lines[i], open_directives[-1]):
            open_directives.pop()
            i += 1
            continue
        if info.startswith("{") and not info.startswith("{eval-rst}"):
            # A MyST directive such as {note}: its body is Markdown that may hold examples.
            open_directives.append(fence)
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        words = info.split()
        language, tags = (words[0], words[1:]) if words else ("", [])
        source = "\n".join(lines[i + 1 : end]) + "\n"
        between = lines[last_end + 1 : i]
        if language == "text" and tags == ["output"]:
            if blocks and blocks[-1].language == "python" and not "".join(between).strip():
                blocks[-1].output = source
            else:
                blocks.append(Block(page, i + 1, language, tags, source))
                blocks[-1].errors.append("an output block must directly follow a python block")
        else:
            blocks.append(Block(page, i + 1, language, tags, source))
        last_end = end
        i = end + 1
    return blocks


def _all_blocks() -> list[Block]:
    blocks: list[Block] = []
    for path in PAGES:
        page = path.relative_to(DOCS).as_posix()
        blocks.extend(parse_blocks(path.read_text(encoding="utf-8"), page))
    return blocks


ALL_BLOCKS = _all_blocks()


def _check_convention(block: Block) -> None:
    """Fail unless a Python block follows the convention of this module's docstring."""
    assert not block.errors, f"{block.id}: {block.errors}"
    if block.language != "python":
        pytest.fail(f"{block.id}: write ```python <tags>, not ```{block.language}")
    tags = set(block.tags)
    if tags & BACKEND_TAGS:
        assert tags <= BACKEND_TAGS, f"{block.id}: unexpected tags {block.tags}"
    elif block.tags[:1] == ["pytest"]:
        assert len(block.tags) == 2, f"{block.id}: write ```python pytest <file name>"
        assert block.tags[1].endswith(".py"), f"{block.id}: {block.tags[1]} is not a .py file"
    else:
        assert block.tags in (["plain"], ["no-run"]), (
            f"{block.id}: a python block needs tags: asyncio and/or trio, plain, "
            f"pytest <file>, or no-run; got {block.tags}"
        )
    if block.output is not None:
        assert tags & BACKEND_TAGS or tags == {"plain"}, f"{block.id}: output of a block not run"


# -- running one example -----------------------------------------------------------------


class Runners:
    """Puts asyncio.run, trio.run and anyio.run on virtual time, and records which ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.backends: set[str] = set()
        self._anyio_run = anyio.run
        run_forever = asyncio.BaseEventLoop.run_forever

        def recording_run_forever(loop: asyncio.BaseEventLoop) -> None:
            self.backends.add("asyncio")
            run_forever(loop)

        # Every asyncio event loop but uvloop's runs through this; uvloop only through anyio.run.
        monkeypatch.setattr(asyncio.BaseEventLoop, "run_forever", recording_run_forever)
        monkeypatch.setattr(asyncio, "run", self.asyncio_run)
        monkeypatch.setattr(anyio, "run", self.anyio_run)
        if importlib.util.find_spec("trio") is not None:
            import trio

            self._trio_run = trio.run
            monkeypatch.setattr(trio, "run", self.trio_run)

    def asyncio_run(self, main: Any, *, debug: bool | None = None, **kwargs: Any) -> Any:
        self.backends.add("asyncio")
        loop_factory = kwargs.pop("loop_factory", None) or functools.partial(
            anytasks.testing.VirtualEventLoop, START
        )
        assert not kwargs, kwargs
        if sys.version_info >= (3, 11):
            with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
                return runner.run(main)

        async def await_main() -> Any:  # pragma: no cover - Python 3.10 only
            return await main

        return self._anyio_run(  # pragma: no cover
            await_main, backend="asyncio", backend_options={"loop_factory": loop_factory}
        )

    def trio_run(self, func: Callable[..., Any], *args: Any, clock: Any = None, **kw: Any) -> Any:
        self.backends.add("trio")
        if clock is None:
            clock = anytasks.testing.virtual_clock(START)
        return self._trio_run(func, *args, clock=clock, **kw)

    def anyio_run(
        self,
        func: Callable[..., Any],
        *args: Any,
        backend: str = "asyncio",
        backend_options: dict[str, Any] | None = None,
    ) -> Any:
        options = dict(backend_options or {})
        if backend == "asyncio" and options.get("use_uvloop"):
            if importlib.util.find_spec("uvloop") is None:
                pytest.skip("this example needs uvloop")
        elif backend == "asyncio":
            options.setdefault(
                "loop_factory", functools.partial(anytasks.testing.VirtualEventLoop, START)
            )
        elif backend == "trio":
            options.setdefault("clock", anytasks.testing.virtual_clock(START))
        self.backends.add(backend)
        return self._anyio_run(func, *args, backend=backend, backend_options=options)


def _missing_modules(source: str) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                missing.append(top)
    return missing


def _compile(block: Block) -> types.CodeType:
    # Pad with empty lines so that tracebacks show the line numbers of the page.
    return compile("\n" * block.line + block.source, f"docs/{block.page}", "exec")


@contextlib.contextmanager
def _as_module(name: str) -> Iterator[types.ModuleType]:
    module = types.ModuleType(name)
    sys.modules[name] = module
    try:
        yield module
    finally:
        del sys.modules[name]


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """Run an example with logging as a new program finds it, and restore pytest's after it.

    An example may call ``logging.basicConfig()`` (which does nothing if the root logger has a
    handler, as it has under pytest) or add handlers that print to its redirected stdout.
    """
    loggers = [logging.getLogger()] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    logging.getLogger().handlers.clear()
    try:
        yield
    finally:
        for logger in logging.root.manager.loggerDict.values():
            if isinstance(logger, logging.Logger):
                logger.handlers.clear()
        for logger, handlers, level, propagate in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def _run_example(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = _missing_modules(block.source)
    if missing:
        pytest.skip(f"this example needs {', '.join(missing)}")
    runners = Runners(monkeypatch)
    # A new program starts with no MemoryLease state (it is per process, by key): the English
    # and Korean pages run the same example with the same key.
    monkeypatch.setattr(anytasks.lease._memory, "_registry", {})
    code = _compile(block)
    stdout = io.StringIO()
    with (
        _as_module("docs_example") as module,
        contextlib.redirect_stdout(stdout),
        _fresh_logging(),
    ):
        exec(code, module.__dict__)
    expected = set(block.tags) & BACKEND_TAGS
    assert runners.backends == expected, (
        f"{block.id} is tagged {sorted(expected)} but ran {sorted(runners.backends)}"
    )
    if block.output is not None:
        got = "\n".join(line.rstrip() for line in stdout.getvalue().splitlines())
        want = "\n".join(line.rstrip() for line in block.output.splitlines())
        assert got == want, f"{block.id} printed:\n{got}"


PYTHON_LIKE = {"python", "py", "py3", "python3", "pycon", "ipython", "ipython3"}
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.language in PYTHON_LIKE]


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_example(block: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_convention(block)
    if block.tags == ["no-run"] or block.tags[0] == "pytest":
        _compile(block)
        return
    _run_example(block, monkeypatch)


def test_every_code_block_names_its_language() -> None:
    for block in ALL_BLOCKS:
        assert not block.errors, f"{block.id}: {block.errors}"
        assert block.language, f"{block.id}: a code block without a language"


PYTEST_PAGES = sorted({b.page for b in ALL_BLOCKS if b.tags[:1] == ["pytest"]})


@pytest.mark.parametrize("page", PYTEST_PAGES)
def test_pytest_examples(page: str, tmp_path: Path) -> None:
    files = [b for b in ALL_BLOCKS if b.page == page and b.tags[:1] == ["pytest"]]
    for block in files:
        missing = _missing_modules(block.source) if block.language == "python" else []
        if missing:
            pytest.skip(f"{block.id} needs {', '.join(missing)}")
        with (tmp_path / block.tags[1]).open("a", encoding="utf-8") as f:
            f.write(block.source)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "skipped" not in result.stdout


@pytest.mark.parametrize("page", PYTEST_PAGES)
def test_pytest_examples_conftest_loads_without_pytest_asyncio_and_pytest_trio(
    page: str, tmp_path: Path
) -> None:
    # A reader who copies every conftest.py block of a page but has neither plugin installed
    # (pytest refuses a hook that no plugin declares): the AnyIO-marked tests still run.
    blocks = [b for b in ALL_BLOCKS if b.page == page and b.tags[:1] == ["pytest"]]
    conftest = [b for b in blocks if b.tags[1] == "conftest.py"]
    anyio_tests = [b for b in blocks if b.tags[1].startswith("test_") and "mark.anyio" in b.source]
    if not conftest or not anyio_tests:
        pytest.skip(f"{page} has no conftest.py or no AnyIO-marked test to run with it")
    for block in conftest + anyio_tests:
        with (tmp_path / block.tags[1]).open("a", encoding="utf-8") as f:
            f.write(block.source)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    no_plugins = ["-p", "no:asyncio", "-p", "no:trio", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *no_plugins, "-W", "error", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


# -- the pages as a whole ------------------------------------------------------------------


def test_there_are_examples_to_run() -> None:
    assert len([b for b in PYTHON_BLOCKS if b.tags[:1] != ["no-run"]]) >= 20


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_python_code_is_only_shown_in_checked_fences(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = FORBIDDEN.search(text)
    assert found is None, f"{path.name}: {found[0]!r} would show code that is never run"


def test_sphinx_reads_only_the_pages_checked_here() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    assert conf["source_suffix"] == {".md": "markdown"}


# Every page with a Korean twin (test_docs_site.py checks that every page has one).
GUIDES = sorted(path.name for path in DOCS.glob("*.md") if (DOCS / "ko" / path.name).is_file())


@pytest.mark.parametrize("name", GUIDES)
def test_the_korean_guide_shows_the_same_programs(name: str) -> None:
    """Only comments and prose are translated, so an edit to one version fails until both agree."""

    def programs(page: str) -> list[tuple[list[str], str, str | None]]:
        blocks = parse_blocks((DOCS / page).read_text(encoding="utf-8"), page)
        # ast.dump leaves out comments, which are translated.
        return [
            (b.tags, ast.dump(ast.parse(b.source)), b.output)
            for b in blocks
            if b.language == "python"
        ]

    assert programs(f"ko/{name}") == programs(name)


def test_api_reference_names_every_public_member() -> None:
    api = (DOCS / "api.md").read_text(encoding="utf-8")
    names = list(anytasks.__all__)
    for cls in (anytasks.Loop, anytasks.BackgroundHost, anytasks.ExponentialBackoff):
        names += [name for name in vars(cls) if not name.startswith("_")]
        names += list(getattr(cls, "__slots__", ()))
    names = [n for n in names if not n.startswith("_")] + ["__call__"]
    missing = [name for name in names if not re.search(rf"\b{name}\b", api)]
    assert missing == []
    # automodule documents the names in anytasks.testing.__all__.
    assert re.search(r"automodule:: anytasks\.testing\n\s+:members:", api)
