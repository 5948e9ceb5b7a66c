"""W3, punctuality: how late every iteration runs against its ideal schedule, and drift.

One configuration per process: ``n`` loops (default 200) at ``interval`` (50 ms),
watched for ``window`` seconds (10 s) after each loop has run once. Each loop's ideal
schedule is the moment its body first ran plus ``k * interval``; the lateness of
iteration ``k`` is how much later the body actually ran (``time.perf_counter()``).
Reported over all iterations of all loops: p50, p99 and max lateness, the median
and max lateness of each loop's last iteration (cumulative drift), and the
least-squares slope of lateness against time since the first iteration (drift rate,
ms per s).

Usage: python benchmarks/w3_punctuality.py --impl anytasks --backend trio [--n N]
"""

from __future__ import annotations

import argparse

from _common import BACKENDS, emit, run_backend
from _lateness import drift_summary, lateness_summary
from _many import Observation, base_record, observe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()

    async def run() -> Observation:
        return await observe(
            args.impl,
            args.backend,
            n=args.n,
            interval=args.interval,
            window=args.window,
            recording="trace",
            first_run_timeout=30 + 2 * args.interval,
        )

    seen: Observation = run_backend(args.backend, run)
    recorder = seen.recorder
    record = base_record(
        "W3", args.impl, args.backend, n=args.n, interval=args.interval, window=args.window
    )
    record.update(
        all_ran_once_s=seen.all_ran_once_s,
        iterations=recorder.iterations(),
        cpu_s_per_s=seen.summary().get("cpu_s_per_s"),
    )
    record.update(lateness_summary(recorder.late))
    record.update(drift_summary(recorder.elapsed, recorder.late, recorder.last_late))
    record["counts_ok"] = recorder.ran_once == args.n and min(recorder.counts) >= 2
    emit(record)


if __name__ == "__main__":
    main()
