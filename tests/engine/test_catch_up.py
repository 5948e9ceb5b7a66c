"""Missed slots across restarts: a lease remembers the last slot that ran, and a service that was
down over slots decides by ``overrun=`` and ``grace=`` what runs of them when it comes back.

In one process on virtual time with MemoryLease (whose state outlives the loop's runs), and with
a real restart of ``anytasks run`` processes on an SQLite file.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

import anytasks
from anytasks.lease import MemoryLease
from support.paths import SRC

T0 = datetime.datetime(2026, 1, 5, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.mark.anyio
@pytest.mark.virtual_time
@pytest.mark.parametrize(
    ("overrun", "grace", "after_restart", "skipped"),
    [
        # Down from 25 s to 85 s: the slots of 30 to 80 s were missed.
        ("coalesce", None, [(80, 85), (90, 90)], 5),
        ("skip", None, [(90, 90), (100, 100)], 6),
        ("burst", None, [(s, 85) for s in range(30, 90, 10)] + [(90, 90)], 0),
        # The coalesced slot would start 5 s late: past grace, it is dropped too.
        ("coalesce", 3.0, [(90, 90), (100, 100)], 6),
    ],
)
async def test_a_restart_runs_the_missed_slots_as_overrun_says(
    overrun: str, grace: float | None, after_restart: list[tuple[int, float]], skipped: int
) -> None:
    key = f"report-{uuid.uuid4().hex}"
    start = anyio.current_time()
    runs: list[tuple[int, float]] = []
    skips: list[int] = []

    def make() -> anytasks.Loop[[], None]:
        @anytasks.loop(  # type: ignore[call-overload]
            seconds=10, exclusive=MemoryLease(key, ttl=3), overrun=overrun, grace=grace
        )
        async def report() -> None:
            slot = (anytasks.current_lease().slot - T0).total_seconds()
            runs.append((round(slot), anyio.current_time() - start))

        @report.add_listener
        def count(event: anytasks.LoopEvent) -> None:
            if isinstance(event, anytasks.IterationSkipped):
                skips.append(event.count)

        return report

    first = make()
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run)
        await anyio.sleep(25)
        first.cancel()  # the service goes down after the slot of 20 s
    assert runs == [(0, 0), (10, 10), (20, 20)]
    await anyio.sleep(60)  # down
    runs.clear()
    second = make()  # the service comes back, a new process as far as the loop can tell
    async with anyio.create_task_group() as tg:
        tg.start_soon(second.run)
        await anyio.sleep(after_restart[-1][1] - 85 + 1)
        second.cancel()
    assert runs == after_restart
    assert sum(skips) == skipped


APP = textwrap.dedent(
    """
    import json, os, sys
    import anytasks
    from anytasks.lease import SQLiteLease

    INTERVAL = 0.2

    @anytasks.loop(
        seconds=INTERVAL,
        exclusive=SQLiteLease(os.environ["LEASE_FILE"], key="report", ttl=2),
        overrun="coalesce",
    )
    async def report():
        slot = anytasks.current_lease().slot.timestamp()
        print(json.dumps({"slot": slot, "skipped": report.skipped}), flush=True)

    loops = [report]
    """
)


def _serve(directory: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anytasks", "run", "app:loops", "--grace", "2"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _slots(process: subprocess.Popen[str], count: int) -> list[dict[str, Any]]:
    """Read ``count`` slot lines from the service, then stop it with SIGTERM."""
    assert process.stdout is not None
    lines = [json.loads(process.stdout.readline()) for _ in range(count)]
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == 0
    return lines


@pytest.mark.subprocess
def test_a_restarted_service_runs_the_missed_slots_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    src = str(SRC)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([src, str(tmp_path)]),
        "LEASE_FILE": str(tmp_path / "lease.db"),
        "PYTHONUNBUFFERED": "1",
    }
    before = _slots(_serve(tmp_path, env), 3)
    down_from = before[-1]["slot"]
    time.sleep(1.5)  # down over several slots of 0.2 s
    after = _slots(_serve(tmp_path, env), 2)
    # The new process knew from the lease where the schedule stood: the slots missed while
    # it was down were accounted for (skipped, but for the one that coalesce runs), and the
    # grid went on from there. (Which slot runs first for each policy: the test above.)
    first, second = after
    gap = round((first["slot"] - down_from) / 0.2)
    assert gap >= 7  # 1.5 s down, and the time to start
    assert first["skipped"] == gap - 1
    assert second["slot"] == pytest.approx(first["slot"] + 0.2, abs=1e-6)
    assert second["skipped"] == first["skipped"]
    # Every slot ran at most once across the two processes.
    slots = [line["slot"] for line in before + after]
    assert len(slots) == len(set(slots))
