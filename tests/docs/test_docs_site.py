"""The English and Korean documentation stay twins, and the Korean site works as a Korean site.

``docs/`` and ``docs/ko/`` are two Sphinx projects (see ``docs/_ext/bilingual.py``). The tests
here build nothing: they check the pages' structure and the Korean search rules. The tests of the
built site (``<html lang>``, the language switcher's links, what search finds) run only when
``ANYTASKS_DOCS_SITE`` names a site built by the two commands in ``docs/conf.py``, as ``.ci/run``
does after its docs build.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from support.paths import DOCS

KO = DOCS / "ko"


def pages(directory: Path) -> set[str]:
    return {path.name for path in directory.glob("*.md")}


def test_every_page_has_a_twin() -> None:
    assert pages(KO) - pages(DOCS) == set(), "Korean pages without an English page"
    assert pages(DOCS) - pages(KO) == set(), "English pages without a Korean twin"


def headings(path: Path) -> list[int]:
    """The levels of the page's headings, outside code blocks."""
    levels, fence = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"(`{3,}|~{3,})", line):
            if fence is None:
                fence = match[1]
            elif line.strip() == fence:
                fence = None
        elif fence is None and (match := re.match(r"(#{1,6}) ", line)):
            levels.append(len(match[1]))
    return levels


@pytest.mark.parametrize("name", sorted(pages(DOCS) & pages(KO)))
def test_twins_have_the_same_sections(name: str) -> None:
    assert headings(KO / name) == headings(DOCS / name)


def toctree_entries(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^```\{toctree\}\n(.*?)^```", text, flags=re.M | re.S)
    return {
        line.strip()
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.startswith(":")
    }


def test_both_sites_list_the_same_pages() -> None:
    english = toctree_entries(DOCS / "index.md")
    assert not any(entry.startswith("ko/") for entry in english)
    assert toctree_entries(KO / "index.md") == english


def test_the_korean_site_is_the_english_one_in_korean() -> None:
    english = runpy.run_path(str(DOCS / "conf.py"))
    korean = runpy.run_path(str(KO / "conf.py"))
    assert (english["language"], korean["language"]) == ("en", "ko")
    assert korean["html_search_language"] == "ko"
    assert "ko" in english["exclude_patterns"]
    for name in ("extensions", "source_suffix", "nitpicky", "html_theme", "templates_path"):
        assert korean[name] == english[name], name
    assert "bilingual" in english["extensions"]


# -- the Korean search rules ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def korean() -> Any:
    pytest.importorskip("sphinx", reason="the docs dependencies are not installed")
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import bilingual
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return bilingual.SearchKorean({})


def index_words(language: Any, text: str) -> set[str]:
    return {language.stem(word) for word in language.split(text)}


def test_korean_words_are_found_without_their_particles(korean: Any) -> None:
    words = index_words(
        korean, "루프의 생명 주기: 로그를 남기고, 스케줄러에서는 anytasks의 루프가"
    )
    assert {"루프", "생명", "주기", "로그", "스케줄러", "anytask"} <= words
    # The query is stemmed the same way.
    assert korean.stem("로그를") == korean.stem("로그") == "로그"


def test_short_words_keep_their_last_syllable(korean: Any) -> None:
    # "이" and "과" are particles, but not in 차이 (difference) or 결과 (result).
    assert korean.stem("차이") == "차이"
    assert korean.stem("결과") == "결과"


def test_english_words_are_stemmed_as_in_the_english_search(korean: Any) -> None:
    assert index_words(korean, "migrate migration change_interval") == {
        "migrat",
        "change_interv",
    }


# -- the built site -------------------------------------------------------------------------------

SITE = Path(os.environ["ANYTASKS_DOCS_SITE"]) if os.environ.get("ANYTASKS_DOCS_SITE") else None
built = pytest.mark.skipif(SITE is None, reason="set ANYTASKS_DOCS_SITE to a built docs site")


def html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.parts)


@built
def test_korean_pages_say_they_are_korean() -> None:
    assert SITE is not None
    for page in html_pages(SITE):
        language = "ko" if page.relative_to(SITE).parts[0] == "ko" else "en"
        assert f'<html class="no-js" lang="{language}"' in page.read_text("utf-8"), page


@built
def test_every_page_links_to_its_twin() -> None:
    assert SITE is not None
    for page in html_pages(SITE):
        html = page.read_text("utf-8")
        switcher = re.search(r'<nav class="language-switcher".*?<a href="([^"]+)"', html, re.S)
        assert switcher, f"{page}: no language switcher"
        twin = (page.parent / switcher[1]).resolve()
        assert twin.is_file(), f"{page}: {switcher[1]} does not exist"
        relative = page.relative_to(SITE).as_posix()
        assert twin.relative_to(SITE.resolve()).as_posix() == (
            relative.removeprefix("ko/") if relative.startswith("ko/") else f"ko/{relative}"
        )


def search(site: Path, query: str) -> set[str]:
    """The pages that Sphinx's search finds for every word of the query (exact or partial)."""
    text = (site / "searchindex.js").read_text("utf-8")
    index = json.loads(text.removeprefix("Search.setIndex(").removesuffix(")"))
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import bilingual
        from sphinx.search.en import SearchEnglish
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    language = bilingual.SearchKorean({}) if site.name == "ko" else SearchEnglish({})
    found: set[str] | None = None
    for word in {language.stem(w).lower() for w in bilingual.TOKEN.findall(query)}:
        docs: set[int] = set()
        for terms in (index["terms"], index["titleterms"]):
            for term, where in terms.items():
                if term == word or (len(word) > 2 and word in term):
                    docs.update(where if isinstance(where, list) else [where])
        names = {index["docnames"][doc] for doc in docs}
        found = names if found is None else found & names
    return found or set()


@built
@pytest.mark.parametrize(
    ("site", "query", "page"),
    [
        ("ko", "루프", "lifecycle"),
        ("ko", "루프를", "lifecycle"),
        ("ko", "생명 주기", "lifecycle"),
        ("ko", "로그", "api"),
        ("ko", "마이그레이션", "differences"),
        ("ko", "migrate", "differences"),
        ("ko", "서머타임", "scheduling"),
        ("ko", "배포하기", "deploying"),
        ("ko", "유예 시간", "deploying"),
        (".", "migrate", "differences"),
        (".", "migration", "differences"),
        (".", "terminationGracePeriodSeconds", "deploying"),
        (".", "마이그레이션", "differences"),
    ],
)
def test_search_finds(site: str, query: str, page: str) -> None:
    assert SITE is not None
    assert page in search(SITE / site, query)
