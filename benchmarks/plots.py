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

# One colour and one label per implementation, the same in every plot, so that a reader who
# has found "anytasks" in one panel finds it in the next by colour alone. anytasks is blue in
# all of its forms; the hand-written references are greys and green.
STYLE: dict[str, tuple[str, str]] = {
    "anytasks": ("#1f77b4", "anytasks (task group)"),
    "anytasks_task": ("#9ecae9", "anytasks (Loop.start())"),
    "anytasks_host": ("#08306b", "anytasks (background() host)"),
    "discord": ("#ff7f0e", "discord.ext.tasks"),
    "trio_util": ("#9467bd", "trio-util periodic"),
    "deadline": ("#2ca02c", "hand-written deadline loop"),
    "naive": ("#7f7f7f", "hand-written sleep loop"),
    "bare_anyio": ("#8c564b", "bare AnyIO task (floor)"),
    "bare": ("#c7c7c7", "bare task (floor)"),
}
# Sized for a documentation page: about 1100 px wide, shown at 700-800 px, so the text
# stays about as large as the page's own.
WIDTH_IN = 7.5
DPI = 150


def _style(impl: str) -> tuple[str, str]:
    return STYLE.get(impl, ("#17becf", impl))


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
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 4.6))
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
        colour, label = _style(impl)
        ax.bar(xs, heights, width, yerr=[lows, highs], capsize=2, color=colour, label=label)
    ax.set_xticks(range(len(BACKENDS)), BACKENDS)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    # Below the axes, not beside them: the plot keeps the page's whole width.
    ax.legend(
        fontsize="small",
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=min(len(impls), 3),
        frameon=False,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
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
    impls = [impl for impl in STYLE if any(i == impl for i, _ in chosen)]
    impls += sorted({i for i, _ in chosen} - set(impls))
    # One panel per backend, stacked, on one lateness axis: three panels side by side
    # would each be a third of the page wide.
    fig, axes = plt.subplots(len(BACKENDS), 1, figsize=(WIDTH_IN, 8.4), sharex=True, sharey=True)
    for ax, backend in zip(axes, BACKENDS, strict=True):
        for impl in impls:
            record = chosen.get((impl, backend))
            if record is None:
                continue
            points = record["late_percentiles_ms"]
            colour, label = _style(impl)
            ax.plot(
                [value for _, value in points],
                [q for q, _ in points],
                color=colour,
                linewidth=2,
                label=label,
            )
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_title(backend, fontsize="medium", loc="left")
        ax.set_ylabel("% of iterations")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("lateness, ms (symlog scale; negative = early)")
    # One legend for all panels: the colours are the same in each.
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=3,
        fontsize="small",
        frameon=False,
    )
    fig.suptitle(
        "W3: how late each iteration ran, 200 loops at 50 ms (first run of each)",
        fontsize="medium",
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=DPI)
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
            "W1: cost of one iteration (interval 0, empty body); median, min-max",
            out / "w1_cost_per_iteration.png",
            ("anytasks", "discord", "naive", "trio_util"),
        ),
        _grouped_bars(
            summary,
            "W2",
            "rss_per_loop_kib",
            "peak RSS increase per loop, KiB",
            "W2: memory per idle loop (10 000 loops at 1 s); median, min-max",
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
