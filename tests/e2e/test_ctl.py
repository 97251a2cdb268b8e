"""backorderctl as an operator runs it: a subprocess against the real services."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import System
from tests.support.processes import BIN, free_port
from tests.support.servers import unique


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)


def ctl(system: System, *args: str, env: dict[str, str] | None = None) -> Outcome:
    run_env = {
        **os.environ,
        "INVENTORY_GRPC_ADDR": system.inventory.grpc_addr,
        "ALLOCATION_GRPC_ADDR": system.allocation.grpc_addr,
        **(env or {}),
    }
    done = subprocess.run(
        [str(BIN / "backorderctl"), *args], env=run_env, capture_output=True, text=True, timeout=60
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def test_health_of_both_services(system: System) -> None:
    human = ctl(system, "health")
    assert human.code == 0, human.stderr
    assert human.stdout.count("SERVING") == 2
    rows = ctl(system, "--json", "health").json()
    assert rows == [
        {"service": "inventory", "address": system.inventory.grpc_addr, "status": "SERVING"},
        {"service": "allocation", "address": system.allocation.grpc_addr, "status": "SERVING"},
    ]
    down = ctl(
        system, "health", "inventory", env={"INVENTORY_GRPC_ADDR": f"127.0.0.1:{free_port()}"}
    )
    assert down.code == 5
    assert "UNAVAILABLE" in down.stdout and "allocation" not in down.stdout


def test_receive_then_get_stock(system: System) -> None:
    sku, receipt = unique("SKU"), unique("rcpt")
    first = ctl(system, "stock", "receive", sku, "10", "--receipt-id", receipt, "--json")
    assert first.code == 0, first.stderr
    reply = first.json()
    assert isinstance(reply, dict)
    assert reply["receipt_id"] == receipt and reply["stock"]["on_hand"] == "10"
    # Retrying with the same key changes nothing.
    again = ctl(system, "stock", "receive", sku, "10", "--receipt-id", receipt, "--json")
    assert again.code == 0, again.stderr
    stock = ctl(system, "stock", "get", sku, "--json").json()
    assert isinstance(stock, dict)
    assert stock["sku"] == sku and stock["on_hand"] == "10"
    table = ctl(system, "stock", "get", sku)
    assert table.code == 0
    assert [line.split() for line in table.stdout.splitlines()[:3]] == [
        ["FIELD", "VALUE"],
        ["sku", sku],
        ["on_hand", "10"],
    ]
    # A generated receipt id is printed, so the operator can retry with it.
    generated = ctl(system, "stock", "receive", sku, "1")
    assert generated.code == 0 and "receipt_id" in generated.stdout and "ctl-" in generated.stdout


def test_allocate_and_get_a_line(system: System) -> None:
    order, sku = unique("o"), unique("SKU")
    placed = ctl(system, "lines", "allocate", order, "1", sku, "3", "--priority", "7", "--json")
    assert placed.code == 0, placed.stderr
    reply = placed.json()
    assert isinstance(reply, dict)
    assert reply["outcome"] == "ALLOCATION_OUTCOME_BACKORDERED"
    assert reply["line"]["backordered_quantity"] == "3" and reply["line"]["priority"] == 7
    shown = ctl(system, "lines", "get", order, "1")
    assert shown.code == 0, shown.stderr
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines()[1:])
    assert fields["status"] == "LINE_STATUS_BACKORDERED"
    assert fields["sku"] == sku and fields["queue_position"] == "1"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("lines", "get", "no-such-order", "1"), 3, "NOT_FOUND"),
        (("stock", "get", "NEVER-SEEN-SKU-x1"), 3, "NOT_FOUND"),
        (("stock", "receive", "has space", "1"), 4, "sku"),
        (("lines", "allocate", "o", "1", "S" * 65, "1"), 4, "INVALID_ARGUMENT"),
        (("stock", "receive", "SKU-1", "0"), 2, "whole number"),
        (("lines", "allocate", "o", "1", "SKU-1", "1", "--priority", "10"), 2, "priority"),
        (("stock",), 2, "required"),
        (("stock", "get", "X", "--cert-file", "/nonexistent/cert.pem"), 2, "both"),
    ],
)
def test_errors_have_distinct_exit_codes(
    system: System, args: tuple[str, ...], code: int, message: str
) -> None:
    outcome = ctl(system, *args)
    assert (outcome.code, outcome.stdout) == (code, ""), outcome.stderr
    assert message in outcome.stderr


def test_same_key_other_content_is_rejected(system: System) -> None:
    sku, receipt = unique("SKU"), unique("rcpt")
    assert ctl(system, "stock", "receive", sku, "2", "--receipt-id", receipt).code == 0
    clash = ctl(system, "stock", "receive", sku, "5", "--receipt-id", receipt)
    assert clash.code == 4 and "ALREADY_EXISTS" in clash.stderr


def test_unreachable_service_exits_5(system: System) -> None:
    dead = f"127.0.0.1:{free_port()}"
    outcome = ctl(system, "--inventory-addr", dead, "--timeout", "3", "stock", "get", "SKU-1")
    assert outcome.code == 5 and "UNAVAILABLE" in outcome.stderr
