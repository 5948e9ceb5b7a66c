"""Three uvicorn workers and one exclusive loop: every slot runs once, and a ``kill -9`` of the
worker that holds the lease costs at most one ttl of slots.

Writes a Starlette app to a temporary folder and starts ``python -m uvicorn app:app --workers
3``. Each worker's lifespan runs, with ``anytasks.running()``, one loop every ``--interval``
seconds with ``exclusive=SQLiteLease(FOLDER/lease.db, key="bench", ttl=--ttl)``, whose plain
``def`` body appends ``SLOT PID TOKEN`` to a file of its worker (one ``write()`` on a file
opened with ``O_APPEND``: a killed process loses nothing it wrote). Halfway through, as soon as
the holder has written a slot, the benchmark kills that worker with SIGKILL; uvicorn starts a
new one, and another worker takes the lease over. After ``--seconds`` a SIGTERM stops uvicorn.

Reported, from the files:

- slots expected: the slots of the grid from the first slot written to the last;
- slots run, and duplicates: slots written more than once (must be 0);
- slots missed after the kill: between the killed holder's last slot and the next holder's
  first (at most ttl / interval: the lease expires at most one ttl after the kill);
- slots missed elsewhere (must be 0);
- the holders and fencing tokens before and after the kill, and how long the handover took.

Usage::

    python benchmarks/web_workers.py --seconds 60          # a 1 s loop for a minute, ttl 5 s
    python benchmarks/web_workers.py --quick               # about 10 s: checks that it works
    python benchmarks/web_workers.py --json out.json       # the record too

Exits with status 1 if a slot ran twice, a slot was missed outside the kill's window, the kill
cost more slots than one ttl holds, or the run failed; how fast anything was never decides it.
Needs uvicorn and Starlette (the ``test`` or ``bench`` dependency group).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import versions  # noqa: E402

WORKERS = 3

APP = """\
import contextlib
import os

from starlette.applications import Starlette

import anytasks
from anytasks.lease import SQLiteLease

FOLDER = os.environ["WEB_WORKERS_FOLDER"]
INTERVAL = float(os.environ["WEB_WORKERS_INTERVAL"])
TTL = float(os.environ["WEB_WORKERS_TTL"])
lease = SQLiteLease(os.path.join(FOLDER, "lease.db"), key="bench", ttl=TTL)


@anytasks.loop(seconds=INTERVAL, exclusive=lease)
def record():
    held = anytasks.current_lease()
    line = f"{held.slot.timestamp():.6f} {os.getpid()} {held.token}\\n"
    path = os.path.join(FOLDER, f"slots-{os.getpid()}.txt")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def lifespan(app):
    async with anytasks.running(record, grace=5):
        yield


app = Starlette(lifespan=lifespan)
"""


@dataclass(frozen=True, order=True)
class Run:
    slot: float  # seconds since the epoch
    pid: int
    token: int


def read_runs(folder: Path) -> list[Run]:
    runs = []
    for path in folder.glob("slots-*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            slot, pid, token = line.split()
            runs.append(Run(float(slot), int(pid), int(token)))
    return sorted(runs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"web_workers: no {what} after {timeout} s")
        time.sleep(0.005)
    return found


def measure(seconds: float, interval: float, ttl: float, folder: Path) -> dict[str, Any]:
    (folder / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])),
        "WEB_WORKERS_FOLDER": str(folder),
        "WEB_WORKERS_INTERVAL": str(interval),
        "WEB_WORKERS_TTL": str(ttl),
    }
    argv = [sys.executable, "-m", "uvicorn", "app:app", "--workers", str(WORKERS)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = (folder / "uvicorn.log").open("w")
    server = subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = wait_for("first slot", lambda: read_runs(folder), 30)[0]
        began = time.monotonic()
        # Halfway: as soon as the holder has written a slot, kill it.
        time.sleep(max(0.0, seconds / 2 - interval))
        seen = len(read_runs(folder))
        last_before = wait_for("slot to kill after", lambda: read_runs(folder)[seen:], 30)[-1]
        os.kill(last_before.pid, signal.SIGKILL)
        killed_at = time.time()
        after = wait_for(
            "slot after the kill",
            lambda: [r for r in read_runs(folder) if r.slot > last_before.slot],
            10 * ttl + 30,
        )[0]
        taken_over_at = time.time()
        time.sleep(max(0.0, began + seconds - time.monotonic()))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            status = server.wait()
        log.close()
    runs = read_runs(folder)
    step = round(interval * 1e6)
    grid = [round(r.slot * 1e6) for r in runs]
    run_slots = set(grid)
    expected = range(min(grid), max(grid) + step, step)
    missing = [slot for slot in expected if slot not in run_slots]
    kill_window = range(round(last_before.slot * 1e6) + step, round(after.slot * 1e6), step)
    missed_after_kill = [slot for slot in missing if slot in kill_window]
    return {
        "workload": "web_workers",
        "workers": WORKERS,
        "seconds": seconds,
        "interval": interval,
        "ttl": ttl,
        "first_slot": datetime.datetime.fromtimestamp(
            first.slot, datetime.timezone.utc
        ).isoformat(),
        "slots_expected": len(expected),
        "slots_run": len(runs),
        "duplicates": len(grid) - len(run_slots),
        "missed_after_kill": len(missed_after_kill),
        "missed_bound": math.floor(ttl / interval + 1e-9),
        "missed_elsewhere": len(missing) - len(missed_after_kill),
        "killed": {"pid": last_before.pid, "token": last_before.token},
        "next_holder": {"pid": after.pid, "token": after.token},
        "handover_s": taken_over_at - killed_at,
        "holders": sorted({r.pid for r in runs}),
        "tokens_increase": [r.token for r in runs] == sorted(r.token for r in runs),
        "uvicorn_status": status,
        "uvicorn_log_tail": (folder / "uvicorn.log").read_text(encoding="utf-8")[-2000:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--interval", type=float, default=1.0, help="the loop's interval")
    parser.add_argument("--ttl", type=float, default=5.0, help="the lease's ttl")
    parser.add_argument("--quick", action="store_true", help="10 s, interval 0.5 s, ttl 2 s")
    parser.add_argument("--json", type=Path, help="write the record to this file")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.interval, args.ttl = 10.0, 0.5, 2.0
    with tempfile.TemporaryDirectory(prefix="web-workers-") as folder:
        record = measure(args.seconds, args.interval, args.ttl, Path(folder))
    record["versions"] = versions()
    for name in ("uvicorn", "starlette"):
        record["versions"]["packages"][name] = metadata.version(name)
    print(
        textwrap.dedent(
            f"""\
            {WORKERS} uvicorn workers, a loop every {args.interval} s with SQLiteLease(ttl={args.ttl}),
            for {args.seconds} s from {record["first_slot"]}; the holder killed (SIGKILL) midway:

            | slots expected | slots run | duplicates | missed after the kill | bound (ttl / interval) | missed elsewhere |
            |---|---|---|---|---|---|
            | {record["slots_expected"]} | {record["slots_run"]} | {record["duplicates"]} | {record["missed_after_kill"]} | {record["missed_bound"]} | {record["missed_elsewhere"]} |

            killed worker {record["killed"]["pid"]} (token {record["killed"]["token"]}); worker {record["next_holder"]["pid"]} took over with token {record["next_holder"]["token"]}, {record["handover_s"]:.2f} s after the kill
            tokens never went back: {record["tokens_increase"]}; uvicorn's exit status: {record["uvicorn_status"]}"""  # noqa: E501
        )
    )
    if args.json:
        args.json.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    ok = (
        record["duplicates"] == 0
        and record["missed_elsewhere"] == 0
        and record["missed_after_kill"] <= record["missed_bound"]
        and record["tokens_increase"]
        and record["next_holder"]["pid"] != record["killed"]["pid"]
    )
    if not ok:
        print("\nFAILED; uvicorn's log ends with:\n" + record["uvicorn_log_tail"], file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
