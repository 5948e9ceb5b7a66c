"""What a release needs from the repository: one version, a changelog entry, the inventories.

Building and installing the distributions is .ci/run's release check; these are the cheap
consistency checks that can run with the suite.
"""

from __future__ import annotations

import re
import sys

import pytest

import anytasks
from support.paths import ROOT


def test_the_version_has_one_source() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/anytasks/__init__.py"
    # A release, or (between releases) a development release of the coming one (PEP 440).
    assert re.fullmatch(r"\d+\.\d+\.\d+(\.dev\d+)?", anytasks.__version__)


def test_development_requirements_are_not_published() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = {"trio", "uvloop", "cron", "redis", "postgres", "prometheus", "otel"}
    assert set(project["project"]["optional-dependencies"]) == extras
    assert {"test", "docs", "bench", "dev"} <= set(project["dependency-groups"])
    assert set(project["project"]["urls"]) == {"Documentation", "Source", "Changelog", "Issues"}


def test_the_changelog_has_unreleased_on_top_and_a_dated_section_per_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    assert sections[0] == ("Unreleased", "")
    released = dict(sections[1:])
    for date in released.values():
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date)
    version, dev = re.fullmatch(r"(\d+\.\d+\.\d+)(\.dev\d+)?", anytasks.__version__).groups()
    if dev:
        # A development release: what it will be released as is still under [Unreleased],
        # and comes after every release.
        assert version not in released
        assert max(released, key=_release_key) == sections[1][0]
        assert _release_key(version) > _release_key(sections[1][0])
    else:
        assert version in released
    for name, _ in sections:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", changelog, re.M), name


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@pytest.mark.parametrize(
    ("inventory", "names"),
    [
        ("python", ["asyncio.Task", "asyncio.TaskGroup", "random.Random", "typing.Any"]),
        ("anyio", ["anyio.abc.TaskGroup", "anyio.CancelScope", "anyio.run"]),
        ("trio", ["trio.testing.MockClock", "trio.open_nursery", "trio.run"]),
    ],
)
def test_the_docs_link_offline_through_shipped_inventories(
    inventory: str, names: list[str]
) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("the docs build needs Sphinx 9, on Python 3.11+")
    inventory_module = pytest.importorskip("sphinx.util.inventory")
    path = ROOT / "docs" / "_intersphinx" / f"{inventory}.inv"
    loaded = inventory_module.InventoryFile.loads(path.read_bytes(), uri="")
    found = {name for objects in loaded.data.values() for name in objects}
    assert set(names) <= found
