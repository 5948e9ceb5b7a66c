"""Sphinx configuration for the Korean documentation: the English one, in Korean.

This directory is its own Sphinx project, so that its pages say ``<html lang="ko">``, the theme
speaks Korean and search splits Korean words (see ../_ext/bilingual.py). Build it into the ko/
folder of the English site, so that the links between the two languages resolve:

    sphinx-build -W --keep-going -b html docs/ko docs/_build/html/ko
"""

from __future__ import annotations

import runpy
from pathlib import Path

_english = runpy.run_path(str(Path(__file__).resolve().parent.parent / "conf.py"))
globals().update({k: v for k, v in _english.items() if not k.startswith("__")})

language = "ko"
exclude_patterns = ["_build"]
html_search_language = "ko"

bilingual_twin = {
    "language": "en",
    "label": "English",
    "missing_label": "English",
    "srcdir": "..",
    "url": "../",
}
