"""Import cost: the wall time and peak RSS of ``python -c "import MODULE"``.

One module per process. The worker alternates ``python -c "import MODULE"`` with
``python -c pass`` (interpreter start-up alone) ``--repeat`` times, timing each child
from spawn to exit, and as often runs instrumented children that time the import
statement itself, read their own peak RSS, and list which optional libraries the
import loaded (an ``import anytasks`` must load none of them).

Usage: python benchmarks/import_cost.py --module anytasks [--repeat N]
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from _common import emit

# Libraries that ``import anytasks`` must not load: anytasks supports them only lazily
# (cronsim when a cron schedule is made, coredis and psycopg by the lease stores; asyncio
# only when a loop runs on it, so that Trio programs do not pay for it).
OPTIONAL = (
    "trio",
    "uvloop",
    "asyncio",
    "cronsim",
    "coredis",
    "psycopg",
    "discord",
    "aiohttp",
    "httpx",
    "trio_util",
)

# Peak RSS is read inside the child (VmHWM of its own image): the ru_maxrss that wait4
# reports would include the parent's memory from before the exec.
_INSTRUMENTED = """\
import sys, time
t0 = time.perf_counter()
{statement}
t1 = time.perf_counter()
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
loaded = [m for m in {optional!r} if m in sys.modules]
print(repr((t1 - t0, hwm / 1024, loaded)))
"""


# The environment of every child: see the module docstring (set up by ``measure``).
_ENV: dict[str, str] = dict(os.environ)


def _spawn_timed(code: str) -> float:
    """Run ``python -c code`` with its output discarded; return its wall time (s)."""
    start = time.perf_counter()
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-c", code],
        _ENV,
        file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
    )
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"python -c {code!r} exited with status {status}")
    return wall


def _spawn_instrumented(statement: str) -> tuple[float, float, list[str]]:
    """Run ``statement`` in a child; return its duration (s), peak RSS (MiB), optional libs."""
    code = _INSTRUMENTED.format(statement=statement, optional=OPTIONAL)
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_ENV
    )
    seconds, peak_mib, loaded = ast.literal_eval(child.stdout)
    return seconds, peak_mib, loaded


def measure(module: str, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="import-cost-pycache-") as cache:
        _ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        _ENV["PYTHONPYCACHEPREFIX"] = cache
        return _measure(module, repeat)


def _measure(module: str, repeat: int) -> dict[str, Any]:
    walls: list[float] = []
    pass_walls: list[float] = []
    peaks: list[float] = []
    pass_peaks: list[float] = []
    imports: list[float] = []
    loaded: list[str] = []
    # Warm the file system cache, and write the bytecode that the timed imports read.
    _spawn_timed(f"import {module}")
    _spawn_timed("pass")
    for _ in range(repeat):
        walls.append(_spawn_timed(f"import {module}"))
        pass_walls.append(_spawn_timed("pass"))
        seconds, peak, loaded = _spawn_instrumented(f"import {module}")
        imports.append(seconds)
        peaks.append(peak)
        pass_peaks.append(_spawn_instrumented("pass")[1])
    wall_s = statistics.median(walls)
    pass_s = statistics.median(pass_walls)
    return {
        "wall_s": wall_s,
        "wall_pass_s": pass_s,
        "import_increment_s": wall_s - pass_s,
        "in_process_import_s": statistics.median(imports),
        "maxrss_mib": statistics.median(peaks),
        "maxrss_pass_mib": statistics.median(pass_peaks),
        "rss_increment_mib": statistics.median(peaks) - statistics.median(pass_peaks),
        "optional_loaded": loaded,
        "bytecode": "cached",
        "walls": walls,
        "counts_ok": True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    record: dict[str, Any] = {"workload": "import", "impl": args.module, "backend": "-"}
    record.update(measure(args.module, args.repeat))
    emit(record)


if __name__ == "__main__":
    main()
