"""Event-loop lag while a loop's body blocks: a plain ``def`` body, which anytasks runs in a
worker thread, against an ``async def`` body that calls ``time.sleep()`` in the event loop.

Each configuration (backend, body) runs in a fresh process (this file with ``--worker``): one
loop, started with ``anytasks.running()``, whose body blocks for ``--block`` seconds every
``--interval`` seconds, while a probe task of the same event loop sleeps for 1 ms over and over
for ``--seconds`` and records how much later than asked each sleep ends: the lag that a request
handler of a web app would see. The bodies:

- ``none``: no loop at all, the event loop's own lag (the baseline);
- ``def``: ``def body(): time.sleep(block)``, run in a worker thread;
- ``async``: ``async def body(): time.sleep(block)``, which blocks the event loop (the trap
  that ``docs/web-apps.md`` warns of).

Reported for each: the number of probe samples and body iterations, and the lag's p50, p99 and
max in milliseconds; the median over ``--runs`` runs, which are interleaved round-robin.

Usage::

    python benchmarks/thread_lag.py                  # 3 runs of 5 s per configuration, ~2.5 min
    python benchmarks/thread_lag.py --quick          # 1 run of 1 s each: checks that it works
    python benchmarks/thread_lag.py --json out.json  # the records too

Exits with status 1 if a worker failed or a body did not run; the figures never decide it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import BACKENDS, Backend, emit, percentile, run_backend, versions  # noqa: E402

BODIES = ("none", "def", "async")
PROBE_SLEEP = 0.001


async def measure(body: str, seconds: float, interval: float, block: float) -> dict[str, Any]:
    """Run the loop of ``body`` and the probe for ``seconds``: the lags, in seconds."""
    import anyio

    import anytasks

    loops: list[anytasks.Loop[[], None]] = []
    iterations = 0
    if body == "def":

        @anytasks.loop(seconds=interval)
        def blocking_in_a_thread() -> None:
            nonlocal iterations
            time.sleep(block)
            iterations += 1

        loops.append(blocking_in_a_thread)
    elif body == "async":

        @anytasks.loop(seconds=interval)
        async def blocking_in_the_event_loop() -> None:
            nonlocal iterations
            time.sleep(block)  # noqa: ASYNC251 - the trap being measured
            iterations += 1

        loops.append(blocking_in_the_event_loop)

    lags: list[float] = []
    async with anytasks.running(*loops):
        # Let the first iteration begin (and the worker thread start) before measuring.
        await anyio.sleep(0.1)
        end = time.perf_counter() + seconds
        while (started := time.perf_counter()) < end:
            await anyio.sleep(PROBE_SLEEP)
            lags.append(time.perf_counter() - started - PROBE_SLEEP)
    return {"lags": lags, "iterations": iterations}


def worker(args: argparse.Namespace) -> None:
    backend: Backend = args.backend

    async def main() -> dict[str, Any]:
        return await measure(args.body, args.seconds, args.interval, args.block)

    seen = run_backend(backend, main)
    ordered = sorted(seen["lags"])
    expected_iterations = 0 if args.body == "none" else 1
    emit(
        {
            "workload": "thread_lag",
            "backend": backend,
            "body": args.body,
            "seconds": args.seconds,
            "interval": args.interval,
            "block": args.block,
            "samples": len(ordered),
            "iterations": seen["iterations"],
            "counts_ok": seen["iterations"] >= expected_iterations and len(ordered) > 0,
            "lag_p50_ms": percentile(ordered, 50) * 1e3,
            "lag_p99_ms": percentile(ordered, 99) * 1e3,
            "lag_max_ms": ordered[-1] * 1e3,
            "over_5ms": sum(1 for lag in ordered if lag > 0.005),
        }
    )


def run_one(backend: str, body: str, args: argparse.Namespace) -> dict[str, Any] | None:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--backend", backend,
        "--body", body,
        "--seconds", str(args.seconds),
        "--interval", str(args.interval),
        "--block", str(args.block),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60 + 2 * args.seconds)
    if done.returncode != 0:
        print(f"{backend}/{body} failed:\n{done.stderr}", file=sys.stderr)
        return None
    record: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return record


def table(records: list[dict[str, Any]], backends: list[str]) -> str:
    lines = [
        f"Lag of a 1 ms sleep while a body blocks for {records[0]['block']} s every "
        f"{records[0]['interval']} s (ms; median of {len(records) // (len(backends) * 3)} "
        "run(s)):",
        "",
        "| backend | body | samples | iterations | p50 | p99 | max | lags over 5 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in backends:
        for body in BODIES:
            runs = [r for r in records if r["backend"] == backend and r["body"] == body]
            if not runs:
                continue

            def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r[key] for r in runs)

            name = {"none": "none (baseline)", "def": "`def` (thread)", "async": "`async def`"}
            lines.append(
                f"| {backend} | {name[body]} | {median('samples'):.0f} | "
                f"{median('iterations'):.0f} | {median('lag_p50_ms'):.3f} | "
                f"{median('lag_p99_ms'):.3f} | {median('lag_max_ms'):.3f} | "
                f"{median('over_5ms'):.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--body", choices=BODIES, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0, help="probe time per run")
    parser.add_argument("--interval", type=float, default=0.5, help="the loop's interval")
    parser.add_argument("--block", type=float, default=0.3, help="how long the body blocks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run of 1 s per configuration")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--json", type=Path, help="write the records to this file")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.seconds, args.runs = 1.0, 1
    backends = [b for b in args.backends.split(",") if b]
    started = time.monotonic()
    records: list[dict[str, Any]] = []
    failed = False
    for _ in range(args.runs):
        for backend in backends:
            for body in BODIES:
                record = run_one(backend, body, args)
                if record is None or not record["counts_ok"]:
                    failed = True
                if record is not None:
                    records.append(record)
    if records:
        print(table(records, backends))
    print(f"\n({len(records)} processes, {time.monotonic() - started:.0f} s)")
    if args.json:
        args.json.write_text(
            json.dumps({"versions": versions(), "records": records}, indent=1) + "\n",
            encoding="utf-8",
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
