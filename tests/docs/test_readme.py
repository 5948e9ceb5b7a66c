"""The README's examples run, on virtual time, and print what the README says."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any

import pytest

from anytasks.testing import VirtualEventLoop, virtual_clock
from support.paths import README


def python_blocks(text: str) -> dict[str, str]:
    """The ```python blocks of a Markdown text, keyed by the heading above each."""
    blocks: dict[str, str] = {}
    heading = ""
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```$", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("# ").strip()
        else:
            blocks[heading] = match.group(2)
    return blocks


def run_asyncio_virtually(main: Coroutine[Any, Any, Any]) -> Any:
    event_loop = VirtualEventLoop()
    try:
        return event_loop.run_until_complete(main)
    finally:
        event_loop.close()


def test_readme_trio_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import trio

    real_run = trio.run
    monkeypatch.setattr(trio, "run", lambda f, *a: real_run(f, *a, clock=virtual_clock()))
    exec(python_blocks(README.read_text())["Trio"], {})
    assert capsys.readouterr().out == "trio: beat 0\ntrio: beat 1\ntrio: beat 2\n"


def test_readme_asyncio_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(asyncio, "run", run_asyncio_virtually)
    blocks = python_blocks(README.read_text())
    exec(blocks["asyncio (a discord.py Cog works unchanged)"], {})
    assert capsys.readouterr().out == "0\n1\n2\n"
