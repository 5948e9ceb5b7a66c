"""What the web app tests (tests/webapps) share: the code blocks of docs/web-apps.md, a probe
that makes the loops' work visible, and a real server in a subprocess.

The apps are the page's own blocks, written to ``tmp_path`` as they are. Only what a test
cannot wait for is changed, through :func:`adapted`: intervals of minutes become tenths of a
second, ttls of 30 s become 1 s, a path or a server's address becomes the test's. Each change
must match exactly once, so a page edit that the tests no longer follow fails them instead of
passing unnoticed.

The probe (:data:`PROBE`, imported at the end of the loops' module) prints a line for each thing
the loops do, prefixed with ``> ``: a loop started (and on which event loop), an iteration
started and finished, a run ended (after ``after_loop``), and each record of the page's
``tasks`` logger. The tests read the server's merged standard output and error, and assert
on those lines.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.paths import DOCS

PAGE = DOCS / "web-apps.md"

#: The longest that any one line, answer or exit is waited for (not expected to be used).
WAIT = 20.0

FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Fence:
    """A fenced block of the page."""

    line: int
    language: str
    tags: tuple[str, ...]
    source: str


def page_blocks(page: Path = PAGE) -> list[Fence]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Fence] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        end = i + 1
        while lines[end].strip() != match["fence"]:
            end += 1
        words = match["info"].split()
        source = "\n".join(lines[i + 1 : end]) + "\n"
        blocks.append(Fence(i + 1, words[0] if words else "", tuple(words[1:]), source))
        i = end + 1
    return blocks


def block(*texts: str, language: str = "python") -> str:
    """The one block of the page in ``language`` that contains each of ``texts``."""
    found = [
        b.source
        for b in page_blocks()
        if b.language == language and all(text in b.source for text in texts)
    ]
    assert len(found) == 1, f"docs/web-apps.md has {len(found)} blocks with {texts!r}"
    return found[0]


def adapted(source: str, changes: dict[str, str]) -> str:
    """``source`` with each key replaced by its value; each key must occur exactly once."""
    for old, new in changes.items():
        assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times in:\n{source}"
        source = source.replace(old, new)
    return source


# -- the page's blocks, and the changes that make them fast ---------------------------------

#: The intervals of the page's loops, as the tests run them.
FAST = {"seconds=30": "seconds=0.1", "minutes=10": "seconds=0.2"}

#: The page's ``tasks.py``, as the tests run it.
TASKS = adapted(block("# tasks.py: the loops that the app starts and stops"), FAST)

#: The same, but ``refresh`` fails at its third iteration, and so ends.
FAILING_TASKS = adapted(
    TASKS,
    {
        ', on_error="continue"': "",
        '    status["refreshes"] += 1\n': (
            '    status["refreshes"] += 1\n'
            '    if status["refreshes"] == 3:\n'
            '        raise LookupError("no such feed")\n'
        ),
    },
)

#: The page's FastAPI app.
FASTAPI_APP = block("# app.py: uvicorn app:app\n", "from fastapi import FastAPI")

#: The probe, a module of its own (``webprobe``), imported at the end of the loops' module.
PROBE = r'''
"""Lines on standard output for what the loops do (tests/webapps)."""

import asyncio
import logging
import os
import sys

import anytasks


def say(*words):
    # One write, so that the lines of several workers on one pipe do not interleave.
    line = " ".join([">", *map(str, words), f"pid={os.getpid()}"])
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def event_loop():
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "trio"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


@anytasks.add_listener
def probe(event):
    name = event.loop.name.removeprefix("anytasks: ")
    if isinstance(event, anytasks.LoopStarted):
        say("started", name, event_loop())
    elif isinstance(event, anytasks.IterationStarted):
        say("slot", name, event.index, event.scheduled.isoformat())
    elif isinstance(event, anytasks.IterationFinished):
        say("finished", name, event.index, event.outcome)
    elif isinstance(event, anytasks.LoopEnded):
        say("ended", name, event.end.reason.value)


class Say(logging.Handler):
    def emit(self, record):
        say("log", record.name, record.levelname, record.getMessage())


logging.getLogger("tasks").addHandler(Say())
logging.getLogger("tasks").setLevel(logging.INFO)
'''


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def write_tasks(directory: Path, source: str, name: str = "tasks.py") -> None:
    """The loops' module, with the probe imported at its end."""
    write(directory, name, source + "\nimport webprobe  # noqa: E402, F401  (tests/webapps)\n")
    write(directory, "webprobe.py", PROBE)


# -- a server in a subprocess ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Line:
    at: float  # time.monotonic() when the line was read
    text: str


@dataclass(frozen=True)
class Marker:
    """A line of the probe: ``> WHAT WORDS... pid=PID``."""

    at: float
    what: str
    words: tuple[str, ...]
    pid: int


class Server:
    """A command (a web server, ``anytasks run``) in a subprocess of its own, in ``directory``,
    its standard output and error read line by line, with the time each line came."""

    def __init__(
        self, directory: Path, argv: Sequence[str], port: int, env: dict[str, str] | None = None
    ) -> None:
        self.port = port
        path = os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=directory,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}), "PYTHONPATH": path},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[Line] = []
        self._lock = threading.RLock()
        self._new = threading.Condition(self._lock)
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for text in self.process.stdout:
                with self._new:
                    self.lines.append(Line(time.monotonic(), text.rstrip("\n")))
                    self._new.notify_all()
        with self._new:
            self._ended = True
            self._new.notify_all()

    def output(self) -> str:
        with self._lock:
            return "\n".join(line.text for line in self.lines)

    def wait_until(self, what: str, check: Callable[[], bool], wait: float = WAIT) -> None:
        """Wait until ``check()`` is true, as lines come in."""
        deadline = time.monotonic() + wait
        with self._new:
            while not check():
                left = deadline - time.monotonic()
                if left <= 0 or self._ended:
                    break
                self._new.wait(left)
        if not check():
            ended = "the process ended" if self._ended else f"not after {wait} s"
            pytest.fail(f"waiting for {what}: {ended}; output:\n{self.output()}")

    def wait_for_line(self, text: str) -> Line:
        """The first line that contains ``text``, once it has come."""

        def found() -> Line | None:
            return next((line for line in self.lines if text in line.text), None)

        self.wait_until(f"a line with {text!r}", lambda: found() is not None)
        line = found()
        assert line is not None
        return line

    def markers(self, what: str | None = None) -> list[Marker]:
        found = []
        with self._lock:
            lines = list(self.lines)
        for line in lines:
            if line.text.startswith("> "):
                *words, pid = line.text[2:].split(" ")
                if what is None or words[0] == what:
                    found.append(Marker(line.at, words[0], tuple(words[1:]), int(pid[4:])))
        return found

    def logged(self, logger: str = "tasks") -> list[str]:
        """The messages of the probe's ``log`` lines of ``logger``."""
        return [" ".join(m.words[2:]) for m in self.markers("log") if m.words[0] == logger]

    def get(self, path: str) -> Any:
        """GET ``path`` and decode its JSON, waiting for the server to listen first."""
        deadline = time.monotonic() + WAIT
        url = f"http://127.0.0.1:{self.port}{path}"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=WAIT) as response:
                    return json.loads(response.read())
            except (ConnectionError, urllib.error.URLError) as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"GET {url}: {exc}; output:\n{self.output()}")
                time.sleep(0.05)

    def poll(self, path: str, until: Callable[[Any], bool]) -> list[Any]:
        """GET ``path`` until what it answers satisfies ``until``: every answer, in order."""
        deadline = time.monotonic() + WAIT
        answers = [self.get(path)]
        while not until(answers[-1]):
            if time.monotonic() > deadline:
                pytest.fail(f"GET {path} answered {answers[-1]!r}, after {WAIT} s")
            time.sleep(0.05)
            answers.append(self.get(path))
        return answers

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        """Send ``signum``, wait for the exit and the rest of the output: the exit status
        (negative: ended by that signal, as :class:`subprocess.Popen` says)."""
        self.process.send_signal(signum)
        return self.finish()

    def finish(self) -> int:
        try:
            status = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"no exit {WAIT} s after the signal; output:\n{self.output()}")
        self._reader.join(WAIT)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(WAIT)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts servers in ``tmp_path``; any still running at the end of the test is killed."""
    started: list[Server] = []

    def starter(
        argv: Sequence[str], port: int | None = None, env: dict[str, str] | None = None
    ) -> Server:
        server = Server(tmp_path, argv, port if port is not None else free_port(), env)
        started.append(server)
        return server

    yield starter
    for server in started:
        server.kill()


def uvicorn(app: str, port: int, *options: str) -> list[str]:
    return ["-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), *options]


def hypercorn(app: str, port: int, *options: str) -> list[str]:
    return ["-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", *options]


def slots(markers: list[Marker], loop: str) -> list[Marker]:
    """The ``slot`` markers of ``loop``."""
    return [m for m in markers if m.what == "slot" and m.words[0] == loop]


def check_each_iteration_once(server: Server, loop: str) -> int:
    """Every iteration of ``loop`` started once, finished once as a success, with indexes
    0, 1, 2, ... in one process: how many there were."""
    started = [m for m in server.markers("slot") if m.words[0] == loop]
    finished = [m for m in server.markers("finished") if m.words[0] == loop]
    assert len({m.pid for m in started}) == 1, started
    indexes = [int(m.words[1]) for m in started]
    assert indexes == list(range(len(indexes))), indexes
    assert [(int(m.words[1]), m.words[2]) for m in finished] == [(i, "success") for i in indexes]
    return len(indexes)


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("the web app tests send POSIX signals", allow_module_level=True)
