"""Sphinx configuration for the anytasks documentation, in English.

The Korean pages in ko/ are a second Sphinx project (ko/conf.py reuses this file), built into the
ko/ folder of this one's output. Build both offline, with warnings as errors:

    sphinx-build -W --keep-going -b html docs docs/_build/html
    sphinx-build -W --keep-going -b html docs/ko docs/_build/html/ko
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
import sys
import typing
from pathlib import Path

if typing.TYPE_CHECKING:
    # Sphinx itself is imported by the handlers: tests/docs/test_docs.py reads this file in
    # an environment without it.
    from docutils import nodes
    from sphinx.application import Sphinx

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
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "bilingual",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated/ holds the benchmark tables that pages include (benchmarks/report.py writes them).
exclude_patterns = ["_build", "_generated", "ko"]

# Every cross-reference must resolve, so that a renamed method breaks the build
# instead of leaving a dead link: anytasks names here, the standard library, AnyIO
# and Trio through intersphinx (below). Only private names stay plain text: the type
# variables in signatures (_P, _R, _HookT, _P.args, anytasks._loop._R, ...), and the
# keyword TypedDicts of @loop(), which live in a private module.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:(class|obj)", r"(anytasks\.(\w+\.)*)?_\w+(\.args|\.kwargs)?"),
    # The keyword TypedDicts of @loop() live in a private module; the signature shows them.
    (r"py:(class|obj)", r"anytasks\._\w+(\.\w+)+"),
    # typing.Unpack under its 3.10 name (src/ is checked as Python 3.10).
    (r"py:(class|obj)", r"typing_extensions\.Unpack"),
    # The types of anytasks.metrics' parameters: neither library publishes an inventory.
    (r"py:(class|obj)", r"(prometheus_client|opentelemetry)\.[\w.]+"),
]

# Links to the Python, AnyIO and Trio documentation, from inventories shipped in
# _intersphinx/ (see the README.txt there), so that the build stays offline.
_INVENTORIES = Path(__file__).resolve().parent / "_intersphinx"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(_INVENTORIES / "python.inv")),
    "anyio": ("https://anyio.readthedocs.io/en/stable/", str(_INVENTORIES / "anyio.inv")),
    "trio": ("https://trio.readthedocs.io/en/stable/", str(_INVENTORIES / "trio.inv")),
}

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
# Output blocks (below) get no copy button: there is nothing to paste them into.
copybutton_selector = "div:not(.output) > div.highlight > pre"

# Output blocks look different from code: see _static/code-output.css.
html_static_path = [str(Path(__file__).resolve().parent / "_static")]
html_css_files = ["code-output.css"]


# -- Signatures as written ---------------------------------------------------------
# autodoc evaluates annotations and prints them back. Three things come back wrong or
# unlinked, and are put right here:
# - names that the library imports only for type checkers (``asyncio`` for
#   ``asyncio.Task``, Trio's ``MockClock``): evaluation fails and the whole signature
#   falls back to unlinked source text, so they are bound for the build;
# - ParamSpec forms: ``*args: _P.args`` comes back as ``*args: ~typing.~_P`` and
#   ``Callable[_P, R]`` as ``Callable[[_P], R]``, and ``Callable[..., R]`` as
#   ``Callable[[...], R]``: none of them valid typing;
# - a type variable with a bound, as the hook decorators take, shows only its name:
#   it is declared in front, PEP 695 style (``before_loop[_HookT: Callable[...]](...)``).


def _bind_type_checking_imports() -> None:
    for info in pkgutil.walk_packages(anytasks.__path__, "anytasks."):
        module = importlib.import_module(info.name)
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
                # Run in a copy of the module's namespace: its own name and package, for
                # relative imports such as ``from ._loop import Loop``, and the names the
                # block uses (``AnyLoop = Loop[Any, Any]``).
                namespace: dict[str, object] = dict(vars(module))
                exec(compile(ast.Module(node.body, []), info.name, "exec"), namespace)
                for name, value in namespace.items():
                    if name != "__builtins__":
                        module.__dict__.setdefault(name, value)


def _type_parameters(obj: object, owner_parameters: tuple[object, ...]) -> str:
    from sphinx.util.typing import stringify_annotation

    try:
        hints = typing.get_type_hints(obj)
    except Exception:
        return ""
    found: dict[str, object] = {}

    def visit(hint: object) -> None:
        bound = getattr(hint, "__bound__", None)
        if isinstance(hint, typing.TypeVar) and hint not in owner_parameters and bound:
            found.setdefault(hint.__name__, bound)
        for arg in typing.get_args(hint):
            visit(arg)

    for hint in hints.values():
        visit(hint)
    return ", ".join(
        f"{name}: {stringify_annotation(bound, 'smart')}" for name, bound in found.items()
    )


@functools.cache
def _param_spec_names() -> frozenset[str]:
    return frozenset(
        name
        for info in pkgutil.walk_packages(anytasks.__path__, "anytasks.")
        for name, value in vars(importlib.import_module(info.name)).items()
        if isinstance(value, typing.ParamSpec)
    )


def _as_written(text: str) -> str:
    text = re.sub(
        r"(\*\*?)(\w+): ~typing\.~(\w+)",
        lambda m: f"{m[1]}{m[2]}: {m[3]}.{'kwargs' if m[1] == '**' else 'args'}",
        text,
    )
    text = re.sub(
        r"Callable\[\[~?(\w+)\], ",
        lambda m: f"Callable[{m[1]}, " if m[1] in _param_spec_names() else m[0],
        text,
    )
    text = text.replace("Callable[[...], ", "Callable[..., ")
    # asyncio.Task is implemented in (and so reports the module) _asyncio.
    return text.replace("~_asyncio.", "~asyncio.")


def _evaluated_own_signature(obj: object) -> str | None:
    # A signature set by hand (anytasks.loop's __signature__, which help() shows: the function
    # itself takes **options) keeps the annotations as its source wrote them, as strings, and
    # autodoc evaluates only the function's own: evaluate them here, in the function's module.
    own = getattr(obj, "__dict__", {}).get("__signature__")
    if own is None:
        return None
    from sphinx.util.inspect import evaluate_signature, stringify_signature

    evaluated = evaluate_signature(own, getattr(obj, "__globals__", None))
    return stringify_signature(evaluated, show_return_annotation=False, unqualified_typehints=True)


def _fix_signature(
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    signature: str | None,
    return_annotation: str,
) -> tuple[str, str] | None:
    if signature is None:
        return None
    signature = _as_written(_evaluated_own_signature(obj) or signature)
    return_annotation = _as_written(return_annotation)
    if what in {"function", "method"}:
        # A method's class declares its own type parameters (Loop[_P, _R]).
        owner_name, _, _ = getattr(obj, "__qualname__", "").rpartition(".")
        owner = getattr(obj, "__globals__", {}).get(owner_name)
        declared = _type_parameters(obj, getattr(owner, "__parameters__", ()))
        if declared:
            signature = f"[{_as_written(declared)}]{signature}"
    return signature, return_annotation


# Overloads that differ only in the type of ``self`` (ExponentialBackoff.delay():
# float, int, or int | float, by how the backoff was made) would show as the same
# call with three return types, since autodoc hides ``self``. Keep the first, and
# let the docstring explain the rest once.
def _one_signature_per_parameter_list(app: Sphinx, doctree: nodes.document) -> None:
    from sphinx import addnodes

    for desc in doctree.findall(addnodes.desc):
        seen: set[str] = set()
        # Only the desc's own signatures: a class's desc also holds its members' descs.
        own = [child for child in desc.children if isinstance(child, addnodes.desc_signature)]
        for signature in own:
            parameters = [n.astext() for n in signature.findall(addnodes.desc_parameterlist)]
            key = "|".join(parameters)
            if parameters and key in seen:
                signature.parent.remove(signature)
            seen.add(key)


# An attribute's docstring is read from the source of its class's module, which
# autodoc finds through __module__; the exported classes say "anytasks" there (so
# that reprs and tracebacks do), not the private module that defines them.
def _attribute_docstring(
    app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    from sphinx.pycode import ModuleAnalyzer

    if what != "attribute" or lines:
        return
    class_path, _, attribute = name.rpartition(".")
    module_name, _, class_name = class_path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    defining_module = getattr(getattr(cls, "__init__", None), "__module__", None)
    if defining_module is None or defining_module == module_name:
        return
    docs = ModuleAnalyzer.for_module(defining_module).find_attr_docs()
    lines.extend(docs.get((class_name, attribute), []))


# -- Output blocks ---------------------------------------------------------------------
# A ```text output block (the convention of tests/docs/test_docs.py) shows what the example
# above it prints. MyST drops the words after the language, so the block gets its
# "output" class here, from its fence line; _static/code-output.css styles it.

_OUTPUT_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*text\s+output\s*$")


@functools.cache
def _source_lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def _mark_output_blocks(app: Sphinx, doctree: nodes.document) -> None:
    from docutils import nodes

    for node in doctree.findall(nodes.literal_block):
        source, line = node.source, node.line
        if node.get("language") != "text" or not source or not Path(source).is_file() or not line:
            continue
        fences = _source_lines(source)[max(line - 1, 0) : line + 1]
        if any(_OUTPUT_FENCE.match(fence) for fence in fences):
            node["classes"].append("output")


def setup(app: Sphinx) -> None:
    _bind_type_checking_imports()
    app.connect("autodoc-process-signature", _fix_signature)
    app.connect("autodoc-process-docstring", _attribute_docstring)
    app.connect("doctree-read", _one_signature_per_parameter_list)
    app.connect("doctree-read", _mark_output_blocks)
