"""Sphinx configuration for the anytasks documentation.

Build offline, with warnings as errors:

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

# Document the source tree, even when an older anytasks is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import anytasks

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
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

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

html_theme = "furo"
html_title = f"anytasks {release}"
pygments_style = "sphinx"
pygments_dark_style = "monokai"

# Copy the commands of ```console blocks without their "$ " prompts.
copybutton_prompt_text = "$ "
