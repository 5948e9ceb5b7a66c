"""The ``python -m anytasks demo`` demo: every recipe runs, on the backend chosen, on virtual
time."""

from __future__ import annotations

from typing import Any

import pytest

import anytasks
import anytasks._service.demo as demo
from anytasks._service.cli import main
from anytasks.testing import run, virtual_time


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_runs_every_recipe(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(demo.main, backend=backend)
    lines = [line.split(maxsplit=1)[1] for line in capsys.readouterr().out.splitlines()]
    expected_in_order = [
        "printer    waiting for the bot...",
        "bot        ready",
        "printer    index 0",
        "count      done!",
        "demo       unloading the cogs",
        "bulker     cancelled with 1 rows left; flushing",
        "bulker     inserted [6]",
        "demo       every loop has ended",
    ]
    positions = [lines.index(line) for line in expected_in_order]
    assert positions == sorted(positions)
    assert [line for line in lines if line.startswith("count ")] == [
        *(f"count      current_loop {n}" for n in range(5)),
        "count      done!",
    ]
    assert "batch      batch update #0 done" in lines


def test_demo_cli_rejects_an_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--backend", "curio"])
    assert info.value.code == 2
    assert "invalid choice: 'curio'" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["asyncio", "asyncio+uvloop", "trio"])
def test_demo_cli_runs_on_the_chosen_backend(
    backend: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import anyio
    import uvloop

    real_run = anyio.run
    calls: list[tuple[str, dict[str, Any]]] = []

    def run_virtually(func: Any, *, backend: str, backend_options: dict[str, Any]) -> Any:
        calls.append((backend, backend_options))
        return real_run(func, backend=backend, backend_options=virtual_time(backend)[1])

    monkeypatch.setattr(anyio, "run", run_virtually)
    assert main(["demo", "--backend", backend]) == 0
    expected_options = {"loop_factory": uvloop.new_event_loop} if "uvloop" in backend else {}
    assert calls == [(backend.split("+")[0], expected_options)]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"anytasks {anytasks.__version__} demo on {backend}"
    assert out[-1].endswith("demo       every loop has ended")
    # The reconnect warning of the batch recipe is shown on one line.
    [warning] = [line for line in out if "Handled exception" in line]
    assert warning.endswith("(DatabaseUnavailable: connection refused)")
