"""`pip install clients/python` into a fresh venv gives a working, typed client on its own:
no services package, no repository on the path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.client.conftest import Secured
from tests.support.servers import unique

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent(
    """
    import asyncio, importlib.util, pathlib, sys
    import backorder.client
    from backorder.client import BackorderClient
    from backorder.client.events import EVENT_TYPES
    from backorder.inventory.v1 import inventory_pb2 as inv

    assert importlib.util.find_spec("services") is None, "the services came along"
    assert "site-packages" in backorder.client.__file__, backorder.client.__file__
    assert (pathlib.Path(backorder.client.__file__).parents[1] / "py.typed").is_file()
    assert "backorder.allocation.v1.LineReserved" in EVENT_TYPES

    async def main(sku, receipt):
        async with BackorderClient.from_env() as client:
            await client.inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=7)
            )
            reply = await client.inventory.GetStock(inv.GetStockRequest(sku=sku))
        print(reply.stock.on_hand)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_pip_install_of_the_client_package_works_in_a_fresh_venv(
    secured: Secured, tmp_path: Path
) -> None:
    # A copy, so the build leaves nothing behind in the checkout (build/, *.egg-info).
    source = tmp_path / "backorder-client"
    shutil.copytree(
        ROOT / "clients" / "python",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            # The versions the services run with (the client's ranges admit them).
            "-c",
            str(ROOT / "requirements" / "runtime.txt"),
            f"{source}[events]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    sku = unique("INSTALLED")
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROGRAM, sku, unique("rcpt")],
        cwd=tmp_path,  # not the repository: only what pip installed can be imported
        env={"PATH": "/usr/bin:/bin", **secured.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["7"]
