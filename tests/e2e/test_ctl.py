"""backorderctl as an operator runs it: a subprocess against the real services."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import System
from tests.support.inventory_feed import InventoryFeed
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, unique


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


def test_an_operator_works_a_backorder_through_with_the_cli(system: System) -> None:
    """Every command an operator needs day to day, against the real services."""
    sku, order = unique("CTL"), unique("order")

    def ok(*args: str) -> Any:
        outcome = ctl(system, "--json", *args)
        assert outcome.code == 0, f"{args}: {outcome.stderr}"
        return outcome.json()

    ok("inbound", "expect", f"{order}-po", sku, "5", "2030-01-02T09:00:00Z")
    placed = ok("lines", "allocate", order, "a", sku, "2")
    assert placed["outcome"] == "ALLOCATION_OUTCOME_BACKORDERED"
    ok("lines", "allocate", order, "b", sku, "3", "--priority", "1")
    # "b" outranks "a" once its priority is raised.
    raised = ok("lines", "priority", order, "b", "9")
    assert (raised["priority"], raised["queue_position"]) == (9, "1")
    listed = ok("lines", "list", "--order-id", order)
    assert [row["line_id"] for row in listed] == ["a", "b"]
    waiting = ok("lines", "list", "--sku", sku, "--status", "backordered")
    assert {row["line_id"] for row in waiting} == {"a", "b"}

    inbound = ok("inbound", "list", sku, "--open-only")
    assert [(row["inbound_id"], row["open_quantity"]) for row in inbound] == [(f"{order}-po", "5")]

    ok("stock", "receive", sku, "3", "--receipt-id", f"{order}-r1")
    for _ in range(100):
        line = ok("lines", "get", order, "b")
        if line["status"] == "LINE_STATUS_RESERVED":
            break
    else:
        raise AssertionError(f"line b never reserved: {line}")
    log = ok("reservations", "list", "--order-id", order, "--line-id", "b")
    assert [(row["quantity"], row["cause"]) for row in log] == [("3", "stock.received")]

    shipped = ok("lines", "fulfil", order, "b", "3", "--fulfillment-id", f"{order}-f1")
    assert shipped["status"] == "LINE_STATUS_FULFILLED"
    # The inventory service issues the shipped units from on hand (line.fulfilled).
    for _ in range(100):
        if ok("stock", "get", sku)["on_hand"] == "0":
            break
    else:
        raise AssertionError("the shipped units were never issued from on hand")
    cancelled = ok("lines", "cancel", order, "a")
    assert cancelled["status"] == "LINE_STATUS_CANCELLED"

    summary = ok("summary", sku)
    assert summary["backordered_units"] == "0"
    policy = ok("policy", sku, "--fill-policy", "skip", "--backorder-limit", "10")
    assert policy["policy"] == {
        "fill_policy": "FILL_POLICY_SKIP",
        "backorders_accepted": True,
        "backorder_limit": "10",
    }

    adjusted = ok(
        "stock", "adjust", sku, "1", "--reason", "found", "--adjustment-id", f"{order}-a1"
    )
    assert adjusted["stock"]["on_hand"] == "1"
    movements = ok("stock", "movements", sku)
    assert [row["kind"] for row in movements] == [
        "MOVEMENT_KIND_ADJUSTMENT",
        "MOVEMENT_KIND_ISSUE",
        "MOVEMENT_KIND_RECEIPT",
    ]
    stocks = ok("stock", "list", "--sku-prefix", sku)
    assert [row["sku"] for row in stocks] == [sku]
    assert ok("inbound", "cancel", f"{order}-po")["cancelled"] is True

    # Refusals come back as the documented exit codes, not tracebacks.
    rejected = ctl(system, "lines", "fulfil", order, "a", "1")
    assert rejected.code == 4 and "FAILED_PRECONDITION" in rejected.stderr
    unknown = ctl(system, "summary", unique("NOPE"))
    assert unknown.code == 3
    bad_date = ctl(system, "inbound", "expect", "x", sku, "1", "tomorrow")
    assert bad_date.code == 2 and "RFC 3339" in bad_date.stderr


async def test_dead_letters_listed_and_replayed_over_grpc(system: System, vhost: Vhost) -> None:
    """An event the allocation service cannot apply is dead-lettered; the operator sees it
    with `dead-letters list` and puts it back with `dead-letters replay` (it dies again here,
    since it is still not applicable, and is still there: nothing is lost)."""
    feed = await InventoryFeed(vhost.url).open()
    try:
        poison = await feed.publish_raw(
            b"\x08\x96\x01 not a StockReceived",
            type="backorder.inventory.v1.StockReceived",
            routing_key="stock.received",
        )
    finally:
        await feed.close()

    def listed() -> list[dict[str, Any]]:
        outcome = ctl(system, "--json", "dead-letters", "list", "allocation")
        assert outcome.code == 0, outcome.stderr
        return [row for row in outcome.json() if row["message_id"] == poison]  # type: ignore[attr-defined]

    async def until_listed() -> dict[str, Any]:
        for _ in range(100):
            letters = await asyncio.to_thread(listed)
            if letters:
                assert len(letters) == 1, letters  # never twice
                return letters[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"{poison} never listed")

    letter = await until_listed()
    assert (letter["routing_key"], letter["reason"]) == ("stock.received", "rejected")
    assert len(await asyncio.to_thread(listed)) == 1  # listing leaves it in place

    replay = await asyncio.to_thread(
        ctl, system, "--json", "dead-letters", "replay", "allocation", "--message-id", poison
    )
    assert replay.code == 0, replay.stderr
    assert replay.json()["replayed_message_ids"] == [poison]  # type: ignore[index]
    # Republished to inventory.events, applied again, rejected again: back, once.
    again = await until_listed()
    assert again["source_queue"] == "allocation.inventory-events"

    # Replay needs to be told what: --all or --message-id.
    usage = ctl(system, "dead-letters", "replay", "allocation")
    assert usage.code == 2
