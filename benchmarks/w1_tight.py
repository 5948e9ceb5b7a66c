"""W1, tight loop: the cost of one iteration with a zero interval and an empty body.

One configuration per process. The process alternates the implementation under test
with the hand-written ``while: body; await sleep(0)`` loop on the same backend (in
ABBA order, after an untimed warm-up of both), so each pair shares the process, the
event loop and the moment, and reports the median of the paired ratios. Every run
must call the body exactly ``count`` times.

Usage: python benchmarks/w1_tight.py --impl anytasks --backend trio [--count N] [--pairs P]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _common import BACKENDS, Backend, emit, run_backend, settle
from _impls import run_counted

REFERENCE = "naive"
_calls = 0


async def _body() -> None:
    global _calls
    _calls += 1


async def _timed(impl: str, backend: Backend, count: int) -> dict[str, float | int]:
    global _calls
    settle()
    _calls = 0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    await run_counted(impl, backend, _body, count)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s": cpu, "us_per_iter": wall / count * 1e6, "calls": _calls}


def measure(impl: str, backend: Backend, count: int, pairs: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        warm = max(count // 20, 100)
        await _timed(impl, backend, warm)
        await _timed(REFERENCE, backend, warm)
        runs: list[dict[str, float | int]] = []
        references: list[dict[str, float | int]] = []
        for pair in range(pairs):
            if pair % 2 == 0:
                runs.append(await _timed(impl, backend, count))
                references.append(await _timed(REFERENCE, backend, count))
            else:
                references.append(await _timed(REFERENCE, backend, count))
                runs.append(await _timed(impl, backend, count))
        ratios = [run["wall_s"] / ref["wall_s"] for run, ref in zip(runs, references, strict=True)]
        calls = [int(run["calls"]) for run in runs + references]
        return {
            "us_per_iter": statistics.median(run["us_per_iter"] for run in runs),
            "cpu_s": statistics.median(run["cpu_s"] for run in runs),
            "ref_us_per_iter": statistics.median(ref["us_per_iter"] for ref in references),
            "ref_cpu_s": statistics.median(ref["cpu_s"] for ref in references),
            "ratio_vs_ref": statistics.median(ratios),
            "paired_ratios": ratios,
            "runs": runs,
            "references": references,
            "counts_ok": all(c == count for c in calls),
            "calls": calls,
        }

    result: dict[str, Any] = run_backend(backend, main)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True)
    parser.add_argument("--backend", required=True, choices=BACKENDS)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    record = {
        "workload": "W1",
        "impl": args.impl,
        "backend": args.backend,
        "reference": REFERENCE,
        "count": args.count,
        "pairs": args.pairs,
    }
    record.update(measure(args.impl, args.backend, args.count, args.pairs))
    emit(record)


if __name__ == "__main__":
    main()
