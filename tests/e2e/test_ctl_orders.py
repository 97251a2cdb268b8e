"""backorderctl orders place|get|cancel against the real services (docs/spec.md §10)."""

from __future__ import annotations

from tests.e2e.conftest import System
from tests.e2e.test_ctl import ctl
from tests.support.servers import unique


def test_place_get_and_cancel_an_order(system: System) -> None:
    order, a, b = unique("o"), unique("SKU"), unique("SKU:X")
    placed = ctl(system, "orders", "place", order, f"{a}:2", f"{b}:3", "--priority", "4", "--json")
    assert placed.code == 0, placed.stderr
    reply = placed.json_dict()
    assert (reply["order_id"], reply["priority"], reply["status"]) == (
        order,
        4,
        "ORDER_STATUS_WAITING",
    )
    assert [(x["line_id"], x["sku"], x["quantity"]) for x in reply["lines"]] == [
        ("1", a, "2"),
        ("2", b, "3"),
    ]
    # The same command again is a repeat: the same order.
    again = ctl(system, "orders", "place", order, f"{a}:2", f"{b}:3", "--priority", "4", "--json")
    assert again.code == 0 and again.json_dict() == reply
    shown = ctl(system, "orders", "get", order)
    assert shown.code == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert ["status", "WAITING"] in rows
    assert ["lines.1.sku", a] in rows and ["lines.2.quantity", "3"] in rows
    cancelled = ctl(system, "orders", "cancel", order, "--json")
    assert cancelled.code == 0, cancelled.stderr
    data = cancelled.json_dict()
    assert (data["status"], data["released_quantity"]) == ("ORDER_STATUS_CANCELLED", 0)


def test_bad_orders_are_refused_with_the_field_named(system: System) -> None:
    order, sku = unique("o"), unique("SKU")
    usage = ctl(system, "orders", "place", order, f"{sku}:0")
    assert usage.code == 2 and "SKU:QTY" in usage.stderr
    refused = ctl(
        system, "orders", "place", order, f"{sku}:1", "--ship-complete", "--allow-partial"
    )
    assert refused.code == 4  # REJECTED
    assert "INVALID_ARGUMENT" in refused.stderr and "lines[0].allow_partial" in refused.stderr
    missing = ctl(system, "orders", "get", unique("never"))
    assert missing.code == 3 and "NOT_FOUND" in missing.stderr
