"""docs/asyncapi.yaml, the event catalog, says what the code does: every routing key the
services publish with its message (services.common.amqp.PUBLISHED_EVENTS, which the outbox
enforces), messages that exist in the protos, the topology both services declare
(exchanges, contract queues, their dead-letter queues and bindings) and the AMQP properties
of a published event (services.common.outbox.amqp_message)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import yaml
from google.protobuf import descriptor_pool

from backorder.allocation.v1 import events_pb2 as allocation_events
from services.common import amqp, outbox

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "docs" / "asyncapi.yaml"
PROTOBUF_3 = "application/vnd.google.protobuf;version=3"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    loaded = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """`node`, or what its local `$ref` (a JSON pointer into the catalog) points at."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"not a reference into the catalog: {ref}"
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def amqp_binding(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    binding = resolve(doc, resolve(doc, node.get("bindings", {})).get("amqp", {}))
    assert isinstance(binding, dict)
    return binding


def channels(doc: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, channel) of the channels whose AMQP binding `is` `kind` (routingKey or queue)."""
    for channel_id, channel in doc["channels"].items():
        if amqp_binding(doc, channel).get("is") == kind:
            yield channel_id, channel


def message_types(doc: dict[str, Any], channel: dict[str, Any]) -> set[str]:
    """The AMQP `type` (full protobuf name) of each message a channel lists."""
    return {
        amqp_binding(doc, resolve(doc, m))["messageType"]
        for m in (channel.get("messages") or {}).values()
    }


def published_in_code() -> dict[tuple[str, str], str]:
    return {
        (exchange, key): message.DESCRIPTOR.full_name
        for exchange, events in amqp.PUBLISHED_EVENTS.items()
        for key, message in events.items()
    }


def published_in_catalog(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for channel_id, channel in channels(doc, "routingKey"):
        exchange = amqp_binding(doc, channel)["exchange"]["name"]
        types = message_types(doc, channel)
        assert len(types) == 1, f"channel {channel_id} lists {sorted(types)}: one message a key"
        found[exchange, channel["address"]] = types.pop()
    return found


def test_every_published_event_is_in_the_catalog_and_nothing_else(
    doc: dict[str, Any],
) -> None:
    code, catalog = published_in_code(), published_in_catalog(doc)
    missing = sorted(f"{e} {k}: {m}" for (e, k), m in code.items() if catalog.get((e, k)) != m)
    extra = sorted(f"{e} {k}: {m}" for (e, k), m in catalog.items() if code.get((e, k)) != m)
    assert missing == [], f"published but not (so) in docs/asyncapi.yaml: {missing}"
    assert extra == [], f"in docs/asyncapi.yaml but not (so) published: {extra}"


def test_every_published_key_has_a_send_operation(doc: dict[str, Any]) -> None:
    sent = {
        resolve(doc, op["channel"])["address"]
        for op in doc["operations"].values()
        if op["action"] == "send"
    }
    keys = {key for events in amqp.PUBLISHED_EVENTS.values() for key in events}
    assert sent == keys
    published = resolve(doc, doc["components"]["operationBindings"]["published"])["amqp"]
    assert published["deliveryMode"] == aio_pika.DeliveryMode.PERSISTENT.value
    # The relay publishes with mandatory=False: an event no queue is bound for is dropped.
    assert published["mandatory"] is False


def test_every_catalog_message_is_that_message_of_the_protos(doc: dict[str, Any]) -> None:
    pool = descriptor_pool.Default()
    messages = doc["components"]["messages"]
    assert messages
    for key, message in messages.items():
        message_type = amqp_binding(doc, message)["messageType"]
        assert message["name"] == message_type, key
        assert message_type.rsplit(".", 1)[-1] == key, "a message is keyed by its short name"
        descriptor = pool.FindMessageTypeByName(message_type)  # KeyError: not in the protos
        payload = message["payload"]
        assert payload["schemaFormat"] == PROTOBUF_3, key
        proto = (CATALOG.parent / payload["schema"]["$ref"]).resolve()
        assert proto == (ROOT / "protos" / descriptor.file.name).resolve(), (
            f"{key}: the schema is {descriptor.file.name}"
        )
        assert proto.is_file()
        assert re.search(rf"^message {key} \{{", proto.read_text(), re.MULTILINE), key


def test_the_exchanges_are_the_declared_ones(doc: dict[str, Any]) -> None:
    exchanges = [
        resolve(doc, binding)["amqp"]["exchange"]
        for binding in doc["components"]["channelBindings"].values()
        if resolve(doc, binding)["amqp"].get("is") == "routingKey"
    ]
    assert sorted(e["name"] for e in exchanges) == sorted(amqp.EXCHANGES)
    assert sorted(amqp.PUBLISHED_EVENTS) == sorted(amqp.EXCHANGES)
    for exchange in exchanges:
        # declare_topology: durable topic exchanges.
        assert (exchange["type"], exchange["durable"], exchange["autoDelete"]) == (
            "topic",
            True,
            False,
        ), exchange["name"]


def topic_matches(pattern: str, key: str) -> bool:
    """RabbitMQ's topic matching: `*` is one word, `#` zero or more."""

    def match(words: list[str], parts: list[str]) -> bool:
        if not words:
            return not parts
        if words[0] == "#":
            return any(match(words[1:], parts[i:]) for i in range(len(parts) + 1))
        return bool(parts) and words[0] in ("*", parts[0]) and match(words[1:], parts[1:])

    return match(pattern.split("."), key.split("."))


def test_topic_matching() -> None:
    assert topic_matches("stock.#", "stock.received")
    assert topic_matches("#", "line.eta_changed")
    assert topic_matches("line.*", "line.fulfilled")
    assert not topic_matches("line.*", "line.a.b")
    assert not topic_matches("stock.#", "line.fulfilled")
    assert topic_matches("line.fulfilled", "line.fulfilled")
    assert not topic_matches("line.fulfilled", "line.reserved")


def test_the_contract_queues_and_dead_letter_queues_are_the_declared_ones(
    doc: dict[str, Any],
) -> None:
    queues = {
        amqp_binding(doc, channel)["queue"]["name"]: channel
        for _, channel in channels(doc, "queue")
    }
    declared = {q.name for q in amqp.CONTRACT_QUEUES} | {
        q.dead_letter_queue for q in amqp.CONTRACT_QUEUES
    }
    assert sorted(queues) == sorted(declared)
    for q in amqp.CONTRACT_QUEUES:
        channel, dead = queues[q.name], queues[q.dead_letter_queue]
        for name, c in ((q.name, channel), (q.dead_letter_queue, dead)):
            queue = amqp_binding(doc, c)["queue"]
            assert c["address"] == name
            assert (queue["durable"], queue["exclusive"], queue["autoDelete"]) == (
                True,
                False,
                False,
            ), name
        assert channel["x-bindings"] == {
            "exchange": q.exchange,
            "routingKeys": list(q.routing_keys),
        }
        assert channel["x-arguments"] == amqp.queue_arguments(q)
        assert channel["x-dead-letter-queue"] == q.dead_letter_queue
        assert dead["x-arguments"] == amqp.DEAD_LETTER_QUEUE_ARGUMENTS
        assert "x-bindings" not in dead  # reached through the default exchange only
        # A queue lists what its bindings route to it (and its dead-letter queue the same).
        routed = {
            message.DESCRIPTOR.full_name
            for key, message in amqp.PUBLISHED_EVENTS[q.exchange].items()
            if any(topic_matches(pattern, key) for pattern in q.routing_keys)
        }
        assert message_types(doc, channel) == routed, q.name
        assert message_types(doc, dead) == routed, q.dead_letter_queue


def test_every_contract_queue_has_a_receive_operation(doc: dict[str, Any]) -> None:
    received = {
        resolve(doc, op["channel"])["address"]
        for op in doc["operations"].values()
        if op["action"] == "receive"
    }
    assert received == {q.name for q in amqp.CONTRACT_QUEUES}


def test_the_amqp_properties_are_those_the_relay_sets(doc: dict[str, Any]) -> None:
    event_id = uuid.uuid4()
    written = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    name = allocation_events.LineFulfilled.DESCRIPTOR.full_name
    sent = outbox.amqp_message(name, event_id, b"body", written)
    trait = resolve(doc, doc["components"]["messageTraits"]["event"])
    assert doc["defaultContentType"] == trait["contentType"] == sent.content_type
    props = trait["x-amqp-properties"]
    assert props["content_type"] == sent.content_type
    assert props["delivery_mode"] == sent.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert sent.type == name and props["type"] == "full message name"
    assert sent.message_id == str(event_id) and props["message_id"] == "event_id"
    assert sent.timestamp == written and props["timestamp"] == "written at"
    # No headers of their own; the trace context is added by tracing, when it is on.
    assert not sent.headers
    assert set(trait["headers"]["properties"]) == {"traceparent", "tracestate"}
    for message in doc["components"]["messages"].values():
        assert {"$ref": "#/components/messageTraits/event"} in message["traits"]


def test_the_outbox_refuses_an_event_the_catalog_does_not_list() -> None:
    message = allocation_events.LineFulfilled(sku="S-1")
    with pytest.raises(ValueError, match="PUBLISHED_EVENTS"):
        outbox.new_event(amqp.ALLOCATION_EXCHANGE, "line.shipped", message)
    with pytest.raises(ValueError, match="PUBLISHED_EVENTS"):
        outbox.new_event(amqp.INVENTORY_EXCHANGE, "line.fulfilled", message)
    with pytest.raises(ValueError, match="PUBLISHED_EVENTS"):
        outbox.new_event(amqp.ALLOCATION_EXCHANGE, "line.reserved", message)
    assert outbox.new_event(amqp.ALLOCATION_EXCHANGE, "line.fulfilled", message).sku == "S-1"
