"""The lifespan of each framework on docs/web-apps.md, under its real server.

Each test writes the page's ``tasks.py`` (with short intervals) and the framework's ``app.py``
as the page shows them, starts the server, reads ``/status`` until a loop has changed it, sends
SIGTERM, and checks the exit status and the probe's lines: both loops started once, on the event
loop the server runs; every iteration ran once; ``after_loop`` ran (its log line, counting
every refresh, and then the ``ended`` line of each loop); nothing after that.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from support.webapps import (
    TASKS,
    Server,
    adapted,
    block,
    check_each_iteration_once,
    free_port,
    hypercorn,
    uvicorn,
    write,
    write_tasks,
)

UVLOOP = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"

# uvicorn ends a clean shutdown by raising the signal it received again (since 0.29), so that
# whoever started it sees the process ended by SIGTERM; Hypercorn and aiohttp exit with 0.
BY_SIGTERM = -signal.SIGTERM


def changed(first: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    return lambda answer: answer["refreshes"] > first["refreshes"]


def check_the_run(server: Server, answers: list[dict[str, Any]], event_loop: str) -> None:
    started = server.markers("started")
    assert sorted(m.words for m in started) == [
        ("cleanup", event_loop),
        ("refresh", event_loop),
    ]
    assert len({m.pid for m in started}) == 1
    refreshes = check_each_iteration_once(server, "refresh")
    check_each_iteration_once(server, "cleanup")
    # What the endpoint read is what the loop wrote, and no more.
    assert answers[0]["refreshes"] < answers[-1]["refreshes"] <= refreshes
    assert answers[-1]["refreshed_at"] is not None
    # after_loop ran once, after every iteration; then each run ended, stopped, last.
    assert server.logged() == [f"refresh stopped after {refreshes} refreshes"]
    ended = server.markers("ended")
    assert sorted(m.words for m in ended) == [("cleanup", "stopped"), ("refresh", "stopped")]
    for end in ended:
        own = [m for m in server.markers() if m.what != "log" and m.words[0] == end.words[0]]
        assert own[-1] == end
    assert server.markers("log")[0].at <= next(m.at for m in ended if m.words[0] == "refresh")


CASES = {
    # framework: (the page's block, the server's command line, event loop, exit status)
    "fastapi-uvicorn": (
        ("# app.py: uvicorn app:app\n", "from fastapi import FastAPI"),
        lambda port: uvicorn("app:app", port),
        UVLOOP,
        BY_SIGTERM,
    ),
    "fastapi-hypercorn-trio": (
        ("# app.py: uvicorn app:app\n", "from fastapi import FastAPI"),
        lambda port: hypercorn("app:app", port, "--worker-class", "trio"),
        "trio",
        0,
    ),
    "starlette-hypercorn": (
        ("from starlette.applications import Starlette",),
        lambda port: hypercorn("app:app", port),
        "asyncio",
        0,
    ),
    "starlette-hypercorn-trio": (
        ("from starlette.applications import Starlette",),
        lambda port: hypercorn("app:app", port, "--worker-class", "trio"),
        "trio",
        0,
    ),
    "litestar-uvicorn": (
        ("from litestar import Litestar",),
        lambda port: uvicorn("app:app", port),
        UVLOOP,
        BY_SIGTERM,
    ),
    "quart-hypercorn": (
        ("from quart import Quart",),
        lambda port: hypercorn("app:app", port),
        "asyncio",
        0,
    ),
    "quart-trio-hypercorn-trio": (
        ("from quart_trio import QuartTrio",),
        lambda port: hypercorn("app:app", port, "--worker-class", "trio"),
        "trio",
        0,
    ),
    "aiohttp": (
        ("from aiohttp import web",),
        lambda port: ["-m", "aiohttp.web", "-H", "127.0.0.1", "-P", str(port), "app:init_app"],
        "asyncio",
        0,
    ),
}


@pytest.mark.subprocess
@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(CASES))
def test_the_lifespan_runs_the_loops_and_sigterm_stops_them(
    case: str, tmp_path: Path, start: Callable[..., Server]
) -> None:
    texts, argv_of, event_loop, status = CASES[case]
    write_tasks(tmp_path, TASKS)
    write(tmp_path, "app.py", block(*texts))
    port = free_port()
    server = start(argv_of(port), port)
    first = server.get("/status")
    answers = [first, *server.poll("/status", changed(first))]
    assert server.stop(signal.SIGTERM) == status, server.output()
    check_the_run(server, answers, event_loop)


# -- Django: the loops in a process of their own -----------------------------------------------

SETTINGS = """\
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
SECRET_KEY = "tests/webapps"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.sessions"]
ROOT_URLCONF = "mysite.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "db.sqlite3"}}
# Shared by the web server's process and the loops' (not the local-memory default).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": BASE / "cache",
    }
}
USE_TZ = True
"""

URLS = """\
from django.urls import path

from mysite import views

urlpatterns = [path("status", views.status)]
"""


@pytest.mark.subprocess
@pytest.mark.timeout(60)
def test_django_loops_run_beside_the_web_server_with_anytasks_run(
    tmp_path: Path, start: Callable[..., Server]
) -> None:
    tasks = adapted(
        block("# mysite/tasks.py: anytasks run mysite.tasks:loops"),
        {"seconds=30": "seconds=0.1", "hours=24": "seconds=0.2"},
    )
    write(tmp_path, "mysite/__init__.py", "")
    write(tmp_path, "mysite/settings.py", SETTINGS)
    write(tmp_path, "mysite/urls.py", URLS)
    write(tmp_path, "mysite/views.py", block("# mysite/views.py"))
    write_tasks(tmp_path, tasks, "mysite/tasks.py")
    env = {"DJANGO_SETTINGS_MODULE": "mysite.settings"}
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--verbosity", "0"],
        cwd=tmp_path,
        env={**os.environ, **env, "PYTHONPATH": str(tmp_path)},
        check=True,
        timeout=60,
    )
    # One session that is still valid, and one that has expired (clearsessions deletes it).
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        db.executemany(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (?, ?, ?)",
            [("live", "", "2999-01-01 00:00:00"), ("expired", "", "2000-01-01 00:00:00")],
        )
    db.close()

    port = free_port()
    web = start(["-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"], port, env)
    loops = start(["-m", "anytasks", "run", "mysite.tasks:loops"], env=env)
    first = web.poll("/status", lambda answer: "at" in answer)[-1]
    answers = [first, *web.poll("/status", lambda answer: answer["at"] > first["at"])]
    assert answers[-1]["sessions"] == 1
    loops.wait_until(
        "a clear_sessions iteration",
        lambda: any(m.words[0] == "clear_sessions" for m in loops.markers("finished")),
    )
    assert loops.stop(signal.SIGTERM) == 0, loops.output()

    assert sorted(m.words for m in loops.markers("started")) == [
        ("clear_sessions", "asyncio"),
        ("refresh_status", "asyncio"),
    ]
    check_each_iteration_once(loops, "refresh_status")
    check_each_iteration_once(loops, "clear_sessions")
    assert sorted(m.words for m in loops.markers("ended")) == [
        ("clear_sessions", "stopped"),
        ("refresh_status", "stopped"),
    ]
    assert "every loop has ended" in loops.output()
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        assert db.execute("SELECT session_key FROM django_session").fetchall() == [("live",)]
    db.close()
