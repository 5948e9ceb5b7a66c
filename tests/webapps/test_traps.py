"""The traps of docs/web-apps.md do what the page says they do.

- A task group in the lifespan: the first loop that fails cancels the other one and ends the
  lifespan, and uvicorn goes on serving with no loop running.
- ``loop.start()`` in the lifespan: under uvicorn the loops never end (no ``after_loop``);
  Hypercorn cancels them as its event loop closes; on Trio the app does not start.
- ``time.sleep()`` in an ``async def`` body holds a request up until it returns; in a plain
  ``def`` body it does not.
- ``timeout=`` cannot end an iteration whose ``async def`` body awaits a thread until the
  thread returns; a plain ``def`` body's iteration ends at its deadline.

The first three run the page's blocks under real servers; the last runs in the test's own
process, on the real clock, on every backend.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import anytasks
from support.webapps import (
    FAILING_TASKS,
    FASTAPI_APP,
    TASKS,
    Server,
    adapted,
    block,
    free_port,
    hypercorn,
    uvicorn,
    write,
    write_tasks,
)

GOOD_LIFESPAN = """\
@contextlib.asynccontextmanager
async def lifespan(app):
    async with anytasks.running(refresh, cleanup, grace=10):
        yield
"""


def with_lifespan(trap: str) -> str:
    """The page's FastAPI app, with the trap's lifespan in place of its own."""
    return adapted(
        FASTAPI_APP,
        {GOOD_LIFESPAN: trap, "import contextlib\n": "import contextlib\n\nimport anyio\n"},
    )


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_a_task_group_in_the_lifespan_loses_every_loop_to_one_failure(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, FAILING_TASKS)
    write(tmp_path, "app.py", with_lifespan(block("# Don't: the first loop that fails")))
    port = free_port()
    server = start(uvicorn("app:app", port), port)
    server.wait_until("both loops to end", lambda: len(server.markers("ended")) == 2)
    assert sorted(m.words for m in server.markers("ended")) == [
        ("cleanup", "cancelled"),
        ("refresh", "failed"),
    ]
    # The lifespan ended with the error, and uvicorn serves on, with no loop.
    server.wait_for_line("ExceptionGroup: unhandled errors in a TaskGroup")
    slots = len(server.markers("slot"))
    assert server.get("/status")["refreshes"] == 3
    time.sleep(0.5)
    assert server.get("/status")["refreshes"] == 3
    assert len(server.markers("slot")) == slots
    server.stop(signal.SIGTERM)


START_LIFESPAN = block("# Don't: nothing ends these loops at shutdown.")


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_start_in_the_lifespan_under_uvicorn_never_runs_after_loop(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, TASKS)
    write(tmp_path, "app.py", with_lifespan(START_LIFESPAN))
    port = free_port()
    server = start(uvicorn("app:app", port), port)
    first = server.get("/status")
    server.poll("/status", lambda answer: answer["refreshes"] > first["refreshes"])
    server.stop(signal.SIGTERM)
    server.wait_for_line("Application shutdown complete.")
    assert server.markers("slot")
    assert server.markers("ended") == []
    assert server.logged() == []  # refresh's after_loop logs a line


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_start_in_the_lifespan_under_hypercorn_is_cancelled_at_the_close(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, TASKS)
    write(tmp_path, "app.py", with_lifespan(START_LIFESPAN))
    port = free_port()
    server = start(hypercorn("app:app", port), port)
    first = server.get("/status")
    server.poll("/status", lambda answer: answer["refreshes"] > first["refreshes"])
    assert server.stop(signal.SIGTERM) == 0
    # Cancelled, not stopped: an iteration in progress does not finish.
    assert sorted(m.words for m in server.markers("ended")) == [
        ("cleanup", "cancelled"),
        ("refresh", "cancelled"),
    ]


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_start_in_the_lifespan_on_trio_fails_the_start_up(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, TASKS)
    write(tmp_path, "app.py", with_lifespan(START_LIFESPAN))
    server = start(hypercorn("app:app", free_port(), "--worker-class", "trio"))
    # Hypercorn ends by itself once its worker has failed (its own status is 0 all the same).
    server.finish()
    assert "RuntimeError: <anytasks.Loop 'anytasks: refresh'" in server.output()
    assert "found no anytasks.background() host" in server.output()
    assert server.markers("slot") == []


# -- a blocking call in the body ---------------------------------------------------------------

EXPORT_APP = """\
import contextlib

from fastapi import FastAPI

import anytasks
from tasks import export


@contextlib.asynccontextmanager
async def lifespan(app):
    async with anytasks.running(export):
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/status")
async def read_status():
    return {"exports": export.current_loop}
"""


@pytest.mark.subprocess
@pytest.mark.timeout(60)
@pytest.mark.parametrize("body", ["async def", "def"])
def test_a_blocking_call_holds_requests_up_in_an_async_def_body_only(
    body: str, tmp_path: Path, start: Callable[..., Server]
) -> None:
    shown = block("# Don't: time.sleep()" if body == "async def" else "# Do: a plain def runs")
    # An iteration every half second, which blocks for most of it.
    tasks = "import time\n\nimport anytasks\n\n" + adapted(
        shown, {"minutes=10": "seconds=0.5", "time.sleep(2)": "time.sleep(0.3)"}
    )
    write_tasks(tmp_path, tasks)
    write(tmp_path, "app.py", EXPORT_APP)
    port = free_port()
    server = start(uvicorn("app:app", port), port)
    server.get("/status")
    # The next iteration to start, now that the server answers: a request while it sleeps.
    index = str(len(server.markers("slot")))

    def seen(what: str) -> list[float]:
        return [m.at for m in server.markers(what) if m.words[:2] == ("export", index)]

    server.wait_until(f"iteration {index}", lambda: bool(seen("slot")))
    server.get("/status")
    answered = time.monotonic()
    server.wait_until(f"the end of iteration {index}", lambda: bool(seen("finished")))
    if body == "async def":
        assert answered > seen("finished")[0]  # the request waited for the body
    else:
        assert answered < seen("finished")[0]  # answered while the body slept in its thread
    server.stop(signal.SIGTERM)


# -- timeout= and a thread ------------------------------------------------------------------------


@pytest.fixture
def anyio_backend(real_time_backend: Any) -> Any:
    return real_time_backend


@pytest.mark.anyio
@pytest.mark.parametrize("body", ["async def", "def"])
async def test_a_timeout_cuts_short_a_plain_def_body_only(body: str) -> None:
    shown = block(
        "# Don't: the timeout cannot end" if body == "async def" else "# Do: the iteration ends"
    )
    released = threading.Event()

    def write_export() -> None:
        released.wait(10)

    namespace: dict[str, Any] = {"anytasks": anytasks, "anyio": anyio}
    namespace["write_export"] = write_export
    exec(adapted(shown, {"minutes=10": "seconds=60", "timeout=60": "timeout=0.1"}), namespace)
    export: anytasks.Loop[[], None] = namespace["export"]
    ended = anyio.Event()

    @export.add_listener
    def on_finished(event: anytasks.LoopEvent) -> None:
        if isinstance(event, anytasks.IterationFinished):
            ended.set()

    try:
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                with pytest.raises(anytasks.IterationTimeout) as raised:
                    await export.run()
                assert ("could not be cut short" in str(raised.value)) == (body == "async def")

            tg.start_soon(run)
            if body == "async def":
                # Well past the deadline, the iteration still waits for its thread.
                await anyio.sleep(0.5)
                assert not ended.is_set()
                released.set()
            with anyio.fail_after(5):
                await ended.wait()
            # The plain def's iteration ended while its thread still ran.
            assert released.is_set() == (body == "async def")
    finally:
        released.set()
