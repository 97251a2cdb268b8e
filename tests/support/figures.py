"""What the fault suites share: a load scale read from an environment variable, and the
figures each test reports (`report(name=value, ...)`), printed in pytest's terminal summary
under the suite's heading."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

Report = Callable[..., None]


class Suite:
    """`variable` scales the suite's loads (1 = the issue's figures; `default` when unset);
    `heading` names its section of the summary and may use `{scale}`."""

    def __init__(self, variable: str, default: float, heading: str) -> None:
        self.variable = variable
        self.default = default
        self.heading = heading
        self.figures: list[tuple[str, dict[str, object]]] = []

    def scale(self) -> float:
        value = float(os.environ.get(self.variable) or self.default)
        if value <= 0:
            raise ValueError(f"{self.variable} must be > 0")
        return value

    def scaled(self, full: int, minimum: int = 1) -> int:
        """`full` (the figure at scale 1) times the scale, at least `minimum`."""
        return max(minimum, round(full * self.scale()))

    def recorder(self, request: pytest.FixtureRequest) -> Report:
        """The `report` fixture's value for one test."""

        def record(**figures: object) -> None:
            self.figures.append((request.node.name, figures))
            print(f"{request.node.name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

        return record

    def summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.figures:
            return
        terminalreporter.section(self.heading.format(scale=f"{self.scale():g}"))
        for name, figures in self.figures:
            terminalreporter.write_line(name)
            for key, value in figures.items():
                terminalreporter.write_line(f"    {key}: {value}")
