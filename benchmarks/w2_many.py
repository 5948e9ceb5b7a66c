"""W2, many loops: start, first run, cancel, memory and steady CPU of N idle loops.

One configuration per process: ``n`` loops at ``interval`` (default 10 000 at 1 s),
watched until each has run once and then for a steady ``window`` (default 4 s), then
cancelled. Memory is the peak RSS sampled while the loops run, minus the RSS just
before the first loop was created, divided by ``n``. The ``bare`` implementation
(a task that sleeps forever) is the memory floor on each backend.

Usage: python benchmarks/w2_many.py --impl anytasks --backend uvloop [--n N] [--window S]
"""

from __future__ import annotations

import argparse

from _common import BACKENDS, emit, run_backend
from _impls import BODILESS
from _many import Observation, base_record, observe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=4.0)
    args = parser.parse_args()

    async def run() -> Observation:
        return await observe(
            args.impl,
            args.backend,
            n=args.n,
            interval=args.interval,
            window=args.window,
            recording="count",
            first_run_timeout=30 + 2 * args.interval,
        )

    seen: Observation = run_backend(args.backend, run)
    record = base_record(
        "W2", args.impl, args.backend, n=args.n, interval=args.interval, window=args.window
    )
    record.update(seen.summary())
    if args.impl in BODILESS:
        record["counts_ok"] = True
    else:
        record["counts_ok"] = seen.recorder.ran_once == args.n and min(seen.recorder.counts) >= 2
    emit(record)


if __name__ == "__main__":
    main()
