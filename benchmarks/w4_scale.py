"""W4, scale: whether one process keeps ``n`` loops (default 100 000) at 1 s on time.

One configuration per process: the loops are started, watched until each has run
once and then for a steady ``window`` (default 5 s). Keeping up means a p99
lateness under 100 ms over the iterations of the steady window (lateness as in W3:
against each loop's first iteration plus ``k * interval``); the p99 and max over the
whole run, start-up included, are reported beside it. Also reported: the time to
start all loops and until each has run once, CPU seconds per second in the steady
window, iterations per CPU second (how many loops
at 1 s one core could drive: where the process would stop keeping up), the peak RSS
of the process, and the time to cancel them all.

With CPython's default GC thresholds, collections of the ever larger older
generations dominate at this scale; ``--gc-threshold 50000`` shows the same loops
with fewer collections (history/2026-11-30-w4-gc-threshold.md).

Usage: python benchmarks/w4_scale.py --impl anytasks --backend uvloop [--n N] [--gc-threshold N]
"""

from __future__ import annotations

import argparse
import gc

from _common import BACKENDS, emit, run_backend
from _lateness import lateness_summary
from _many import Observation, base_record, observe

KEEP_UP_P99_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="start the loops evenly over this many seconds (default: all at once)",
    )
    parser.add_argument(
        "--gc-threshold",
        type=int,
        help="call gc.set_threshold(N, 50, 100) first (default: CPython's own thresholds)",
    )
    args = parser.parse_args()
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, 50, 100)

    async def run() -> Observation:
        return await observe(
            args.impl,
            args.backend,
            n=args.n,
            interval=args.interval,
            window=args.window,
            recording="lateness",
            first_run_timeout=120 + 2 * args.interval + args.spread,
            spread=args.spread,
        )

    seen: Observation = run_backend(args.backend, run)
    recorder = seen.recorder
    record = base_record(
        "W4",
        args.impl,
        args.backend,
        n=args.n,
        interval=args.interval,
        window=args.window,
        spread=args.spread,
        gc_thresholds=list(gc.get_threshold()),
    )
    record.update(seen.summary())
    # Samples are appended in time order, so the steady window is a slice of them.
    steady = lateness_summary(recorder.late[seen.window_first_sample :])
    record.update(steady)
    everything = lateness_summary(recorder.late)
    record["late_p99_whole_run_ms"] = everything["late_p99_ms"]
    record["late_max_whole_run_ms"] = everything["late_max_ms"]
    record["keeps_up"] = bool(steady["late_p99_ms"] < KEEP_UP_P99_MS)
    record["counts_ok"] = recorder.ran_once == args.n and min(recorder.counts) >= 2
    emit(record)


if __name__ == "__main__":
    main()
