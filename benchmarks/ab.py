"""A/B: the same workers on two ``src/`` trees, interleaved in one invocation.

Each configuration runs once per round on tree A and once on tree B, back to back, each
in a fresh process with that tree first on ``PYTHONPATH``; the order within the pair
alternates from round to round (A B, B A, A B, ...), so neither tree always runs first.
The ratios B/A are taken per round, between the two runs of that round, then summarised
as median (min-max) over the rounds: on a shared machine, runs minutes apart compare
worse than runs seconds apart.

Usage::

    git archive OLD src | tar -x -C /tmp/old; git archive NEW src | tar -x -C /tmp/new
    python benchmarks/ab.py --a /tmp/old/src --b /tmp/new/src --rounds 5 --out /tmp/ab
    python benchmarks/ab.py --summarise /tmp/ab/records.jsonl

Records go to ``OUT/records.jsonl`` as they come (one JSON line per worker, with
``tree``, ``round`` and ``order``); the summary is printed as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (workload, implementation, backend, full-size arguments), in the order of a round
CONFIGS: list[tuple[str, str, str, tuple[str, ...]]] = [
    *(
        ("W1", "anytasks", b, ("--count", "100000", "--pairs", "5"))
        for b in ("asyncio", "uvloop", "trio")
    ),
    *(
        ("W2", "anytasks", b, ("--n", "10000", "--interval", "1", "--window", "5"))
        for b in ("asyncio", "uvloop", "trio")
    ),
    *(
        ("W2", "anytasks_task", b, ("--n", "10000", "--interval", "1", "--window", "5"))
        for b in ("asyncio", "uvloop")
    ),
    *(
        ("W3", "anytasks", b, ("--n", "200", "--interval", "0.05", "--window", "10"))
        for b in ("asyncio", "uvloop", "trio")
    ),
    ("import", "anytasks", "-", ("--repeat", "5")),
    # Issue 19: idle loops in a background() host, and 100 000 of them at 1 s.
    *(
        ("W2", "anytasks_host", b, ("--n", "10000", "--interval", "1", "--window", "5"))
        for b in ("asyncio", "uvloop", "trio")
    ),
    *(
        ("W4", "anytasks_host", b, ("--n", "100000", "--interval", "1", "--window", "30"))
        for b in ("asyncio", "uvloop", "trio")
    ),
]
WORKERS = {
    "W1": "w1_tight.py",
    "W2": "w2_many.py",
    "W3": "w3_punctuality.py",
    "W4": "w4_scale.py",
    "import": "import_cost.py",
}

# The figures compared, per workload: (record field, label)
FIELDS: dict[str, list[tuple[str, str]]] = {
    "W1": [
        ("ratio_vs_ref", "ratio to sleep(0) loop (paired, in-process)"),
        ("us_per_iter", "us/iteration"),
        ("ref_us_per_iter", "sleep(0) loop us/iteration"),
    ],
    "W2": [
        ("rss_per_loop_kib", "peak RSS per loop, KiB"),
        ("cpu_s_per_1000_iter", "CPU s per 1000 iterations"),
        ("start_all_s", "start all, s"),
        ("all_ran_once_s", "all ran once, s"),
        ("cancel_all_s", "cancel all, s"),
    ],
    "W3": [
        ("late_p50_ms", "p50 late, ms"),
        ("late_p99_ms", "p99 late, ms"),
        ("late_max_ms", "max late, ms"),
        ("drift_ms_per_s", "drift, ms/s"),
    ],
    "W4": [
        ("late_p99_ms", "steady p99 late, ms"),
        ("late_max_ms", "steady max late, ms"),
        ("cpu_s_per_s", "steady CPU s per s"),
        ("rss_per_loop_kib", "RSS per loop, KiB"),
        ("gc_share_of_cpu", "share of CPU in GC"),
        ("start_all_s", "start all, s"),
        ("cancel_all_s", "cancel all, s"),
    ],
    "import": [
        ("import_increment_s", "python -c import minus pass, s"),
        ("in_process_import_s", "import statement, s"),
        ("rss_increment_mib", "peak RSS minus pass, MiB"),
    ],
}


def _worker(
    workload: str, impl: str, backend: str, sizes: tuple[str, ...], tree: str
) -> dict[str, Any]:
    argv = [sys.executable, str(HERE / WORKERS[workload])]
    argv += ["--module", impl] if workload == "import" else ["--impl", impl, "--backend", backend]
    argv += sizes
    env = dict(os.environ, PYTHONPATH=tree)
    started = time.perf_counter()
    child = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, cwd=HERE)
    if child.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{child.stderr}")
    record: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    record["process_s"] = time.perf_counter() - started
    # Which tree the worker really imported (PYTHONPATH wins over the editable install).
    origin = subprocess.run(
        [sys.executable, "-c", "import anytasks; print(anytasks.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.strip()
    if not origin.startswith(tree):
        raise RuntimeError(f"anytasks came from {origin}, not {tree}")
    return record


def run(a: str, b: str, rounds: int, out: Path, only: set[str] | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    configs = [c for c in CONFIGS if only is None or c[0] in only or f"{c[0]}/{c[1]}" in only]
    began = time.perf_counter()
    with path.open("a") as sink:
        for round_ in range(rounds):
            for workload, impl, backend, sizes in configs:
                order = [("A", a), ("B", b)] if round_ % 2 == 0 else [("B", b), ("A", a)]
                for position, (label, tree) in enumerate(order):
                    record = _worker(workload, impl, backend, sizes, tree)
                    record.update(tree=label, tree_path=tree, round=round_, position=position)
                    sink.write(json.dumps(record) + "\n")
                    sink.flush()
                    print(
                        f"[{time.perf_counter() - began:6.0f} s] round {round_} {workload} {impl} "
                        f"{backend} {label}: {record['process_s']:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
    return path


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.3g} ({min(values):.3g}-{max(values):.3g})"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summarise(path: Path) -> str:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str, str], dict[int, dict[str, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for r in records:
        groups[(r["workload"], r["impl"], r["backend"])][r["round"]][r["tree"]] = r
    header = ["workload", "impl", "backend", "figure", "A: median (min-max)"]
    header += ["B: median (min-max)", "B/A per round: median (min-max)", "rounds"]
    lines = [_row(header), "|---" * len(header) + "|"]
    for (workload, impl, backend), by_round in groups.items():
        pairs = [(v["A"], v["B"]) for v in by_round.values() if "A" in v and "B" in v]
        config = [workload, impl, backend]
        if not all(r.get("counts_ok", True) for p in pairs for r in p):
            lines.append(_row([*config, "**a run miscounted**", "", "", "", ""]))
        for field, label in FIELDS[workload]:
            av = [p[0][field] for p in pairs]
            bv = [p[1][field] for p in pairs]
            ratios = [y / x for x, y in zip(av, bv, strict=True) if x]
            ratio = _fmt(ratios) if field != "drift_ms_per_s" else "-"
            lines.append(_row([*config, label, _fmt(av), _fmt(bv), ratio, str(len(pairs))]))
        if workload == "import":
            loaded = [
                ", ".join(sorted({m for p in pairs for m in p[side]["optional_loaded"]})) or "none"
                for side in (0, 1)
            ]
            label = "optional libraries loaded"
            lines.append(_row([*config, label, *loaded, "", str(len(pairs))]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", help="src/ tree A (the baseline)")
    parser.add_argument("--b", help="src/ tree B (the change)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only",
        help="comma-separated workloads (W1,W2,W3,W4,import) or workload/impl (W2/anytasks_host)",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/ab"))
    parser.add_argument("--summarise", type=Path, help="only summarise this records.jsonl")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    if not (args.a and args.b):
        parser.error("--a and --b are required")
    only = set(args.only.split(",")) if args.only else None
    path = run(
        str(Path(args.a).resolve()), str(Path(args.b).resolve()), args.rounds, args.out, only
    )
    print(summarise(path))


if __name__ == "__main__":
    main()
