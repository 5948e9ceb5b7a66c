"""One run's benchmark figures are written once, and every page that shows them is generated.

``benchmarks/results/results.json`` is the record of the latest full run. ``results.md`` beside
it, the opening of ``benchmarks/RESULTS.md`` and the tables that the docs' performance and method
pages include (``docs/_generated/``) are rendered from it by ``benchmarks/report.py``; these tests
fail when one of them says something else, and when a docs page shows figures of its own.
"""

from __future__ import annotations

import json
import re
import sys
from types import ModuleType

import pytest

from support.paths import BENCHMARKS, DOCS, ROOT

RESULTS = json.loads((BENCHMARKS / "results" / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def report() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import report
    finally:
        sys.path.remove(str(BENCHMARKS))
    return report


def test_the_committed_results_are_a_full_run() -> None:
    meta = RESULTS["meta"]
    assert meta["mode"] == "full"
    assert set(meta["workloads"]) == {"W1", "W2", "W3", "W4", "import"}
    assert RESULTS["problems"] == {"missing_figures": [], "bad_counts": []}


def test_every_page_of_the_run_is_generated_from_results_json(report: ModuleType) -> None:
    stale = [path.relative_to(ROOT).as_posix() for path in report.stale_files()]
    assert stale == [], (
        "out of date with benchmarks/results/results.json: run benchmarks/report.py"
    )


def test_the_reading_is_of_the_run_measured() -> None:
    """A new full run must come with a new reading: its heading names the commit it reads."""
    page = (BENCHMARKS / "RESULTS.md").read_text(encoding="utf-8")
    read = re.findall(r"^## Reading \(of `([0-9a-f]+)`\)$", page, flags=re.M)
    assert read == [RESULTS["meta"]["git"]["commit"][:7]]


@pytest.mark.parametrize(
    ("page", "includes"),
    [
        ("performance.md", ["_generated/benchmark-glance.md", "_generated/benchmark-run.md"]),
        (
            "ko/performance.md",
            ["../_generated/benchmark-glance.ko.md", "../_generated/benchmark-run.ko.md"],
        ),
        (
            "benchmarks-method.md",
            ["_generated/benchmark-run.md", "../benchmarks/results/results.md"],
        ),
        (
            "ko/benchmarks-method.md",
            ["../_generated/benchmark-run.ko.md", "../../benchmarks/results/results.md"],
        ),
    ],
)
def test_the_docs_include_the_generated_tables(page: str, includes: list[str]) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    found = re.findall(r"^```\{include\} (\S+)$", text, flags=re.M)
    assert set(includes) <= set(found)
    for include in found:
        assert (DOCS / page).parent.joinpath(include).resolve().is_file(), include


# A measured figure: a decimal with a unit, a ratio or a percentage. Workload sizes (200 loops
# every 50 ms) are whole numbers and may stay in the prose.
# (Korean particles follow a figure without a space: "0.14초", "100%에서".)
FIGURE = re.compile(
    r"\d+\.\d+\s?(?:µs|us|ms|s|KiB|MiB|초)(?![A-Za-z])|\d+(?:\.\d+)?(?:x|배|\s?%)(?![A-Za-z])"
)


def _prose(text: str) -> str:
    """The page without its fenced blocks (code, includes) and inline code."""
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1\s*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


@pytest.mark.parametrize(
    "page",
    [
        "performance.md",
        "ko/performance.md",
        "benchmarks-method.md",
        "ko/benchmarks-method.md",
        "web-apps.md",
        "ko/web-apps.md",
    ],
)
def test_the_docs_paste_no_figures(page: str) -> None:
    """The figures of a run reach the docs only through the generated tables (and those of a
    dated pass, such as the web apps page's, only as words and a link to its page)."""
    pasted = FIGURE.findall(_prose((DOCS / page).read_text(encoding="utf-8")))
    assert pasted == [], f"docs/{page}: say it in words, or add it to benchmarks/report.py"
