"""Entry point of the `backorderctl` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Importing the command modules registers their commands (the order is the order in --help).
from services.ctl import commands as _commands  # noqa: F401
from services.ctl import lines as _lines  # noqa: F401
from services.ctl import orders as _orders  # noqa: F401
from services.ctl import plan as _plan  # noqa: F401
from services.ctl import stock as _stock  # noqa: F401
from services.ctl.app import main as run


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
