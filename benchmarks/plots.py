"""Plots of a results JSON: W1 cost per iteration, W2 memory per loop, W3 lateness.

Usage: python benchmarks/plots.py benchmarks/results/results.json [OUT_DIR]

Needs matplotlib (drawn with the Agg backend, no display needed).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

BACKENDS = ("asyncio", "uvloop", "trio")


def _entries(summary: dict[str, Any], workload: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = []
    for key, figures in summary.items():
        wl, impl, backend = key.split("/")
        if wl == workload:
            rows.append((impl, backend, figures))
    return rows


def _grouped_bars(
    summary: dict[str, Any],
    workload: str,
    figure: str,
    ylabel: str,
    title: str,
    path: Path,
    impl_order: Sequence[str],
) -> Path | None:
    rows = [(i, b, f) for i, b, f in _entries(summary, workload) if figure in f]
    if not rows:
        return None
    impls = [impl for impl in impl_order if any(i == impl for i, _, _ in rows)]
    fig, ax = plt.subplots(figsize=(10.5, 4.5))
    width = 0.8 / max(len(impls), 1)
    for n, impl in enumerate(impls):
        xs, heights, lows, highs = [], [], [], []
        for x, backend in enumerate(BACKENDS):
            match = [f for i, b, f in rows if i == impl and b == backend]
            if not match:
                continue
            entry = match[0][figure]
            xs.append(x - 0.4 + width * (n + 0.5))
            heights.append(entry["median"])
            lows.append(entry["median"] - entry["min"])
            highs.append(entry["max"] - entry["median"])
        ax.bar(xs, heights, width, yerr=[lows, highs], capsize=2, label=impl)
    ax.set_xticks(range(len(BACKENDS)), BACKENDS)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _lateness(records: list[dict[str, Any]], path: Path) -> Path | None:
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("workload") != "W3" or "late_percentiles_ms" not in record:
            continue
        chosen.setdefault((record["impl"], record["backend"]), record)
    if not chosen:
        return None
    fig, axes = plt.subplots(1, len(BACKENDS), figsize=(13, 4.2), sharey=True)
    for ax, backend in zip(axes, BACKENDS, strict=True):
        for (impl, b), record in sorted(chosen.items()):
            if b != backend:
                continue
            points = record["late_percentiles_ms"]
            ax.plot([value for _, value in points], [q for q, _ in points], label=impl)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("lateness, ms (symlog)")
        ax.set_title(backend)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_ylabel("percentile of iterations")
    fig.suptitle("W3: how late each iteration ran (first run of each configuration)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_plots(json_path: Path, out: Path) -> list[Path]:
    """Draw every plot the results allow into ``out``; return the files written."""
    results = json.loads(json_path.read_text())
    summary = results["summary"]
    written = [
        _grouped_bars(
            summary,
            "W1",
            "us_per_iter",
            "microseconds per iteration",
            "W1: cost of one iteration (interval 0, empty body), median and min-max",
            out / "w1_cost_per_iteration.png",
            ("anytasks", "discord", "naive", "trio_util"),
        ),
        _grouped_bars(
            summary,
            "W2",
            "rss_per_loop_kib",
            "peak RSS increase per loop, KiB",
            "W2: memory per idle loop (10 000 loops at 1 s), median and min-max",
            out / "w2_memory_per_loop.png",
            ("anytasks", "anytasks_task", "discord", "naive", "trio_util", "bare_anyio", "bare"),
        ),
        _lateness(results["records"], out / "w3_lateness.png"),
    ]
    return [path for path in written if path is not None]


if __name__ == "__main__":
    source = Path(sys.argv[1])
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else source.parent
    for written_path in make_plots(source, target):
        print(written_path)
