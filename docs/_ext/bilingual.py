"""The English and Korean documentation: two Sphinx projects that make one site.

``docs/`` is the English project and ``docs/ko/`` the Korean one; ``docs/ko/conf.py`` reuses this
directory's configuration with ``language = "ko"``. They are built separately, the Korean one into
the ``ko/`` folder of the English output::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
    python -m sphinx -W --keep-going -b html docs/ko docs/_build/html/ko

One Sphinx build has one language: it sets ``<html lang>`` for every page, translates the theme's
labels once, and writes one search index with one word splitter. Two builds give the Korean
pages ``lang="ko"``, Korean labels ("검색", "다음"), their own API reference to link to, and
their own search index, split by :class:`SearchKorean`.

This extension adds what joins the two:

- ``bilingual_twin`` in the page context: the link to the same page in the other language, shown
  at the top of every page by ``_templates/page.html`` and announced in the ``<head>`` as
  ``<link rel="alternate" hreflang=...>``;
- the ``{en}`` role, for a link from a Korean page to a page that exists only in English: it is
  marked "(영어)", and the build warns when the target is missing or has a Korean twin by now;
- the Korean search language.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst.states import Inliner
from sphinx.application import Sphinx
from sphinx.search import _MINIFIED_JS_PATH
from sphinx.search.en import SearchEnglish
from sphinx.util import logging
from sphinx.util.nodes import split_explicit_title

logger = logging.getLogger(__name__)

# Warnings of this extension can be told apart (and, in suppress_warnings, silenced).
WARNING_TYPE = {"type": "bilingual", "subtype": "en"}
# Pages that every HTML build writes without a source file.
GENERATED_PAGES = {"genindex", "search", "py-modindex"}


# -- the switcher ---------------------------------------------------------------------------------


def twin_source(app: Sphinx, docname: str) -> Path:
    """The source file of the page's twin in the other language (which may not exist)."""
    twin = app.config.bilingual_twin
    return Path(app.srcdir, twin["srcdir"], docname + ".md").resolve()


def add_twin_link(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    twin = app.config.bilingual_twin
    if not twin:
        return
    to_root = "../" * pagename.count("/")
    exists = pagename in GENERATED_PAGES or twin_source(app, pagename).is_file()
    target = pagename if exists else app.config.root_doc
    context["bilingual_twin"] = {
        "url": f"{to_root}{twin['url']}{target}.html",
        "language": twin["language"],
        "label": twin["label"] if exists else twin["missing_label"],
        "exists": exists,
    }


# -- links from Korean pages to English-only pages ------------------------------------------------


def english_page_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Inliner,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    """``{en}`Title <page#anchor>``: a link to a page of the English site, marked "(영어)"."""
    env = inliner.document.settings.env
    app = env.app
    _, title, target = split_explicit_title(text)
    page, _, anchor = target.partition("#")
    location = (env.docname, lineno)
    if not twin_source(app, page).is_file():
        logger.warning(
            "{en}: the English site has no page %r", page, location=location, **WARNING_TYPE
        )
    elif Path(app.srcdir, page + ".md").is_file():
        logger.warning(
            "{en}: %r has a Korean page now: link to it with {doc}`%s`",
            page,
            page,
            location=location,
            **WARNING_TYPE,
        )
    to_root = "../" * env.docname.count("/")
    uri = f"{to_root}{app.config.bilingual_twin['url']}{page}.html"
    if anchor:
        uri += "#" + anchor
    label = app.config.bilingual_english_only_label
    node = nodes.reference(rawtext, f"{title} {label}", refuri=uri, classes=["english-only"])
    return [node], []


# -- Korean search --------------------------------------------------------------------------------

HANGUL = "\uac00-\ud7a3"
# A run of Hangul syllables, or a run of other word characters: "anytasks의" is two tokens.
TOKEN = re.compile(rf"[{HANGUL}]+|[^\W{HANGUL}]+")
# Particles (조사) that follow a noun, longest first. Korean attaches them to the word, so the
# text has "루프가", "루프를" and "루프의" where a reader searches for "루프".
PARTICLE = re.compile(
    rf"(?<=[{HANGUL}]{{2}})"  # what is left is still a word of two syllables or more
    "(?:에서는|에서도|에게서|으로는|으로도|에서|에게|에는|에도|으로|까지|부터|처럼|보다|마다|이나"
    "|와는|과는|은|는|이|가|을|를|의|에|로|와|과|도|만)$"
)


def is_hangul(word: str) -> bool:
    return bool(word) and "\uac00" <= word[0] <= "\ud7a3"


# The same rules for the query, in the browser: Sphinx puts the stemmer and the splitter into
# language_data.js as they are, where searchtools.js calls `new Stemmer()` and `splitQuery()`.
JS_STEMMER = f"""
window.Stemmer = function () {{
  const english = new EnglishStemmer();
  const hangul = /[{HANGUL}]/;
  const particle = /{PARTICLE.pattern}/;
  this.stemWord = function (word) {{
    return hangul.test(word) ? word.replace(particle, "") : english.stemWord(word);
  }};
}};
"""
JS_SPLITTER = f"""
function splitQuery(query) {{
  return query
    .split(/[^\\p{{Letter}}\\p{{Number}}_\\p{{Emoji_Presentation}}]+/gu)
    .flatMap(function (term) {{ return term.match(/[{HANGUL}]+|[^{HANGUL}]+/g) || []; }})
    .filter(function (term) {{ return term; }});
}}
"""


class SearchKorean(SearchEnglish):
    """Korean words found by their stem, English words as in the English search.

    The index holds every Hangul word, its prefixes of two syllables or more, and the word without
    its particle, so "루프" finds "루프의" and "로그" finds "로그를". The query is split and
    stripped of particles the same way in the browser.

    Sphinx ships no Korean search language (``language = "ko"`` alone falls back to the English
    one, whose words are whole space-separated chunks such as "루프의"). A morphological analyser
    from PyPI (kiwipiepy with its model package, python-mecab-ko, KoNLPy on Java) would be a
    native dependency of the docs build, and would split only the pages: the query typed in the
    browser must be split by the same rules in JavaScript, which these few rules allow.
    """

    lang = "ko"
    language_name = "Korean"
    js_stemmer_rawcode = ""
    js_splitter_code = JS_SPLITTER

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        english = (_MINIFIED_JS_PATH / name for name in ("base-stemmer.js", "english-stemmer.js"))
        self.js_stemmer_code = "\n".join([*(p.read_text("utf-8") for p in english), JS_STEMMER])

    def split(self, input: str) -> list[str]:
        words = []
        for token in TOKEN.findall(input):
            words.append(token)
            if is_hangul(token):
                words.extend(token[:end] for end in range(2, len(token)))
        return words

    def stem(self, word: str) -> str:
        if is_hangul(word):
            return PARTICLE.sub("", word)
        return super().stem(word)


def setup(app: Sphinx) -> dict[str, Any]:
    # {"language", "label", "missing_label", "srcdir", "url"} of the other language's site:
    # srcdir relative to this source directory, url relative to this site's root.
    app.add_config_value("bilingual_twin", {}, "html", dict)
    app.add_config_value("bilingual_english_only_label", "(영어)", "env", str)
    app.connect("html-page-context", add_twin_link)
    app.add_role("en", english_page_role)
    app.add_search_language(SearchKorean)
    app.add_css_file("bilingual.css")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
