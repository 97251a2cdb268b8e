"""Entry point of the `backorderctl` console script."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.ctl import commands as _commands  # noqa: F401  (registers the commands)
from services.ctl.app import main as run


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
