"""The built API reference shows signatures as written, links out, and marks output blocks.

docs/conf.py puts right what autodoc renders wrongly (ParamSpec forms, bounded type variables,
overloads on ``self``) and marks ```text output blocks; a Sphinx upgrade that changes what
autodoc produces should fail here, not quietly change the pages. Needs the docs group
(Sphinx 9, Python 3.11+); skipped without it.
"""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import DOCS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_parser") is None,
    reason="needs the docs dependency group",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html")
    subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(DOCS), str(out)],
        check=True,
        timeout=50,
    )
    return out


def signatures(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    found = re.findall(r'<dt class="sig sig-object py"[^>]*>(.*?)</dt>', text, re.S)
    return [
        html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", sig))).strip(" ¶")
        for sig in found
    ]


def test_signatures_read_as_written(site: Path) -> None:
    shown = signatures(site / "api.html")
    assert "async run(*args: _P.args, **kwargs: _P.kwargs) → None" in shown
    assert "start(*args: _P.args, **kwargs: _P.kwargs) → Task[None] | None" in shown
    assert any(
        s.startswith("anytasks.loop(")
        and s.endswith(
            "on_error: Literal['raise', 'continue'] = 'raise', "
            "exclusive: Lease | None = None) → LoopDecorator"
        )
        for s in shown
    )
    hook = "Coroutine[Any, Any, Any]"
    assert (
        f"before_loop[_BeforeT: Callable[[], {hook}] | Callable[[Any], {hook}]]"
        "(coro: _BeforeT) → _BeforeT"
    ) in shown
    assert (
        f"after_loop[_AfterT: Callable[[], {hook}] | Callable[[Any], {hook}] | "
        f"Callable[[Any, LoopEnd], {hook}]](coro: _AfterT) → _AfterT"
    ) in shown
    assert (
        f"error[_ErrorT: Callable[[Any], {hook}] | Callable[[Any, Any], {hook}]]"
        "(coro: _ErrorT) → _ErrorT"
    ) in shown
    assert (
        "anytasks.add_listener[_ListenerT: Callable[[LoopEvent], object]]"
        "(listener: _ListenerT) → _ListenerT"
    ) in shown
    assert [s for s in shown if s.startswith("delay(")] == ["delay() → float"]
    assert not [s for s in shown if "~" in s or "[[...]" in s or "[[_P]" in s]


def test_external_names_link_to_their_documentation(site: Path) -> None:
    text = (site / "api.html").read_text(encoding="utf-8")
    for target in (
        "https://docs.python.org/3/library/asyncio-task.html#asyncio.Task",
        "https://anyio.readthedocs.io/en/stable/api.html#anyio.abc.TaskGroup",
        "https://trio.readthedocs.io/en/stable/reference-testing.html#trio.testing.MockClock",
    ):
        assert f'href="{target}"' in text


def test_output_blocks_are_marked(site: Path) -> None:
    page = (DOCS / "quickstart.md").read_text(encoding="utf-8")
    built = (site / "quickstart.html").read_text(encoding="utf-8")
    assert built.count('<div class="output highlight-text') == page.count("```text output")
    assert "code-output.css" in built
