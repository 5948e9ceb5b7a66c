"""Logging under uvicorn and Hypercorn, as docs/web-apps.md sets it up: a failing iteration's
record, with its traceback, is formatted, and the server's own lines are printed once.

The apps and the loops are the page's, but ``refresh`` fails at its third iteration (so it
ends, and ``cleanup`` goes on: ``anytasks.running()`` keeps the other loops running).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from support.webapps import (
    FAILING_TASKS,
    FASTAPI_APP,
    Server,
    block,
    free_port,
    hypercorn,
    uvicorn,
    write,
    write_tasks,
)

STARLETTE_APP = block("from starlette.applications import Starlette")
BASIC_CONFIG = block("# app.py, first lines (uvicorn)")
LOG_CONFIG = block('"version": 1', language="json")

# 2026-01-05 12:00:30,012 ERROR anytasks: ...
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
FAILED = "Unhandled exception in loop 'anytasks: refresh'"


def run_until_the_failure(server: Server) -> None:
    """Wait until ``refresh`` has failed and ``cleanup`` has gone on after it, then stop."""
    server.wait_until(
        "refresh to fail and cleanup to go on",
        lambda: (
            any(m.words == ("refresh", "failed") for m in server.markers("ended"))
            and len(server.markers("slot")) >= 6
        ),
    )
    failed = next(m.at for m in server.markers("ended") if m.words[0] == "refresh")
    assert any(m.words[0] == "cleanup" and m.at > failed for m in server.markers("slot"))
    assert server.get("/status")["refreshes"] == 3  # the app goes on serving
    server.stop(signal.SIGTERM)


def lines_after(server: Server, pattern: str) -> list[str]:
    """The line that matches ``pattern`` (there must be one) and the lines after it."""
    texts = [line.text for line in server.lines]
    found = [i for i, text in enumerate(texts) if re.fullmatch(pattern, text)]
    assert len(found) == 1, server.output()
    return texts[found[0] :]


def check_the_traceback(after: list[str]) -> None:
    assert after[1] == "Traceback (most recent call last):"
    assert "LookupError: no such feed" in after


def count(server: Server, pattern: str) -> int:
    return sum(1 for line in server.lines if re.fullmatch(pattern, line.text))


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_without_set_up_uvicorn_prints_the_failure_bare(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, FAILING_TASKS)
    write(tmp_path, "app.py", STARLETTE_APP)
    port = free_port()
    server = start(uvicorn("app:app", port), port)
    run_until_the_failure(server)
    # Python's last-resort handler: the message alone, with no time, level or logger name.
    check_the_traceback(lines_after(server, re.escape(FAILED)))


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_basic_config_in_the_app_formats_the_failure_under_uvicorn(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, FAILING_TASKS)
    write(tmp_path, "app.py", BASIC_CONFIG + "\n" + FASTAPI_APP)
    port = free_port()
    server = start(uvicorn("app:app", port), port)
    run_until_the_failure(server)
    check_the_traceback(lines_after(server, f"{STAMP} ERROR anytasks: {re.escape(FAILED)}"))
    # uvicorn's own lines keep their format, once each.
    assert count(server, r"INFO: +Application startup complete\.") == 1


@pytest.mark.subprocess
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "server_of",
    [
        pytest.param(
            lambda port: uvicorn("app:app", port, "--log-config", "logging.json"), id="uvicorn"
        ),
        pytest.param(
            lambda port: hypercorn("app:app", port, "--log-config", "json:logging.json"),
            id="hypercorn",
        ),
    ],
)
def test_the_log_config_file_formats_every_logger_once(
    server_of: Callable[[int], list[str]], tmp_path: Path, start: Callable[..., Server]
) -> None:
    write_tasks(tmp_path, FAILING_TASKS)
    write(tmp_path, "app.py", STARLETTE_APP)
    write(tmp_path, "logging.json", LOG_CONFIG)
    port = free_port()
    server = start(server_of(port), port)
    run_until_the_failure(server)
    check_the_traceback(lines_after(server, f"{STAMP} ERROR anytasks: {re.escape(FAILED)}"))
    # The server's own lines in the same format, once each.
    started = (
        rf"{STAMP} INFO (uvicorn\.error: Application startup complete\."
        rf"|hypercorn\.error: Running on http://127\.0\.0\.1:{port} .*)"
    )
    assert count(server, started) == 1, server.output()
    assert not any(
        "Running on" in line.text and "INFO hypercorn" not in line.text for line in server.lines
    )


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_basic_config_under_hypercorn_prints_its_lines_twice(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    # What the page warns of: Hypercorn's error logger has a handler and propagates.
    write_tasks(tmp_path, FAILING_TASKS)
    write(tmp_path, "app.py", BASIC_CONFIG + "\n" + STARLETTE_APP)
    port = free_port()
    server = start(hypercorn("app:app", port), port)
    server.get("/status")
    server.stop(signal.SIGTERM)
    running_on = [
        line.text for line in server.lines if f"Running on http://127.0.0.1:{port}" in line.text
    ]
    assert len(running_on) == 2, server.output()
