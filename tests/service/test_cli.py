"""``anytasks run MODULE:OBJECT``: loops as a service, ended by real signals in real processes.

The end-to-end tests start ``python -m anytasks run`` on a small module written to ``tmp_path``
and read its merged standard output and error line by line: the modules print markers, the
runner logs on ``anytasks.run``, and the tests assert their order and the exit status. They
carry the ``subprocess`` marker (``-m "not subprocess"`` leaves them out). Parsing and
``MODULE:OBJECT`` resolution are tested in-process.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import itertools
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

import anytasks
from anytasks._service.cli import main
from anytasks._service.health import HealthFile
from anytasks._service.service import Setup, serve
from support.backends import BACKENDS

WAIT = 20.0  # seconds: the most any one line or exit is waited for (not expected to be used)


class Service:
    """``python -m anytasks run ...`` in a subprocess, its output read line by line."""

    def __init__(self, directory: Path, *args: str, env: dict[str, str] | None = None) -> None:
        path = os.pathsep.join(filter(None, [str(directory), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "anytasks", "run", *args],
            cwd=directory,
            # Unbuffered unless a test asks otherwise (PYTHONUNBUFFERED=""), so lines arrive
            # as they are printed.
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}), "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str) -> None:
        """Read lines until one contains ``text``."""
        deadline = time.monotonic() + WAIT
        while not any(text in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {text!r} after {WAIT} s; output: {self.lines}")
            if line is None:
                pytest.fail(f"the service ended before printing {text!r}; output: {self.lines}")
            self.lines.append(line)

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def finish(self) -> int:
        """Wait for the exit and the rest of the output; return the exit status."""
        try:
            status = self.process.wait(timeout=WAIT)
        finally:
            self.process.kill()
        self._reader.join(WAIT)
        while (line := self._queue.get_nowait()) is not None:
            self.lines.append(line)
        return status

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(WAIT)

    def markers(self) -> list[str]:
        """The lines the test modules print (they start with ``> ``), without the ``> ``."""
        return [line[2:] for line in self.lines if line.startswith("> ")]

    def logged(self, logger: str = "anytasks.run") -> list[str]:
        """The messages logged on ``logger``, without time and level."""
        return [line.split(f" {logger}: ", 1)[1] for line in self.lines if f" {logger}: " in line]


def write_module(directory: Path, source: str, name: str = "app") -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[list[Service]]:
    """Started services, killed at the end of the test if still running."""
    started: list[Service] = []
    yield started
    for each in started:
        each.close()


def run_service(
    started: list[Service], directory: Path, *args: str, env: dict[str, str] | None = None
) -> Service:
    each = Service(directory, *args, env=env)
    started.append(each)
    return each


# The loop `tick` of this module keeps iterating; its first iteration waits until the loop
# has been stopped, then goes on for a moment more, so the test can see that an iteration in
# progress finishes after a signal.
STOPPABLE = """\
import anyio
import anytasks

@anytasks.loop(seconds=0.01, name="tick")
async def tick():
    print(f"> iteration {tick.current_loop} started", flush=True)
    while tick.state is not anytasks.LoopState.STOPPING:
        await anyio.sleep(0.01)
    print(f"> iteration {tick.current_loop} saw the stop", flush=True)
    await anyio.sleep(0.05)
    print(f"> iteration {tick.current_loop} finished", flush=True)

@tick.after_loop
async def after_tick():
    print(f"> after_loop, cancelled={tick.is_being_cancelled()}", flush=True)
"""

# The loop `stubborn` ignores stop(): its iteration sleeps far longer than any test waits.
STUBBORN = """\
import anyio
import anytasks

@anytasks.loop(seconds=0.01, name="stubborn")
async def stubborn():
    print("> iteration started", flush=True)
    await anyio.sleep(60)
    print("> iteration finished", flush=True)

@stubborn.after_loop
async def after_stubborn():
    print(f"> after_loop, cancelled={stubborn.is_being_cancelled()}", flush=True)
"""


# -- signals and grace, on every backend -----------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_the_loops_and_the_iteration_in_progress_finishes(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(tmp_path, STOPPABLE)
    running = run_service(service, tmp_path, "app:tick", "--backend", backend)
    running.wait_for("> iteration 0 started")
    running.send(signal.SIGTERM)
    assert running.finish() == 0
    assert running.markers() == [
        "iteration 0 started",
        "iteration 0 saw the stop",
        "iteration 0 finished",
        "after_loop, cancelled=False",
    ]
    assert running.logged() == [
        "running 'tick'",
        "SIGTERM received: stopping 1 loop(s) ('tick'), which get 30 s to end",
        "every loop has ended",
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loops_still_running_after_the_grace_period_are_cancelled(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(tmp_path, STUBBORN)
    running = run_service(
        service, tmp_path, "app:stubborn", "--grace", "0.5", "--backend", backend
    )
    running.wait_for("> iteration started")
    signalled = time.monotonic()
    running.send(signal.SIGTERM)
    assert running.finish() == 0
    assert time.monotonic() - signalled >= 0.5
    assert running.markers() == ["iteration started", "after_loop, cancelled=True"]
    assert running.logged() == [
        "running 'stubborn'",
        "SIGTERM received: stopping 1 loop(s) ('stubborn'), which get 0.5 s to end",
        "grace period of 0.5 s is over: cancelling 'stubborn'",
        "every loop has ended",
    ]
    # after_loop ran after the cancellation, not before it.
    assert running.lines.index("> after_loop, cancelled=True") > next(
        i for i, line in enumerate(running.lines) if "grace period" in line
    )


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_cancels_at_once(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(tmp_path, STUBBORN)
    running = run_service(service, tmp_path, "app:stubborn", "--backend", backend)
    running.wait_for("> iteration started")
    running.send(signal.SIGINT)
    running.wait_for("SIGINT received: stopping")
    signalled = time.monotonic()
    running.send(signal.SIGINT)
    assert running.finish() == 0
    # Well within the default grace period of 30 s.
    assert time.monotonic() - signalled < 15
    assert running.markers() == ["iteration started", "after_loop, cancelled=True"]
    assert running.logged() == [
        "running 'stubborn'",
        "SIGINT received: stopping 1 loop(s) ('stubborn'), which get 30 s to end",
        "SIGINT received again: cancelling the loops now",
        "every loop has ended",
    ]


# The loop `stuck` never ends once it has been stopped: its after_loop hangs (after_loop is
# shielded from the cancellation) after printing a line that is not flushed, which only an exit
# that flushes standard output shows. The loop `done` has ended before any signal.
STUCK = """\
import anyio
import anytasks

@anytasks.loop(seconds=0, count=1, name="done")
async def done():
    pass

@done.after_loop
async def after_done():
    print("> done", flush=True)

@anytasks.loop(seconds=60, name="stuck")
async def stuck():
    print("> iteration started", flush=True)

@stuck.after_loop
async def after_stuck():
    print("> after_loop waits")
    await anyio.sleep(60)

loops = [done, stuck]
"""


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_third_signal_exits_at_once_with_128_plus_its_number(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(tmp_path, STUCK)
    running = run_service(
        service, tmp_path, "app:loops", "--backend", backend, env={"PYTHONUNBUFFERED": ""}
    )
    running.wait_for("> done")
    running.wait_for("> iteration started")
    running.send(signal.SIGINT)
    running.wait_for("SIGINT received: stopping")
    running.send(signal.SIGINT)
    running.wait_for("SIGINT received again")
    running.send(signal.SIGINT)
    assert running.finish() == 130
    assert sorted(running.markers()[:2]) == ["done", "iteration started"]
    assert running.markers()[2:] == ["after_loop waits"]
    assert running.logged() == [
        "running 'done', 'stuck'",
        "SIGINT received: stopping 1 loop(s) ('stuck'), which get 30 s to end",
        "SIGINT received again: cancelling the loops now",
        "SIGINT received a third time: exiting at once with status 130; still running: 'stuck'",
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loops_still_running_a_grace_period_after_the_cancellation_exit_at_once(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import anyio
        import anytasks

        @anytasks.loop(seconds=0.01, name="shielded")
        async def shielded():
            print("> iteration started", flush=True)
            with anyio.CancelScope(shield=True):
                await anyio.sleep(60)
        """,
    )
    running = run_service(
        service, tmp_path, "app:shielded", "--grace", "0.3", "--backend", backend
    )
    running.wait_for("> iteration started")
    signalled = time.monotonic()
    running.send(signal.SIGTERM)
    assert running.finish() == 143
    # 0.3 s to end after the stop; at least 1 s after the cancellation.
    assert time.monotonic() - signalled >= 1.3
    assert running.markers() == ["iteration started"]
    assert running.logged() == [
        "running 'shielded'",
        "SIGTERM received: stopping 1 loop(s) ('shielded'), which get 0.3 s to end",
        "grace period of 0.3 s is over: cancelling 'shielded'",
        "grace period of 1 s after the cancellation is over: exiting at once with status 143; "
        "still running: 'shielded'",
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_grace_of_0_cancels_at_once_and_the_loops_still_end_cleanly(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(tmp_path, STOPPABLE)
    running = run_service(service, tmp_path, "app:tick", "--grace", "0", "--backend", backend)
    running.wait_for("> iteration 0 started")
    running.send(signal.SIGTERM)
    # Not 143: cancelled loops get a moment to end, however short the grace period.
    assert running.finish() == 0
    assert running.markers() == ["iteration 0 started", "after_loop, cancelled=True"]
    assert running.logged() == [
        "running 'tick'",
        "SIGTERM received: stopping 1 loop(s) ('tick'), which get 0 s to end",
        "grace period of 0 s is over: cancelling 'tick'",
        "every loop has ended",
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signal_while_the_factory_runs_cancels_it_and_no_loop_runs(
    backend: str, signum: signal.Signals, tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import anyio
        import anytasks

        @anytasks.loop(seconds=0.01, name="never")
        async def never():
            print("> never", flush=True)

        async def make_loops():
            print("> factory started", flush=True)
            try:
                await anyio.sleep(60)
            finally:
                print("> factory finally", flush=True)
            return never
        """,
    )
    running = run_service(service, tmp_path, "app:make_loops", "--backend", backend)
    running.wait_for("> factory started")
    running.send(signum)
    # A shutdown asked for before any loop ran is no failure.
    assert running.finish() == 0
    assert running.markers() == ["factory started", "factory finally"]
    assert running.logged() == [
        f"{signum.name} received while starting: cancelling the start-up, which gets 30 s to end",
        "the start-up was cancelled: no loop ran",
    ]
    assert not any("Traceback" in line for line in running.lines)


# -- how the service ends, and its exit status -------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_loops_that_end_on_their_own_end_the_service_with_status_0(
    tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import anytasks

        @anytasks.loop(seconds=0.01, count=3, name="three")
        async def three():
            print(f"> three {three.current_loop}", flush=True)

        @anytasks.loop(seconds=0.01, count=1, name="one")
        async def one():
            print("> one", flush=True)

        loops = (three, one)
        """,
    )
    running = run_service(service, tmp_path, "app:loops", "--backend", "trio")
    assert running.finish() == 0
    assert sorted(running.markers()) == ["one", "three 0", "three 1", "three 2"]
    assert running.logged() == ["running 'three', 'one'", "every loop has ended"]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_a_failed_loop_makes_the_status_1_once_every_loop_has_ended(
    tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import anytasks

        @anytasks.loop(seconds=0.01, name="broken")
        async def broken():
            raise LookupError("no such row")

        @anytasks.loop(seconds=0.05, count=3, name="fine")
        async def fine():
            print(f"> fine {fine.current_loop}", flush=True)

        loops = [broken, fine]
        """,
    )
    running = run_service(service, tmp_path, "app:loops")
    assert running.finish() == 1
    # The other loop carried on to its end.
    assert running.markers() == ["fine 0", "fine 1", "fine 2"]
    assert running.logged("anytasks") == ["Unhandled exception in loop 'broken'"]
    assert "LookupError: no such row" in running.lines
    assert running.logged()[-1] == "every loop has ended; failed: 'broken'"


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_after_loop_that_raises_makes_the_status_1_and_is_logged_once(
    backend: str, tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import anytasks

        @anytasks.loop(seconds=0, count=2, name="tidy")
        async def tidy():
            print(f"> tidy {tidy.current_loop}", flush=True)

        @tidy.after_loop
        async def after_tidy():
            raise LookupError("no such row")

        @anytasks.loop(seconds=0, count=1, name="fine")
        async def fine():
            print("> fine", flush=True)

        loops = [tidy, fine]
        """,
    )
    running = run_service(service, tmp_path, "app:loops", "--backend", backend)
    assert running.finish() == 1
    assert sorted(running.markers()) == ["fine", "tidy 0", "tidy 1"]
    assert running.logged("anytasks") == ["Exception in a hook of loop 'tidy'"]
    assert running.lines.count("LookupError: no such row") == 1
    assert running.logged() == ["running 'tidy', 'fine'", "every loop has ended; failed: 'tidy'"]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_an_unknown_module_is_a_usage_error(tmp_path: Path, service: list[Service]) -> None:
    running = run_service(service, tmp_path, "no_such_app:loops")
    assert running.finish() == 2
    assert running.lines[0].startswith("usage: python -m anytasks run ")
    assert running.lines[-1] == (
        "python -m anytasks run: error: no_such_app:loops: no module named 'no_such_app'"
    )


# -- the health file and the metrics ------------------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_the_health_file_is_touched_after_each_successful_iteration_only(
    tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import os
        import pathlib
        import time

        import anytasks

        health = pathlib.Path(os.environ["HEALTH_FILE"])

        @anytasks.loop(seconds=0.01, count=3, name="beat")
        async def beat():
            n = beat.current_loop
            print(f"> iteration {n}: exists={health.exists()}", flush=True)
            if n == 2:
                print(f"> recent={time.time() - health.stat().st_mtime < 60}", flush=True)
                os.utime(health, (0, 0))
                raise LookupError("broken")

        @beat.after_loop
        async def after_beat():
            print(f"> after_loop: mtime={health.stat().st_mtime:.0f}", flush=True)
        """,
    )
    health = tmp_path / "state" / "healthy"
    health.parent.mkdir()
    running = run_service(
        service,
        tmp_path,
        "app:beat",
        "--health-file",
        str(health),
        env={"HEALTH_FILE": str(health)},
    )
    assert running.finish() == 1
    assert running.markers() == [
        "iteration 0: exists=False",
        "iteration 1: exists=True",
        "iteration 2: exists=True",
        "recent=True",
        # The failed iteration left the file as it was.
        "after_loop: mtime=0",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_the_metrics_port_serves_the_loops_metrics(tmp_path: Path, service: list[Service]) -> None:
    write_module(
        tmp_path,
        """\
        import anytasks

        @anytasks.loop(seconds=0.01, name="beat")
        async def beat():
            print(f"> iteration {beat.current_loop}", flush=True)
        """,
    )
    port = free_port()
    running = run_service(service, tmp_path, "app:beat", "--metrics-port", str(port))
    running.wait_for("> iteration 2")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as response:
        text = response.read().decode()
    running.send(signal.SIGTERM)
    assert running.finish() == 0
    counts = {
        labels: float(value)
        for labels, value in re.findall(r"^anytasks_iterations_total\{(.*)\} (\S+)$", text, re.M)
    }
    successes = [
        value
        for labels, value in counts.items()
        if {'loop="beat"', 'outcome="success"'} <= set(labels.split(","))
    ]
    assert successes, text
    assert successes[0] >= 2


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples that ``/metrics`` on ``port`` serves, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=WAIT) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.subprocess
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("where", "backend"),
    [("import", "asyncio"), ("import", "asyncio+uvloop"), ("factory", "trio")],
)
def test_the_metrics_port_serves_the_applications_own_prometheus_metrics(
    where: str, backend: str, tmp_path: Path, service: list[Service]
) -> None:
    register = "anytasks.add_listener(PrometheusMetrics())"
    write_module(
        tmp_path,
        f"""\
        import anytasks
        from anytasks.metrics.prometheus import PrometheusMetrics

        {register if where == "import" else ""}

        @anytasks.loop(seconds=0, count=3, name="beat")
        async def beat():
            pass

        reported = False

        @anytasks.loop(seconds=0.01, name="idle")
        async def idle():
            # Once beat's task is done, its end has been counted too (after its after_loop).
            global reported
            if not reported and beat.last_end is not None and not beat.is_running():
                reported = True
                print("> beat ended", flush=True)

        async def make_loops():
            {register if where == "factory" else "pass"}
            return [beat, idle]
        """,
    )
    port = free_port()
    running = run_service(
        service, tmp_path, "app:make_loops", "--metrics-port", str(port), "--backend", backend
    )
    running.wait_for("> beat ended")
    samples = scrape(port)
    running.send(signal.SIGTERM)
    assert running.finish() == 0
    # Counted once, by the application's own listener.
    assert samples["anytasks_iterations_total", (("loop", "beat"), ("outcome", "success"))] == 3
    assert samples["anytasks_loop_ends_total", (("loop", "beat"), ("reason", "completed"))] == 1
    assert samples["anytasks_running", (("loop", "idle"),)] == 1
    assert running.logged() == [
        f"--metrics-port {port} serves the application's own PrometheusMetrics",
        "running 'beat', 'idle'",
        "SIGTERM received: stopping 1 loop(s) ('idle'), which get 30 s to end",
        "every loop has ended",
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_metrics_of_anytasks_names_that_are_not_anytasks_are_a_usage_error(
    tmp_path: Path, service: list[Service]
) -> None:
    write_module(
        tmp_path,
        """\
        import prometheus_client

        import anytasks

        prometheus_client.Counter("anytasks_iterations", "Iterations of something else.")
        prometheus_client.Gauge("anytasks_running", "Something else that runs.")

        @anytasks.loop(seconds=0, count=1, name="beat")
        async def beat():
            print("> beat", flush=True)
        """,
    )
    port = free_port()
    running = run_service(service, tmp_path, "app:beat", "--metrics-port", str(port))
    assert running.finish() == 2
    assert running.markers() == []
    assert running.lines[-1] == (
        f"python -m anytasks run: error: --metrics-port {port}: prometheus_client.REGISTRY "
        "already has metrics named anytasks_iterations, anytasks_running, not anytasks' "
        "PrometheusMetrics, which needs those names: rename yours"
    )


@pytest.mark.subprocess
@pytest.mark.timeout(30)
def test_a_metrics_port_in_use_is_a_usage_error(tmp_path: Path, service: list[Service]) -> None:
    write_module(tmp_path, STOPPABLE)
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        running = run_service(service, tmp_path, "app:tick", "--metrics-port", str(port))
        assert running.finish() == 2
    assert running.markers() == []
    assert running.lines[-1] == (
        f"python -m anytasks run: error: --metrics-port {port}: Address already in use"
    )


# -- the service in-process: signals sent to this process, on the real clock --------------------


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    return real_time_backend


def run_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "anytasks.run"]


def loops_to_serve(*loops: anytasks.Loop[..., Any]) -> Callable[[], Awaitable[Setup]]:
    async def prepare() -> Setup:
        return Setup(loops)

    return prepare


@pytest.fixture
def no_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test, rather than end pytest's own process, if the service exits at once."""

    def exit_at_once(status: int) -> NoReturn:
        raise AssertionError(f"the service would have exited with status {status}")

    monkeypatch.setattr(os, "_exit", exit_at_once)


@pytest.mark.anyio
@pytest.mark.usefixtures("no_exit")
async def test_serve_stops_the_loops_then_cancels_them_after_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "anytasks")
    events: list[str] = []

    @anytasks.loop(seconds=0.01, name="quick")
    async def quick() -> None:
        events.append(f"quick {quick.current_loop}")
        if quick.current_loop == 0:
            signal.raise_signal(signal.SIGTERM)
        await anyio.sleep(0.01)

    @anytasks.loop(seconds=0.01, name="stubborn")
    async def stubborn() -> None:
        events.append("stubborn started")
        await anyio.sleep(10)

    @stubborn.after_loop
    async def after_stubborn() -> None:
        events.append(f"stubborn after_loop, cancelled={stubborn.is_being_cancelled()}")
        # A second signal once the grace period has cancelled the loops changes nothing.
        await signal_and_wait_for(signal.SIGTERM, "already", caplog)

    assert await serve(loops_to_serve(stubborn, quick), grace=0.2) == 0
    # Trio starts tasks in no set order.
    assert sorted(events[:2]) == ["quick 0", "stubborn started"]
    assert events[2:] == ["stubborn after_loop, cancelled=True"]
    assert run_messages(caplog) == [
        "running 'stubborn', 'quick'",
        "SIGTERM received: stopping 2 loop(s) ('stubborn', 'quick'), which get 0.2 s to end",
        "grace period of 0.2 s is over: cancelling 'stubborn'",
        "SIGTERM received: the loops are being cancelled already",
        "every loop has ended",
    ]


async def signal_and_wait_for(
    signum: signal.Signals, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Trio delivers a signal that is sent again before the first was read only once.
    signal.raise_signal(signum)
    while not any(message in logged for logged in run_messages(caplog)):  # noqa: ASYNC110
        await anyio.sleep(0.001)


@pytest.mark.anyio
@pytest.mark.usefixtures("no_exit")
async def test_serve_cancels_at_a_second_signal_and_counts_hook_errors_as_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "anytasks")

    @anytasks.loop(seconds=0.01, name="stubborn")
    async def stubborn() -> None:
        while broken.last_end is None:  # noqa: ASYNC110
            await anyio.sleep(0.001)
        await signal_and_wait_for(signal.SIGINT, "SIGINT received: stopping", caplog)
        await signal_and_wait_for(signal.SIGINT, "SIGINT received again", caplog)
        await anyio.sleep(10)

    @stubborn.after_loop
    async def after_stubborn() -> None:
        raise LookupError("no such row")  # a hook's error: the loop has not failed, the run has

    @anytasks.loop(seconds=0, name="broken")
    async def broken() -> None:
        raise LookupError("no such row")

    with anyio.fail_after(5):  # far less than the grace period
        assert await serve(loops_to_serve(stubborn, broken), grace=30) == 1
    assert run_messages(caplog) == [
        "running 'stubborn', 'broken'",
        # 'broken' had ended.
        "SIGINT received: stopping 1 loop(s) ('stubborn'), which get 30 s to end",
        "SIGINT received again: cancelling the loops now",
        "every loop has ended; failed: 'broken', 'stubborn'",
    ]
    # Each error logged once, with its traceback.
    assert [
        (r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "anytasks"
    ] == [
        ("Unhandled exception in loop 'broken'", True),
        ("Exception in a hook of loop 'stubborn'", True),
    ]
    assert (stubborn.failed(), broken.failed()) == (False, True)


# -- the command line, in-process ----------------------------------------------------------------

_names = itertools.count()


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleWriter]:
    """Writes importable modules with fresh names; forgets them afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    # main() sets the level of the `anytasks` logger (pytest's handlers make basicConfig a no-op).
    logger = logging.getLogger("anytasks")
    monkeypatch.setattr(logger, "level", logger.level)
    writer = ModuleWriter(tmp_path)
    yield writer
    for name in writer.names:
        sys.modules.pop(name, None)


class ModuleWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.names: list[str] = []

    def __call__(self, source: str) -> str:
        name = f"anytasks_cli_test_{next(_names)}"
        write_module(self.directory, source, name)
        self.names.append(name)
        return name


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The last line of standard error of ``main(argv)``, which must exit with status 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv, prog="anytasks")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: anytasks")
    return err.splitlines()[-1]


def test_no_command_prints_the_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert usage_error([], capsys) == (
        "anytasks: error: the following arguments are required: COMMAND"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"anytasks {anytasks.__version__}\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grace", "-1"], "argument --grace: must be zero or more seconds, got '-1'"),
        (["--grace", "soon"], "argument --grace: not a number of seconds: 'soon'"),
        (["--grace", "nan"], "argument --grace: must be zero or more seconds, got 'nan'"),
        (["--metrics-port", "0"], "argument --metrics-port: must be from 1 to 65535, got 0"),
        (["--metrics-port", "http"], "argument --metrics-port: not a port number: 'http'"),
        (
            ["--log-level", "loud"],
            "argument --log-level: invalid choice: 'LOUD' (choose from 'DEBUG', 'INFO', "
            "'WARNING', 'ERROR', 'CRITICAL')",
        ),
        (
            ["--backend", "curio"],
            "argument --backend: invalid choice: 'curio' (choose from 'asyncio', "
            "'asyncio+uvloop', 'trio')",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert usage_error(["run", "app:loops", *options], capsys) == f"anytasks run: error: {message}"


LOOPS = """\
import anytasks

@anytasks.loop(seconds=0, count=2, name="a")
async def a():
    print("a", a.current_loop)

@anytasks.loop(seconds=0, count=1, name="b")
async def b():
    print("b", b.current_loop)
"""


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{m}", "expected MODULE:OBJECT (such as app:loops), got '{m}'"),
        ("{m}:", "expected MODULE:OBJECT (such as app:loops), got '{m}:'"),
        ("{m}:a b", "expected MODULE:OBJECT (such as app:loops), got '{m}:a b'"),
        ("{m}.sub:a", "{m}.sub:a: no module named '{m}.sub'"),
        ("{m}:missing", "{m}:missing: {m} has no attribute 'missing'"),
        ("{m}:a.missing", "{m}:a.missing: {m}.a has no attribute 'missing'"),
        ("{m}:number", "{m}:number is an object of type int, not {any}"),
        ("{m}:text", "{m}:text is an object of type str, not {any}"),
        ("{m}:mixed", "{m}:mixed: item 1 is an object of type int, not a Loop"),
        ("{m}:empty", "{m}:empty is an empty list: no loops to run"),
        ("{m}:needs_args", "{m}:needs_args: the factory must be callable with no arguments"),
        (
            "{m}:makes_text",
            "{m}:makes_text() returned an object of type str, not a Loop or an iterable of loops",
        ),
        ("{m}:makes_nothing", "{m}:makes_nothing() returned an empty tuple: no loops to run"),
        (
            "{m}:starts_it",
            "{m}:starts_it(): loop 'a' is running already (anytasks run starts the loops)",
        ),
        ("{m}:sync_factory", "{m}:sync_factory is an object of type function, not {any}"),
    ],
)
def test_what_module_object_names_must_be_loops(
    target: str, message: str, module: ModuleWriter, capsys: pytest.CaptureFixture[str]
) -> None:
    name = module(
        LOOPS
        + """
number = 3
text = "a"
mixed = [a, 1]
empty = []

async def needs_args(config):
    return a

async def makes_text():
    return "a"

async def makes_nothing():
    return ()

async def starts_it():
    a.start()  # an asyncio.Task of its own
    return a

def sync_factory():
    return a
"""
    )
    target = target.format(m=name)
    message = message.format(m=name, any="a Loop, an iterable of loops or an async factory")
    assert usage_error(["run", target], capsys) == f"anytasks run: error: {message}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("a", ["a 0", "a 1"]),
        ("loops", ["a 0", "a 1", "b 0"]),
        ("Holder.loops", ["a 0", "a 1", "b 0"]),
        ("holder.loops", ["a 0", "a 1", "b 0"]),
        ("twice", ["a 0", "a 1"]),
        ("generated", ["a 0", "a 1", "b 0"]),
        ("make_one", ["a 0", "a 1"]),
        ("make_all", ["a 0", "a 1", "b 0"]),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_module_object_names_a_loop_an_iterable_or_an_async_factory(
    target: str,
    expected: list[str],
    backend: str,
    module: ModuleWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = module(
        LOOPS
        + """
loops = [a, b]
twice = [a, a]
generated = (each for each in (a, b))

class Holder:
    loops = (a, b)

holder = Holder()

async def make_one():
    return a

async def make_all():
    return {a, b}
"""
    )
    assert main(["run", f"{name}:{target}", "--backend", backend]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == expected


def test_an_import_error_inside_the_module_is_raised_as_it_is(module: ModuleWriter) -> None:
    name = module("import anytasks_no_such_dependency\n")
    with pytest.raises(ModuleNotFoundError, match="anytasks_no_such_dependency"):
        main(["run", f"{name}:loops"])


def test_an_error_of_the_factory_is_raised_as_it_is(module: ModuleWriter) -> None:
    name = module("async def make():\n    raise KeyError('config')\n")
    with pytest.raises(KeyError, match="config"):
        main(["run", f"{name}:make"])


def test_the_health_file_needs_an_existing_directory(
    module: ModuleWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = module(LOOPS)
    path = tmp_path / "missing" / "healthy"
    assert usage_error(["run", f"{name}:a", "--health-file", str(path)], capsys) == (
        f"anytasks run: error: --health-file {path}: the directory {path.parent} does not exist"
    )


def test_the_health_file_in_process(module: ModuleWriter, tmp_path: Path) -> None:
    name = module(LOOPS)
    path = tmp_path / "healthy"
    assert main(["run", f"{name}:a", "--health-file", str(path)]) == 0
    assert path.is_file()


def test_the_health_file_counts_successes_only_and_warns_once_when_it_cannot_be_touched(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    @anytasks.loop(seconds=1)
    async def beat() -> None:
        pass

    path = tmp_path / "state" / "healthy"
    health = HealthFile(path)
    for outcome in ("error", "timeout", "cancelled"):
        health(anytasks.IterationFinished(beat, 0, outcome, 0.0))
    health(anytasks.IterationStarted(beat, 0, datetime.datetime.now(datetime.timezone.utc), 0.0))
    assert caplog.messages == []  # no attempt to touch it
    for _ in range(2):
        health(anytasks.IterationFinished(beat, 0, "success", 0.0))
    [warning] = caplog.messages
    assert warning.startswith(f"cannot touch the health file {path}: [Errno 2] No such file")
    path.parent.mkdir()
    health(anytasks.IterationFinished(beat, 1, "success", 0.0))
    assert path.is_file()
    path.unlink()
    path.parent.rmdir()
    health(anytasks.IterationFinished(beat, 2, "success", 0.0))
    assert len(caplog.messages) == 2  # a new outage, a new warning


def test_metrics_need_the_prometheus_extra(
    module: ModuleWriter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes the import fail
    name = module(LOOPS)
    assert usage_error(["run", f"{name}:a", "--metrics-port", "9100"], capsys) == (
        "anytasks run: error: --metrics-port needs prometheus_client: "
        "pip install 'anytasks[prometheus]'"
    )


def test_the_console_script_runs_the_command_line() -> None:
    [script] = importlib.metadata.entry_points(group="console_scripts", name="anytasks")
    assert script.value == "anytasks._service.cli:main"
    assert script.load() is main
