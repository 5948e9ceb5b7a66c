"""``python -m anytasks``: the command line of :mod:`anytasks._cli` (``run``, ``demo``)."""

import sys

from ._service.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m anytasks"))
