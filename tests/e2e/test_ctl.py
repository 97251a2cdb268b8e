"""backorderctl as an operator runs it: a subprocess against the real services."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest

from backorder.inventory.v1 import events_pb2 as inv_events
from services.common.amqp import ALLOCATION_INBOX, INVENTORY_EXCHANGE
from tests.e2e.conftest import System
from tests.support.inventory_feed import InventoryFeed, new_inventory_event
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, unique


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)

    def json_dict(self) -> dict[str, Any]:
        data = self.json()
        assert isinstance(data, dict), data
        return data

    def json_rows(self) -> list[dict[str, Any]]:
        data = self.json()
        assert isinstance(data, list), data
        return data


def ctl_env(system: System, env: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "INVENTORY_GRPC_ADDR": system.inventory.grpc_addr,
        "ALLOCATION_GRPC_ADDR": system.allocation.grpc_addr,
        **(env or {}),
    }


def ctl(system: System, *args: str, env: dict[str, str] | None = None) -> Outcome:
    done = subprocess.run(
        [str(BIN / "backorderctl"), *args],
        env=ctl_env(system, env),
        capture_output=True,
        text=True,
        timeout=60,
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
    assert fields["status"] == "BACKORDERED"  # --json keeps LINE_STATUS_BACKORDERED
    assert fields["sku"] == sku and fields["queue_position"] == "1"
    # Never beyond `default`: no locations shown.
    assert not any(key.startswith(("locations", "allocations")) for key in fields)


def table_rows(outcome: Outcome) -> list[dict[str, str]]:
    """A backorderctl table as {COLUMN: cell} rows (cells hold no spaces in these tests)."""
    assert outcome.code == 0, outcome.stderr
    header, *lines = outcome.stdout.splitlines()
    return [dict(zip(header.split(), line.split(), strict=True)) for line in lines]


def test_tables_name_enum_values_as_people_say_them(system: System) -> None:
    sku, order = unique("ENUM"), unique("o")
    assert ctl(system, "stock", "receive", sku, "5").code == 0
    for _ in range(100):  # the allocation service learns of the units from stock.received
        known = ctl(system, "--json", "summary", sku)
        if known.code == 0 and known.json_dict()["free_units"] == "5":
            break
    else:
        raise AssertionError("the received units never became free")
    placed = ctl(system, "--json", "lines", "allocate", order, "1", sku, "2")
    assert placed.json_dict()["outcome"] == "ALLOCATION_OUTCOME_RESERVED", placed.stderr

    [line] = table_rows(ctl(system, "lines", "list", "--order-id", order))
    assert line["STATUS"] == "RESERVED"
    [reservation] = table_rows(ctl(system, "reservations", "list", "--sku", sku))
    assert reservation["RULE"] == "WHOLE"
    summary = dict(
        row.split(None, 1) for row in ctl(system, "summary", sku).stdout.splitlines()[1:]
    )
    assert summary["policy.fill_policy"] == "STRICT"
    assert not any(key.startswith("locations") for key in summary)
    # Scripts read --json, which keeps the proto names.
    as_json = ctl(system, "--json", "summary", sku).json_dict()
    assert as_json["policy"]["fill_policy"] == "FILL_POLICY_STRICT"
    [logged] = ctl(system, "--json", "reservations", "list", "--sku", sku).json_rows()
    assert logged["rule"] == "RESERVATION_RULE_WHOLE"


def test_every_list_takes_its_filters_as_flags(system: System) -> None:
    """One convention: what a command acts on is positional, what narrows a list a flag."""
    sku = unique("FLAG")
    assert (
        ctl(system, "inbound", "expect", unique("po"), sku, "4", "2030-01-02T09:00:00Z").code == 0
    )
    assert ctl(system, "stock", "receive", sku, "1").code == 0
    for args in (
        ("inbound", "list", "--sku", sku),
        ("stock", "movements", "--sku", sku),
        ("lines", "list", "--sku", sku),
        ("reservations", "list", "--sku", sku),
    ):
        outcome = ctl(system, "--json", *args)
        assert outcome.code == 0, f"{args}: {outcome.stderr}"
    [inbound] = ctl(system, "--json", "inbound", "list", "--sku", sku).json_rows()
    assert inbound["sku"] == sku
    [movement] = ctl(system, "--json", "stock", "movements", "--sku", sku).json_rows()
    assert movement["sku"] == sku
    positional = ctl(system, "inbound", "list", sku)
    assert positional.code == 2 and "unrecognized arguments" in positional.stderr


def test_connection_options_are_listed_once_and_accepted_anywhere(system: System) -> None:
    root = ctl(system, "--help")
    assert root.code == 0
    assert root.stdout.count("--inventory-addr") == 1 and "--token-file" in root.stdout
    for leaf in (("lines", "list"), ("stock", "get"), ("dead-letters", "replay")):
        helped = ctl(system, *leaf, "--help")
        assert helped.code == 0, helped.stderr
        assert "--inventory-addr" not in helped.stdout and "--token-file" not in helped.stdout
        assert "backorderctl --help" in helped.stdout
    sku = unique("ANY")
    assert ctl(system, "stock", "receive", sku, "1").code == 0
    before = ctl(system, "--json", "--timeout", "5", "stock", "get", sku)
    after = ctl(system, "stock", "get", sku, "--timeout=5", "--json")
    assert before.code == after.code == 0, (before.stderr, after.stderr)
    assert before.json() == after.json()


def test_a_closed_output_pipe_ends_quietly(system: System) -> None:
    """`backorderctl … | head`: the reader has gone before the table is written."""
    sku = unique("PIPE")
    assert ctl(system, "stock", "receive", sku, "1").code == 0
    for args in (("stock", "list", "--sku-prefix", sku), ("--json", "health")):
        process = subprocess.Popen(
            [str(BIN / "backorderctl"), *args],
            env=ctl_env(system),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # like `head -0`: nobody reads what it writes
        stderr = process.stderr.read()
        assert process.wait(timeout=60) == 141, stderr
        assert stderr == "", stderr


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

    inbound = ok("inbound", "list", "--sku", sku, "--open-only")
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
    # location_strategy (docs/spec.md §8) is the allocation service's to set and test.
    assert {k: v for k, v in policy["policy"].items() if k != "location_strategy"} == {
        "fill_policy": "FILL_POLICY_SKIP",
        "backorders_accepted": True,
        "backorder_limit": "10",
        "max_units_per_customer": "0",
    }

    adjusted = ok(
        "stock", "adjust", sku, "1", "--reason", "found", "--adjustment-id", f"{order}-a1"
    )
    assert adjusted["stock"]["on_hand"] == "1"
    movements = ok("stock", "movements", "--sku", sku)
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


def dead_letters(system: System, message_id: str) -> list[dict[str, Any]]:
    outcome = ctl(system, "--json", "dead-letters", "list", "allocation")
    assert outcome.code == 0, outcome.stderr
    return [row for row in outcome.json_rows() if row["message_id"] == message_id]


async def test_dead_letters_listed_and_replayed_over_grpc(system: System, vhost: Vhost) -> None:
    """An event the allocation service cannot apply is dead-lettered; the operator sees it
    with `dead-letters list` and puts it back with `dead-letters replay`: the allocation
    service consumes it again and, since it still cannot apply it, dead-letters it again
    (its death count goes up): nothing is lost."""
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
        return dead_letters(system, poison)

    async def until_listed() -> dict[str, Any]:
        for _ in range(100):
            letters = await asyncio.to_thread(listed)
            if letters:
                assert len(letters) == 1, letters  # never twice
                return letters[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"{poison} never listed")

    def rejections() -> int:
        """How often the allocation service consumed the poison and dead-lettered it."""
        return sum(
            1
            for line in system.allocation.log_text().splitlines()
            if "dead-lettering" in line and poison in line
        )

    letter = await until_listed()
    assert (letter["routing_key"], letter["reason"]) == ("stock.received", "rejected")
    assert rejections() == 1
    assert len(await asyncio.to_thread(listed)) == 1  # listing leaves it in place

    replay = await asyncio.to_thread(
        ctl, system, "--json", "dead-letters", "replay", "allocation", "--message-id", poison
    )
    assert replay.code == 0, replay.stderr
    assert replay.json()["replayed_message_ids"] == [poison]  # type: ignore[index]
    # Republished to inventory.events, consumed again, rejected again: back, once.
    for _ in range(100):
        if rejections() == 2:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the replayed message was never consumed again")
    again = await until_listed()
    assert (again["source_queue"], again["reason"]) == ("allocation.inventory-events", "rejected")

    # Replay needs to be told what: --all or --message-id.
    usage = ctl(system, "dead-letters", "replay", "allocation")
    assert usage.code == 2


async def test_a_replayed_dead_letter_is_applied(system: System, vhost: Vhost) -> None:
    """A valid stock.received that died (say, under a bug since fixed) is applied once the
    operator replays it: the line waiting for its units is reserved, and the dead letter is
    gone. The message is put into the dead-letter queue the way RabbitMQ leaves one there
    (with its x-death header), since today's service applies every valid event."""
    sku, order = unique("REPLAY"), unique("o")
    assert ctl(system, "lines", "allocate", order, "1", sku, "2").code == 0
    event = new_inventory_event(
        inv_events.StockReceived(sku=sku, quantity=2, receipt_id=unique("rcpt"))
    )
    connection = await aio_pika.connect(vhost.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=event.SerializeToString(),
                content_type="application/x-protobuf",
                type=event.DESCRIPTOR.full_name,
                message_id=event.event_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={
                    "x-death": [
                        {
                            "count": 1,
                            "reason": "rejected",
                            "queue": ALLOCATION_INBOX.name,
                            "time": datetime.now(UTC).replace(microsecond=0),
                            "exchange": INVENTORY_EXCHANGE,
                            "routing-keys": ["stock.received"],
                        }
                    ]
                },
            ),
            ALLOCATION_INBOX.dead_letter_queue,
            mandatory=True,
        )

    [letter] = await asyncio.to_thread(dead_letters, system, event.event_id)
    assert (letter["routing_key"], letter["deaths"]) == ("stock.received", "1")
    waiting = ctl(system, "--json", "lines", "get", order, "1").json_dict()
    assert waiting["status"] == "LINE_STATUS_BACKORDERED"

    replay = await asyncio.to_thread(
        ctl,
        system,
        "--json",
        "dead-letters",
        "replay",
        "allocation",
        "--message-id",
        event.event_id,
    )
    assert replay.code == 0, replay.stderr
    assert replay.json_dict()["replayed_message_ids"] == [event.event_id]
    line: Any = None
    for _ in range(100):
        line = (await asyncio.to_thread(ctl, system, "--json", "lines", "get", order, "1")).json()
        if line["status"] == "LINE_STATUS_RESERVED":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the replayed receipt was never applied: {line}")
    assert line["reserved_quantity"] == "2"
    log = ctl(system, "--json", "reservations", "list", "--sku", sku).json_rows()
    assert [(r["quantity"], r["cause"]) for r in log] == [("2", "stock.received")]
    assert await asyncio.to_thread(dead_letters, system, event.event_id) == []


def test_a_per_customer_cap_set_with_the_cli(system: System) -> None:
    sku, order = unique("CAPCLI"), unique("o")
    capped = ctl(system, "--json", "policy", sku, "--max-units-per-customer", "3")
    assert capped.code == 0, capped.stderr
    assert capped.json_dict()["policy"]["max_units_per_customer"] == "3"
    placed = ctl(system, "lines", "allocate", order, "1", sku, "2", "--customer-id", "acme")
    assert placed.code == 0, placed.stderr
    over = ctl(system, "lines", "allocate", order, "2", sku, "2", "--customer-id", "acme")
    assert over.code == 4 and "FAILED_PRECONDITION" in over.stderr
    assert "max_units_per_customer of 3" in over.stderr and "holds 2" in over.stderr
    anonymous = ctl(system, "lines", "allocate", order, "3", sku, "1")
    assert anonymous.code == 4 and "customer_id" in anonymous.stderr
    negative = ctl(system, "policy", sku, "--max-units-per-customer", "-1")
    assert negative.code == 4 and "INVALID_ARGUMENT: max_units_per_customer" in negative.stderr
    # Other policy changes keep the cap.
    kept = ctl(system, "--json", "policy", sku, "--fill-policy", "skip")
    assert kept.json_dict()["policy"]["max_units_per_customer"] == "3"


def test_locations_transfers_and_per_location_stock(system: System) -> None:
    sku, north = unique("SKU"), unique("LOC")
    put = ctl(system, "locations", "put", north, "--name", "North", "--fill-rank", "3", "--json")
    assert put.code == 0, put.stderr
    assert put.json_dict()["version"] == "1" and put.json_dict()["active"] is True
    listed = table_rows(ctl(system, "locations", "list", "--limit", "1000"))
    assert {"LOCATION_ID": north, "NAME": "North", "FILL_RANK": "3", "ACTIVE": "yes"}.items() <= (
        next(r for r in listed if r["LOCATION_ID"] == north).items()
    )
    refused = ctl(system, "locations", "put", "default", "--active", "no")
    assert refused.code == 4 and "active" in refused.stderr

    assert ctl(system, "stock", "receive", sku, "8").code == 0
    # One place only: the people's view shows no locations.
    assert "locations" not in ctl(system, "stock", "get", sku).stdout
    moved = ctl(system, "stock", "transfer", sku, "5", "--from", "default", "--to", north)
    assert moved.code == 0, moved.stderr
    assert "transfer_id" in moved.stdout and "ctl-" in moved.stdout
    fields = dict(
        line.split(None, 1) for line in ctl(system, "stock", "get", sku).stdout.splitlines()[1:]
    )
    assert (fields["on_hand"], fields["locations.default.on_hand"]) == ("8", "3")
    assert fields[f"locations.{north}.on_hand"] == "5"
    counted = ctl(
        system, "stock", "adjust", sku, "-1", "--reason", "damaged", "--location", north, "--json"
    )
    assert counted.code == 0, counted.stderr
    entries = {e["location_id"]: e["on_hand"] for e in counted.json_dict()["stock"]["locations"]}
    assert entries == {"default": "3", north: "4"}
    at_north = table_rows(ctl(system, "stock", "movements", "--sku", sku, "--location", north))
    assert [(r["KIND"], r["LOCATION_ID"], r["QUANTITY"]) for r in at_north] == [
        ("ADJUSTMENT", north, "-1"),
        ("TRANSFER_IN", north, "5"),
    ]

    # In transit: an inbound at the destination until received against the transfer id.
    transfer_id = unique("t")
    sent = ctl(
        system, "stock", "transfer", sku, "2", "--from", north, "--to", "default",
        "--expected-at", "2031-01-01T00:00:00Z", "--transfer-id", transfer_id, "--json",
    )  # fmt: skip
    assert sent.code == 0, sent.stderr
    assert sent.json_dict()["stock"]["in_transit_quantity"] == "2"
    inbound = table_rows(ctl(system, "inbound", "list", "--sku", sku, "--location", "default"))
    assert [(r["INBOUND_ID"], r["FROM_LOCATION_ID"], r["OPEN_QUANTITY"]) for r in inbound] == [
        (transfer_id, north, "2")
    ]
    landed = ctl(system, "stock", "receive", sku, "2", "--inbound-id", transfer_id, "--json")
    assert landed.code == 0, landed.stderr
    entries = {e["location_id"]: e["on_hand"] for e in landed.json_dict()["stock"]["locations"]}
    assert entries == {"default": "5", north: "2"}
    expected = ctl(
        system, "inbound", "expect", unique("in"), sku, "4", "2031-02-01T00:00:00Z",
        "--location", north, "--json",
    )  # fmt: skip
    assert expected.code == 0 and expected.json_dict()["location_id"] == north
    unknown = ctl(system, "stock", "receive", sku, "1", "--location", unique("NOWHERE"))
    assert unknown.code == 3 and "location_id" in unknown.stderr


def summary_fields(system: System, sku: str) -> dict[str, str]:
    shown = ctl(system, "summary", sku)
    assert shown.code == 0, shown.stderr
    return dict(line.split(None, 1) for line in shown.stdout.splitlines()[1:])


def wait_for_summary(system: System, sku: str, **figures: str) -> dict[str, str]:
    """The people's summary once it shows `figures` (the allocation service hears of stock
    and inbound through events); keys are the shown fields with `__` for `.`."""
    fields: dict[str, str] = {}
    for _ in range(100):
        fields = summary_fields(system, sku)
        if all(fields.get(k.replace("__", ".")) == v for k, v in figures.items()):
            return fields
        time.sleep(0.1)
    raise AssertionError(f"the summary never showed {figures}: {fields}")


def test_lines_ship_from_locations_with_the_cli(system: System) -> None:
    sku, east, west = unique("SKU"), unique("EAST"), unique("WEST")
    for location, rank in ((east, "1"), (west, "2")):
        assert ctl(system, "locations", "put", location, "--fill-rank", rank).code == 0
    assert ctl(system, "stock", "receive", sku, "3", "--location", east).code == 0
    assert ctl(system, "stock", "receive", sku, "2", "--location", west).code == 0
    expected = ctl(
        system, "inbound", "expect", unique("po"), sku, "4", "2031-02-01T00:00:00Z",
        "--location", west,
    )  # fmt: skip
    assert expected.code == 0, expected.stderr
    fields = wait_for_summary(system, sku, free_units="5", inbound_units="4")
    assert (fields[f"locations.{east}.free_units"], fields[f"locations.{west}.free_units"]) == (
        "3",
        "2",
    )
    assert fields[f"locations.{west}.inbound_units"] == "4"

    # Restricted to one location: only its units, though the other has enough too.
    order_a, order_b = unique("o"), unique("o")
    placed = ctl(system, "lines", "allocate", order_a, "1", sku, "2", "--location", east)
    assert placed.code == 0, placed.stderr
    shown = dict(line.split(None, 1) for line in placed.stdout.splitlines()[1:])
    assert (shown["line.locations"], shown[f"line.allocations.{east}.reserved_quantity"]) == (
        east,
        "2",
    )
    assert not any(west in key for key in shown)
    # Any location: 3 whole units, 1 left at east (rank 1) and 2 at west.
    both = ctl(system, "--json", "lines", "allocate", order_b, "1", sku, "3")
    assert both.code == 0, both.stderr
    line = both.json_dict()["line"]
    assert line["locations"] == [] and line["status"] == "LINE_STATUS_RESERVED"
    assert {a["location_id"]: a["reserved_quantity"] for a in line["allocations"]} == {
        east: "1",
        west: "2",
    }
    got = ctl(system, "lines", "get", order_b, "1")
    assert got.code == 0, got.stderr
    fields = dict(row.split(None, 1) for row in got.stdout.splitlines()[1:])
    assert fields["locations"] == "any"
    assert (
        fields[f"allocations.{east}.reserved_quantity"],
        fields[f"allocations.{west}.reserved_quantity"],
    ) == ("1", "2")
    fields = summary_fields(system, sku)
    assert (fields["free_units"], fields["reserved_units"]) == ("0", "5")
    assert (fields[f"locations.{east}.reserved_units"], fields[f"locations.{west}.free_units"]) == (
        "3",
        "0",
    )
    at_west = table_rows(ctl(system, "lines", "list", "--sku", sku, "--location", west))
    assert [(r["ORDER_ID"], r["RESERVED_AT"]) for r in at_west] == [(order_b, f"{east}:1,{west}:2")]
    log = table_rows(ctl(system, "reservations", "list", "--order-id", order_b, "--line-id", "1"))
    assert sorted((r["LOCATION_ID"], r["QUANTITY"]) for r in log) == sorted(
        [(east, "1"), (west, "2")]
    )

    # Units at two locations: the shipment says where from.
    unsaid = ctl(system, "lines", "fulfil", order_b, "1", "2")
    assert unsaid.code == 4 and "location_id" in unsaid.stderr
    shipped = ctl(system, "lines", "fulfil", order_b, "1", "2", "--location", west)
    assert shipped.code == 0, shipped.stderr
    fields = dict(row.split(None, 1) for row in shipped.stdout.splitlines()[1:])
    assert fields[f"allocations.{west}.fulfilled_quantity"] == "2"
    assert fields[f"allocations.{west}.reserved_quantity"] == "0"

    # Most stock first: a new unit at east, three at west; a one-unit line takes from west
    # although east ranks first.
    strategy = ctl(system, "policy", sku, "--location-strategy", "most-stock")
    assert strategy.code == 0, strategy.stderr
    assert "MOST_STOCK" in strategy.stdout
    as_json = ctl(system, "--json", "summary", sku).json_dict()
    assert as_json["policy"]["location_strategy"] == "LOCATION_STRATEGY_MOST_STOCK"
    assert ctl(system, "stock", "receive", sku, "1", "--location", east).code == 0
    assert ctl(system, "stock", "receive", sku, "3", "--location", west).code == 0
    wait_for_summary(system, sku, free_units="4")
    order_c = unique("o")
    third = ctl(system, "--json", "lines", "allocate", order_c, "1", sku, "1")
    assert third.code == 0, third.stderr
    assert [
        (a["location_id"], a["reserved_quantity"]) for a in third.json_dict()["line"]["allocations"]
    ] == [(west, "1")]
    nowhere = unique("NOWHERE")
    unknown = ctl(system, "lines", "allocate", unique("o"), "1", sku, "1", "--location", nowhere)
    assert unknown.code == 3 and "locations[0]" in unknown.stderr
