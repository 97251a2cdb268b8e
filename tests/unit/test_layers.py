"""The layers of each service point one way: entrypoints -> handlers -> adapters -> domain.
Entrypoints see only handlers and the domain; the domain sees nothing of the others (no
I/O, no database, no protobuf)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("service", ["allocation", "inventory"])
def test_entrypoints_import_handlers_and_domain_only(service: str) -> None:
    entrypoints = sorted((SERVICES / service / "entrypoints").glob("*.py"))
    assert entrypoints
    for path in entrypoints:
        ours = {m for m in _imports(path) if m.startswith(f"services.{service}.")}
        wrong = sorted(m for m in ours if ".adapters" in m)
        assert wrong == [], f"{path.name} imports {wrong}"


@pytest.mark.parametrize("service", ["allocation", "inventory"])
def test_domain_depends_on_nothing_else(service: str) -> None:
    for path in sorted((SERVICES / service / "domain").glob("*.py")):
        imports = _imports(path)
        wrong = sorted(
            m
            for m in imports
            if m.startswith(("asyncpg", "grpc", "backorder", "aio_pika", "google"))
            or (m.startswith("services.") and not m.startswith(f"services.{service}.domain"))
        )
        assert wrong == [], f"{path.name} imports {wrong}"
