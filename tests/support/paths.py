"""Where the repository's parts are, for the tests that read them or start Python on them."""

from __future__ import annotations

from pathlib import Path

#: This folder, tests/support.
SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]
SRC = ROOT / "src"
DOCS = ROOT / "docs"
BENCHMARKS = ROOT / "benchmarks"
README = ROOT / "README.md"
