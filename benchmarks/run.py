"""Run the anytasks benchmark suite: every workload, every implementation, every backend.

Each configuration (workload, implementation, backend) runs in a fresh process; the
runs are interleaved round-robin (run 1 of every configuration, then run 2, ...), so
that a slow spell of this machine spreads over all configurations instead of landing
on one. Results are aggregated as median (min-max), checked against the targets of
issue 4, written as JSON, and printed as Markdown tables rendered from that JSON by
``report.py``; plots are drawn if matplotlib is installed. A full run of everything writes
to ``benchmarks/results/`` and regenerates the pages made from it (``RESULTS.md``'s opening,
the docs' tables); anything less goes to ``results/quick/`` or ``results/partial/``.

Usage::

    python benchmarks/run.py                 # the full suite, 3 runs each (~18 min)
    python benchmarks/run.py --quick         # small sizes, 1 run: checks that it all works
    python benchmarks/run.py --only W1,W3 --runs 5 --out /tmp/bench
    python benchmarks/run.py --only W2 --impls anytasks,bare,naive

Exits with status 1 if a worker failed, a count was wrong or a figure is missing;
speed never decides the exit status.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import versions  # noqa: E402
from _impls import BODILESS  # noqa: E402
from import_cost import OPTIONAL  # noqa: E402
from report import results_md, write_files  # noqa: E402

WORKLOADS = ("W1", "W2", "W3", "W4", "import")


@dataclass(frozen=True)
class Config:
    workload: str
    impl: str
    backend: str
    argv: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.workload}/{self.impl}/{self.backend}"


_WORKERS = {
    "W1": "w1_tight.py",
    "W2": "w2_many.py",
    "W3": "w3_punctuality.py",
    "W4": "w4_scale.py",
    "import": "import_cost.py",
}

_MATRIX: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "W1": (
        ("anytasks", ("asyncio", "uvloop", "trio")),
        ("discord", ("asyncio", "uvloop")),
        ("naive", ("asyncio", "uvloop", "trio")),
        ("trio_util", ("trio",)),
    ),
    "W2": (
        ("anytasks", ("asyncio", "uvloop", "trio")),
        ("anytasks_task", ("asyncio", "uvloop")),
        ("anytasks_host", ("asyncio", "uvloop", "trio")),
        ("discord", ("asyncio", "uvloop")),
        ("naive", ("asyncio", "uvloop", "trio")),
        ("trio_util", ("trio",)),
        ("bare", ("asyncio", "uvloop", "trio")),
        ("bare_anyio", ("asyncio", "uvloop", "trio")),
    ),
    "W3": (
        ("anytasks", ("asyncio", "uvloop", "trio")),
        ("discord", ("asyncio", "uvloop")),
        ("naive", ("asyncio", "uvloop", "trio")),
        ("deadline", ("asyncio", "uvloop", "trio")),
        ("trio_util", ("trio",)),
    ),
    "W4": (
        ("anytasks", ("asyncio", "uvloop", "trio")),
        ("anytasks_host", ("asyncio", "uvloop", "trio")),
        ("discord", ("asyncio", "uvloop")),
        ("deadline", ("asyncio", "uvloop", "trio")),
    ),
}

_IMPORTED_MODULES = ("asyncio", "anyio", "anytasks", "discord.ext.tasks", "trio_util")

# Workload sizes: full (as issue 4 specifies) and quick (seconds, to show it all works).
_SIZES: dict[str, dict[str, tuple[str, ...]]] = {
    "full": {
        "W1": ("--count", "100000", "--pairs", "3"),
        "W2": ("--n", "10000", "--interval", "1", "--window", "5"),
        "W3": ("--n", "200", "--interval", "0.05", "--window", "10"),
        "W4": ("--n", "100000", "--interval", "1", "--window", "4"),
        "import": ("--repeat", "5"),
    },
    "quick": {
        "W1": ("--count", "10000", "--pairs", "1"),
        "W2": ("--n", "200", "--interval", "0.2", "--window", "0.4"),
        "W3": ("--n", "20", "--interval", "0.05", "--window", "0.5"),
        "W4": ("--n", "2000", "--interval", "0.2", "--window", "0.4"),
        "import": ("--repeat", "1"),
    },
}

# The figures each workload must produce (a bodiless implementation has no iterations).
_FIGURES: dict[str, tuple[str, ...]] = {
    "W1": ("us_per_iter", "cpu_s", "ref_us_per_iter", "ratio_vs_ref"),
    "W2": ("start_all_s", "cancel_all_s", "rss_per_loop_kib"),
    "W2+body": ("all_ran_once_s", "cpu_s_per_1000_iter", "gc_share_of_cpu"),
    "W3": ("late_p50_ms", "late_p99_ms", "late_max_ms", "drift_last_median_ms", "drift_ms_per_s"),
    "W4": (
        "start_all_s",
        "all_ran_once_s",
        "cancel_all_s",
        "late_p99_ms",
        "late_p99_whole_run_ms",
        "ru_maxrss_mib",
        "rss_per_loop_kib",
        "cpu_s_per_s",
        "gc_share_of_cpu",
        "iterations_per_cpu_s",
    ),
    "import": ("wall_s", "import_increment_s", "in_process_import_s", "maxrss_mib"),
}


def configurations(workloads: Iterable[str], size: str) -> list[Config]:
    configs: list[Config] = []
    for workload in workloads:
        sizes = _SIZES[size][workload]
        if workload == "import":
            configs.extend(
                Config(workload, module, "-", ("--module", module, *sizes))
                for module in _IMPORTED_MODULES
            )
            continue
        for impl, backends in _MATRIX[workload]:
            configs.extend(
                Config(workload, impl, backend, ("--impl", impl, "--backend", backend, *sizes))
                for backend in backends
            )
    return configs


# -- running -------------------------------------------------------------------------------


def run_one(config: Config, timeout: float) -> dict[str, Any]:
    """Run one configuration in a fresh process and return its JSON record."""
    command = [sys.executable, str(HERE / _WORKERS[config.workload]), *config.argv]
    started = time.perf_counter()
    try:
        child = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent
        )
    except subprocess.TimeoutExpired:
        return _failure(config, f"timed out after {timeout:.0f} s")
    elapsed = time.perf_counter() - started
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return _failure(config, f"exit status {child.returncode}: {child.stderr.strip()[-2000:]}")
    record: dict[str, Any] = json.loads(lines[-1])
    record["process_s"] = elapsed
    return record


def _failure(config: Config, error: str) -> dict[str, Any]:
    return {
        "workload": config.workload,
        "impl": config.impl,
        "backend": config.backend,
        "error": error,
        "counts_ok": False,
    }


def run_all(configs: Sequence[Config], runs: int, timeout: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    total = len(configs) * runs
    for run in range(runs):
        for config in configs:
            done = len(records) + 1
            print(f"[{done}/{total}] run {run + 1}: {config.key}", file=sys.stderr, flush=True)
            record = run_one(config, timeout)
            record["run"] = run + 1
            if "error" in record:
                print(f"    FAILED: {record['error']}", file=sys.stderr, flush=True)
            records.append(record)
    return records


# -- aggregating ---------------------------------------------------------------------------


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per configuration key, each numeric figure as {median, min, max, values}."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        key = f"{record['workload']}/{record['impl']}/{record['backend']}"
        grouped.setdefault(key, []).append(record)
    summary: dict[str, dict[str, Any]] = {}
    for key, group in grouped.items():
        figures: dict[str, Any] = {"runs": len(group)}
        names = {name for record in group for name in record}
        for name in sorted(names):
            values = [record.get(name) for record in group]
            numbers = [
                float(v)
                for v in values
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ]
            if numbers and len(numbers) == len(values):
                figures[name] = {
                    "median": statistics.median(numbers),
                    "min": min(numbers),
                    "max": max(numbers),
                    "values": numbers,
                }
        figures["counts_ok"] = all(record.get("counts_ok") is True for record in group)
        figures["errors"] = [record["error"] for record in group if "error" in record]
        if any("keeps_up" in record for record in group):
            figures["keeps_up"] = [record.get("keeps_up") for record in group]
        if any("optional_loaded" in record for record in group):
            figures["optional_loaded"] = sorted(
                {m for record in group for m in record.get("optional_loaded", [])}
            )
        summary[key] = figures
    return summary


def missing_figures(configs: Sequence[Config], summary: dict[str, dict[str, Any]]) -> list[str]:
    """Every figure that a configuration should have produced and did not."""
    missing: list[str] = []
    for config in configs:
        figures = summary.get(config.key)
        if figures is None:
            missing.append(f"{config.key}: no result")
            continue
        wanted = list(_FIGURES[config.workload])
        if config.workload == "W2" and config.impl not in BODILESS:
            wanted += _FIGURES["W2+body"]
        missing.extend(f"{config.key}: {name}" for name in wanted if name not in figures)
    return missing


# -- targets -------------------------------------------------------------------------------


@dataclass
class Target:
    workload: str
    name: str
    backend: str
    measured: str
    goal: str
    met: bool | None  # None: could not be evaluated (a figure is missing)


def _median(summary: dict[str, dict[str, Any]], key: str, figure: str) -> float | None:
    entry = summary.get(key, {}).get(figure)
    return None if entry is None else float(entry["median"])


def _range(summary: dict[str, dict[str, Any]], key: str, figure: str) -> tuple[float, float]:
    entry = summary[key][figure]
    return float(entry["min"]), float(entry["max"])


def evaluate_targets(summary: dict[str, dict[str, Any]]) -> list[Target]:
    targets: list[Target] = []

    def add(name: str, backend: str, value: float | None, goal: str, ok: bool, text: str) -> None:
        workload = name.split()[0] if name.startswith("W") else "import"
        if value is None:
            targets.append(Target(workload, name, backend, "missing", goal, None))
        else:
            targets.append(Target(workload, name, backend, text, goal, ok))

    for backend in ("asyncio", "uvloop", "trio"):
        key = f"W1/anytasks/{backend}"
        ratio = _median(summary, key, "ratio_vs_ref")
        if ratio is not None:
            low, high = _range(summary, key, "ratio_vs_ref")
            text = f"{ratio:.2f}x ({low:.2f}-{high:.2f})"
        else:
            text = ""
        add(
            "W1 time per iteration vs `while: await sleep(0)`",
            backend,
            ratio,
            "<= 1.3x",
            ratio is not None and ratio <= 1.3,
            text,
        )
    for backend in ("asyncio", "uvloop"):
        ours = _median(summary, f"W1/anytasks/{backend}", "us_per_iter")
        theirs = _median(summary, f"W1/discord/{backend}", "us_per_iter")
        ratio = ours / theirs if ours is not None and theirs else None
        add(
            "W1 time per iteration vs discord.py",
            backend,
            ratio,
            "<= 0.35x",
            ratio is not None and ratio <= 0.35,
            f"{ratio:.2f}x ({ours:.2f} vs {theirs:.2f} us)" if ratio is not None else "",
        )
    for backend in ("asyncio", "uvloop", "trio"):
        ours = _median(summary, f"W2/anytasks/{backend}", "rss_per_loop_kib")
        floor = _median(summary, f"W2/bare/{backend}", "rss_per_loop_kib")
        ratio = ours / floor if ours is not None and floor else None
        add(
            "W2 peak RSS per idle loop vs a bare task",
            backend,
            ratio,
            "<= 1.5x",
            ratio is not None and ratio <= 1.5,
            f"{ratio:.1f}x ({ours:.2f} vs {floor:.2f} KiB)" if ratio is not None else "",
        )
        ours = _median(summary, f"W2/anytasks/{backend}", "cpu_s_per_1000_iter")
        hand = _median(summary, f"W2/naive/{backend}", "cpu_s_per_1000_iter")
        ratio = None
        text = ""
        if ours is not None and hand:
            ratio = ours / hand
            text = f"{ratio:.2f}x ({ours * 1e3:.1f} vs {hand * 1e3:.1f} ms)"
        add(
            "W2 CPU per 1000 iterations vs hand-written loop",
            backend,
            ratio,
            "<= 1.3x",
            ratio is not None and ratio <= 1.3,
            text,
        )
    for backend in ("asyncio", "uvloop"):
        for figure, label in (("start_all_s", "start"), ("cancel_all_s", "cancel")):
            ours = _median(summary, f"W2/anytasks/{backend}", figure)
            theirs = _median(summary, f"W2/discord/{backend}", figure)
            ok = ours is not None and theirs is not None and ours <= theirs
            add(
                f"W2 time to {label} all loops vs discord.py",
                backend,
                ours,
                "<= discord.py",
                ok,
                f"{ours:.3f} s vs {theirs:.3f} s"
                if ours is not None and theirs is not None
                else "",
            )
    for backend in ("asyncio", "uvloop", "trio"):
        key = f"W3/anytasks/{backend}"
        drift = _median(summary, key, "drift_ms_per_s")
        worst = None
        if drift is not None:
            low, high = _range(summary, key, "drift_ms_per_s")
            worst = max(abs(low), abs(high))
        add(
            "W3 drift rate |slope|, worst run",
            backend,
            worst,
            "< 0.05 ms/s",
            worst is not None and worst < 0.05,
            f"{worst:.4f} ms/s (median {drift:+.4f})"
            if worst is not None and drift is not None
            else "",
        )
        ours = _median(summary, key, "late_p99_ms")
        hand = _median(summary, f"W3/deadline/{backend}", "late_p99_ms")
        excess = ours - hand if ours is not None and hand is not None else None
        add(
            "W3 p99 lateness minus hand-written deadline loop",
            backend,
            excess,
            "<= 0.5 ms",
            excess is not None and excess <= 0.5,
            f"{excess:+.3f} ms ({ours:.3f} vs {hand:.3f} ms)" if excess is not None else "",
        )
    p99 = _median(summary, "W4/anytasks/uvloop", "late_p99_ms")
    add(
        "W4 100 000 loops keep up: steady p99 lateness",
        "uvloop",
        p99,
        "< 100 ms",
        p99 is not None and p99 < 100,
        f"{p99:.1f} ms" if p99 is not None else "",
    )
    # Issue 19: idle loops in a background() host.
    for backend in ("asyncio", "trio"):
        rss = _median(summary, f"W2/anytasks_host/{backend}", "rss_per_loop_kib")
        add(
            "W2 peak RSS per idle loop in a background() host",
            backend,
            rss,
            "<= 2 KiB",
            rss is not None and rss <= 2,
            f"{rss:.2f} KiB" if rss is not None else "",
        )
    for backend in ("uvloop", "asyncio"):
        p99 = _median(summary, f"W4/anytasks_host/{backend}", "late_p99_ms")
        add(
            "W4 100 000 loops in a background() host keep up: steady p99 lateness",
            backend,
            p99,
            "< 100 ms",
            p99 is not None and p99 < 100,
            f"{p99:.1f} ms" if p99 is not None else "",
        )
    increment = _median(summary, "import/anytasks/-", "import_increment_s")
    loaded = summary.get("import/anytasks/-", {}).get("optional_loaded", [])
    add(
        "import anytasks (wall, minus bare interpreter)",
        "-",
        increment,
        "< 0.05 s",
        increment is not None and increment < 0.05,
        f"{increment:.3f} s" if increment is not None else "",
    )
    add(
        "import anytasks loads no optional library",
        "-",
        0.0 if loaded is not None else None,
        "none of " + ", ".join(OPTIONAL),
        not loaded,
        ", ".join(loaded) or "none",
    )
    return targets


# -- recording -------------------------------------------------------------------------------


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=HERE.parent, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "src_modified": bool(git("status", "--porcelain", "--", "src")),
    }


def _anytasks_origin() -> str | None:
    """Where the workers import anytasks from (``PYTHONPATH`` can point elsewhere)."""
    spec = importlib.util.find_spec("anytasks")
    return spec.origin if spec is not None else None


# -- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--runs", type=int, help="runs per configuration (default 3; quick 1)")
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    parser.add_argument("--impls", help="comma-separated implementations (default: all)")
    parser.add_argument(
        "--out",
        type=Path,
        help="output directory (default: benchmarks/results for a full run of everything,"
        " else benchmarks/results/quick or benchmarks/results/partial)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="per worker, seconds")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--label", help="what was measured, recorded in the JSON (e.g. a commit)")
    args = parser.parse_args(argv)

    size = "quick" if args.quick else "full"
    runs = args.runs or (1 if args.quick else 3)
    workloads = WORKLOADS if not args.only else tuple(w.strip() for w in args.only.split(","))
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")
    # Only a full run of everything replaces the committed results (and the pages made from
    # them); anything less goes to a git-ignored folder unless --out says otherwise.
    complete = not args.quick and set(workloads) == set(WORKLOADS) and not args.impls
    partial = "quick" if args.quick else "partial"
    out = args.out or HERE / "results" / ("" if complete else partial)
    out.mkdir(parents=True, exist_ok=True)

    configs = configurations(workloads, size)
    if args.impls:
        wanted = {impl.strip() for impl in args.impls.split(",")}
        configs = [c for c in configs if c.impl in wanted or c.workload == "import"]
    started = time.time()
    load_before = os.getloadavg()
    git_state = _git_state()
    records = run_all(configs, runs, args.timeout)
    duration = time.time() - started
    summary = aggregate(records)
    missing = missing_figures(configs, summary)
    bad_counts = sorted(key for key, figures in summary.items() if not figures["counts_ok"])
    targets = [t for t in evaluate_targets(summary) if t.workload in workloads]

    meta = {
        "mode": size,
        "runs": runs,
        "workloads": list(workloads),
        "command": [Path(sys.executable).name, *sys.argv],
        "started": started,
        "duration_s": duration,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "versions": versions(),
        "git": git_state,
        "anytasks_origin": _anytasks_origin(),
        "label": args.label,
        "sizes": {w: list(_SIZES[size][w]) for w in workloads},
    }
    results = {
        "meta": meta,
        "summary": summary,
        "targets": [target.__dict__ for target in targets],
        "records": records,
        "problems": {"missing_figures": missing, "bad_counts": bad_counts},
    }
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=1, allow_nan=True) + "\n")
    # Rendered from the file just written, as report.py and the tests render it.
    report = results_md(json.loads(json_path.read_text()))
    print(report, end="")
    (out / "results.md").write_text(report)
    print(f"\nWrote {json_path} ({duration:.0f} s).", file=sys.stderr)
    if complete and out.resolve() == (HERE / "results").resolve():
        try:
            written = write_files(json_path)
        except ValueError as exc:
            print(f"RESULTS.md and the docs' tables left as they were: {exc}", file=sys.stderr)
        else:
            for path in written:
                print(f"Wrote {path}.", file=sys.stderr)
            print(
                "Now read the new figures into RESULTS.md's reading (its heading names the "
                "commit it reads) and add a history page for the run it replaces.",
                file=sys.stderr,
            )

    if not args.no_plots:
        try:
            import plots
        except ImportError as exc:  # matplotlib is optional
            print(f"No plots: {exc}", file=sys.stderr)
        else:
            for path in plots.make_plots(json_path, out):
                print(f"Wrote {path}.", file=sys.stderr)

    for problem in missing:
        print(f"MISSING FIGURE: {problem}", file=sys.stderr)
    for key in bad_counts:
        errors = summary[key]["errors"]
        print(f"WRONG COUNT OR FAILURE: {key} {errors or ''}", file=sys.stderr)
    return 1 if missing or bad_counts else 0


if __name__ == "__main__":
    sys.exit(main())
