"""Sphinx configuration for the anytasks documentation, in English.

The Korean pages in ko/ are a second Sphinx project (ko/conf.py reuses this file), built into the
ko/ folder of this one's output. Build both offline, with warnings as errors:

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b html docs/ko docs/_build/html/ko
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the source tree, even when an older anytasks is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
# The extension that joins the English and Korean sites.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import anytasks

DOCS = Path(__file__).resolve().parent

project = "anytasks"
author = "anytasks developers"
copyright = "anytasks developers"
release = anytasks.__version__
version = ".".join(release.split(".")[:2])
language = "en"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_copybutton",
    "bilingual",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "ko"]

# Every reference to an anytasks name must resolve, so that a renamed method
# breaks the build instead of leaving a dead link. There is no intersphinx (the
# build must work offline), so references to the standard library, AnyIO and
# Trio stay plain text, as do the type variables in signatures.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!anytasks\b).*"),
    (r"py:.*", r"anytasks\.(.+\.)?_.*"),
    (r"py:.*", r"anytasks\.testing\.(T|PosArgsT)"),
]

autodoc_member_order = "bysource"
autodoc_preserve_defaults = True
autodoc_typehints = "signature"

templates_path = [str(DOCS / "_templates")]
html_static_path = [str(DOCS / "_static")]

# The same page in the other language (see _ext/bilingual.py).
bilingual_twin = {
    "language": "ko",
    "label": "한국어",
    "missing_label": "한국어 (이 페이지는 아직 영어로만 있습니다)",
    "srcdir": "ko",
    "url": "ko/",
}

html_theme = "furo"
html_title = f"anytasks {release}"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# Copy the commands of ```console blocks without their "$ " prompts.
copybutton_prompt_text = "$ "
