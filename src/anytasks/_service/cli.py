"""The command line: ``anytasks run MODULE:OBJECT`` and ``anytasks demo``.

``python -m anytasks`` and the ``anytasks`` console script both call :func:`main`. Errors
in the command line, including a ``MODULE:OBJECT`` that names nothing to run, end with
argparse's usage message and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from .. import __version__
from .._engine.events import Listener

BACKENDS = ("asyncio", "asyncio+uvloop", "trio")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

logger = logging.getLogger("anytasks.run")

RUN_DESCRIPTION = """\
Run the loops that MODULE:OBJECT names until they end or a SIGTERM or SIGINT arrives.
OBJECT (an attribute path such as loops or App.loops) is a Loop, an iterable of loops,
or an async function, called with no arguments, that returns either.

Signals are handled from the start. The first SIGTERM or SIGINT stops every loop
(iterations in progress finish), or cancels that async function if it is still running;
loops still running after --grace seconds, or at a second signal, are cancelled. A third
signal, or loops still running --grace seconds (at least 1) after they were cancelled,
exit at once with status 128 + the signal's number (143 for SIGTERM, 130 for SIGINT).

Exit status: 0 when every loop ended without failing (or a signal came before any loop
ran), 1 when a loop failed or a hook of one raised, 2 for a usage error, 130 or 143 for an
exit at once."""


class _UsageError(Exception):
    """A command-line error found after parsing: shown with the usage, exit status 2."""


def main(argv: Sequence[str] | None = None, prog: str = "anytasks") -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    subparser: argparse.ArgumentParser = args.subparser
    try:
        if args.command == "demo":
            return _demo(args)
        return _run(args)
    except _UsageError as exc:
        subparser.error(str(exc))


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Background loops on AnyIO: run them as a service, or the demo."
    )
    parser.add_argument("--version", action="version", version=f"anytasks {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run loops as a service until SIGTERM or SIGINT",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("target", metavar="MODULE:OBJECT", help="the loops to run, such as app:loops")
    _add_backend(run, "the event loop to run the loops on")
    run.add_argument(
        "--grace",
        type=_grace,
        default=30.0,
        metavar="SECONDS",
        help="after a signal, how long stopped loops get to end before they are cancelled, "
        "and cancelled ones (at least 1 s) before the exit (default: 30)",
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="INFO",
        metavar="LEVEL",
        help="log records from this level on go to standard error: "
        f"{', '.join(LOG_LEVELS)} (default: INFO)",
    )
    run.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics on this port: the application's own PrometheusMetrics "
        "if it registered one in the default registry (needs anytasks[prometheus])",
    )
    run.add_argument(
        "--health-file",
        metavar="PATH",
        help="touch this file after every successful iteration, for a liveness probe",
    )
    run.set_defaults(subparser=run)

    demo = commands.add_parser(
        "demo",
        help="run the recipes of the discord.ext.tasks page side by side for a few seconds",
        description="Run the recipes of the discord.ext.tasks page side by side for about five "
        "seconds, with their intervals scaled down from seconds to tenths of seconds.",
    )
    _add_backend(demo, "the event loop to run the demo on")
    demo.set_defaults(subparser=demo)
    return parser


def _add_backend(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help=f"{what} (default: asyncio)"
    )


def _grace(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if math.isnan(seconds) or seconds < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, got {text!r}")
    return seconds


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {port}")
    return port


def _backend(name: str) -> tuple[str, dict[str, Any]]:
    """The ``anyio.run()`` backend and options for ``--backend name``."""
    try:
        if name == "asyncio+uvloop":
            import uvloop

            return "asyncio", {"loop_factory": uvloop.new_event_loop}
        if name == "trio":
            import trio  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except ImportError as exc:
        raise _UsageError(
            f"--backend {name} needs {exc.name}: pip install 'anytasks[{exc.name}]'"
        ) from None
    return name, {}


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args.backend, *_backend(args.backend))


def _run(args: argparse.Namespace) -> int:
    from .health import HealthFile
    from .service import Setup, serve
    from .target import TargetError, load_target

    backend, options = _backend(args.backend)
    # As `python -m` does, so that the console script finds the modules of the current
    # directory too.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        get_loops = load_target(args.target)
    except TargetError as exc:
        raise _UsageError(str(exc)) from None
    listeners: list[Listener] = []
    if args.health_file is not None:
        directory = Path(args.health_file).parent
        if not directory.is_dir():
            raise _UsageError(
                f"--health-file {args.health_file}: the directory {directory} does not exist"
            )
        listeners.append(HealthFile(Path(args.health_file)))
    _configure_logging(args.log_level)
    if args.metrics_port is not None:
        _start_metrics_server(args.metrics_port)

    async def prepare() -> Setup:
        try:
            loops = await get_loops()
        except TargetError as exc:
            raise _UsageError(str(exc)) from None
        # Once the loops are made: a factory may register the application's own metrics.
        if args.metrics_port is not None:
            listeners.extend(_metrics_listeners(args.metrics_port))
        return Setup(loops, listeners)

    return anyio.run(
        functools.partial(serve, prepare, grace=args.grace),
        backend=backend,
        backend_options=options,
    )


def _start_metrics_server(port: int) -> None:
    """Serve the default Prometheus registry on ``port``, from a thread."""
    try:
        import prometheus_client
    except ImportError:
        raise _UsageError(
            "--metrics-port needs prometheus_client: pip install 'anytasks[prometheus]'"
        ) from None
    try:
        prometheus_client.start_http_server(port)
    except OSError as exc:
        raise _UsageError(f"--metrics-port {port}: {exc.strerror or exc}") from None


def _metrics_listeners(port: int) -> list[Listener]:
    """The listener that counts for ``--metrics-port``: none if the application registered
    a ``PrometheusMetrics`` in the default registry itself, which is served instead."""
    import prometheus_client

    from ..metrics.prometheus import PrometheusMetrics, registered_in

    if registered_in(prometheus_client.REGISTRY):
        logger.info("--metrics-port %d serves the application's own PrometheusMetrics", port)
        return []
    try:
        return [PrometheusMetrics()]
    except ValueError as exc:
        taken = [
            family.name
            for family in prometheus_client.REGISTRY.collect()
            if family.name.startswith("anytasks_")
        ]
        raise _UsageError(
            f"--metrics-port {port}: prometheus_client.REGISTRY already has metrics named "
            f"{', '.join(sorted(taken)) or exc}, not anytasks' PrometheusMetrics, which "
            "needs those names: rename yours"
        ) from None


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("anytasks").setLevel(level)
