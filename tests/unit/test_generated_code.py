"""The committed generated code (the client package, clients/python/backorder/) is what
scripts/gen-protos makes of protos/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
# Hand-written parts of the package, next to the generated code.
OURS = ("backorder/client/", "backorder/py.typed")


def generated_files(root: Path) -> dict[str, str]:
    return {
        name: path.read_text()
        for path in sorted((root / "backorder").rglob("*.py*"))
        if "__pycache__" not in path.parts
        and not (name := str(path.relative_to(root))).startswith(OURS)
    }


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "gen-protos"), str(tmp_path)],
        check=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    fresh = generated_files(tmp_path)
    assert "backorder/allocation/v1/allocation_pb2.py" in fresh, "gen-protos produced nothing"
    committed = generated_files(CLIENT)
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"generated code is stale, run scripts/gen-protos: {stale}"
