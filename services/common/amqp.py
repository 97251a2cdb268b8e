"""RabbitMQ at the edge: connecting, and the topology both services declare identically.

`AMQP_URL` names one broker or, comma-separated, the nodes of a cluster (docs/spec.md §5).
`connect` tries them in turn and returns the first that answers; a node that failed a
moment ago is tried last, so a process whose node died moves to another at its next
connect. The contract queues are quorum queues: in a cluster, each is replicated on every
node that was a member when it was declared, and survives the loss of a minority of them.

Both services declare both exchanges and the two contract queues (docs/spec.md §4), so whichever
starts first, an event published before its consumer ever ran is queued, not lost.

The delivery limit is a queue argument, so it cannot change on a queue that exists: queues
declared by an older release (limit 5) are used as they are, with a warning that says how
to recreate them (README, "Upgrading"). RabbitMQ applies the lower of a `delivery-limit`
policy and the argument, so a policy can lower the limit but not raise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractQueue,
)
from aiormq.exceptions import AuthenticationError
from google.protobuf.message import Message

from backorder.allocation.v1 import events_pb2 as allocation_events
from backorder.inventory.v1 import events_pb2 as inventory_events

log = logging.getLogger(__name__)

INVENTORY_EXCHANGE = "inventory.events"
ALLOCATION_EXCHANGE = "allocation.events"
EXCHANGES = (INVENTORY_EXCHANGE, ALLOCATION_EXCHANGE)  # durable topic exchanges
# Returns of one message to its queue before it is dead-lettered. Every return counts, a
# consumer dying mid-message included (quorum queues, RabbitMQ 3.x): the limit stops a
# message that crashes the process every time, not a few restarts. Messages the consumer
# knows it can never apply are dead-lettered at once (services.common.consumer).
DELIVERY_LIMIT = 20
# The limit the previous release declared the queues with: still accepted, with a warning.
LEGACY_DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class ContractQueue:
    name: str
    exchange: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"


ALLOCATION_INBOX = ContractQueue(
    "allocation.inventory-events", INVENTORY_EXCHANGE, ("stock.#", "inbound.#", "location.#")
)
INVENTORY_INBOX = ContractQueue(
    "inventory.allocation-events", ALLOCATION_EXCHANGE, ("line.fulfilled",)
)
CONTRACT_QUEUES = (ALLOCATION_INBOX, INVENTORY_INBOX)

# Every event the services publish: exchange -> routing key -> its message (docs/spec.md §4).
# The outbox refuses any other (services.common.outbox.OutgoingEvent), and
# tests/unit/test_event_catalog.py holds docs/asyncapi.yaml equal to this: a new event is a
# line here and a channel, operation and message there.
PUBLISHED_EVENTS: dict[str, dict[str, type[Message]]] = {
    INVENTORY_EXCHANGE: {
        "stock.received": inventory_events.StockReceived,
        "stock.adjusted": inventory_events.StockAdjusted,
        "stock.issued": inventory_events.StockIssued,
        "inbound.updated": inventory_events.InboundUpdated,
        "stock.transferred": inventory_events.StockTransferred,
        "location.updated": inventory_events.LocationUpdated,
    },
    ALLOCATION_EXCHANGE: {
        "line.backordered": allocation_events.LineBackordered,
        "line.reserved": allocation_events.LineReserved,
        "line.revoked": allocation_events.LineRevoked,
        "line.eta_changed": allocation_events.LineEtaChanged,
        "line.cancelled": allocation_events.LineCancelled,
        "line.fulfilled": allocation_events.LineFulfilled,
        "sku.reorder_suggested": allocation_events.SkuReorderSuggested,
        "order.ready": allocation_events.OrderReady,
        "order.waiting": allocation_events.OrderWaiting,
    },
}


# What a broker that is away or refusing us raises: the socket (refused, reset, timed out)
# and every AMQP-level error (login or vhost refused, connection or channel closed).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    aio_pika.exceptions.AMQPError,
)


class BrokerRefused(RuntimeError):
    """RabbitMQ answered and refused us (login, vhost, permissions): a configuration error,
    which waiting does not change."""


def broker_urls(amqp_url: str) -> list[str]:
    """The broker URLs of an `AMQP_URL`: one, or several comma-separated (a cluster's nodes).
    A comma inside a password is written %2C."""
    return [url.strip() for url in amqp_url.split(",") if url.strip()]


def node_address(url: str) -> str:
    """HOST:PORT of one broker URL (what logs name a node by; never the password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}"


class NoBrokerAnswered(ConnectionError):
    """None of the brokers of an AMQP_URL with several took a connection."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        self.failures = failures
        super().__init__("; ".join(explain(exc, url) for url, exc in failures))


def refusal(exc: BaseException) -> str | None:
    """The broker's reason when `exc` says RabbitMQ refused us; None when it only could not
    be reached (refused TCP connection, timeout, connection dropped). Of a cluster, a node
    that refused us is a refusal: users, vhosts and permissions are the cluster's."""
    if isinstance(exc, NoBrokerAnswered):
        reasons = (refusal(failure) for _, failure in exc.failures)
        return next((reason for reason in reasons if reason is not None), None)
    if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError | AuthenticationError):
        return str(exc) or "login refused"
    if isinstance(exc, aiormq.exceptions.ConnectionClosed) and exc.errno in (403, 530):
        return exc.strerror or str(exc)
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return str(exc)
    # aiormq reports a Connection.Close in answer to Connection.Open (vhost missing, or the
    # user has no permissions on it) as an unexpected frame, without the broker's text.
    if isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(exc):
        return "the broker closed the connection when opening the vhost"
    return None


def explain(exc: BaseException, url: str) -> str:
    """What went wrong with the broker, in words an operator can act on (no password).
    `url` may list several brokers; a failure to reach each is explained for each."""
    if isinstance(exc, NoBrokerAnswered):
        return str(exc)
    urls = broker_urls(url) or [url]
    parts = urlsplit(urls[0])
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    where = ", ".join(node_address(u) for u in urls)
    reason = refusal(exc)
    if reason is not None:
        login = isinstance(exc, aiormq.exceptions.ProbableAuthenticationError)
        hint = (
            "check the user name and password"
            if login
            else "check that the vhost exists and that the user has permissions on it"
        )
        return (
            f"RabbitMQ at {where} refused user {parts.username or 'guest'!r} on vhost "
            f"{vhost!r} ({reason}): {hint}"
        )
    detail = str(exc) or type(exc).__name__
    return f"RabbitMQ at {where} (vhost {vhost!r}) is not reachable ({detail})"


async def wait_for_broker(
    url: str, stopping: asyncio.Event, *, delay: float = 1.0, connect_timeout: float = 10.0
) -> bool:
    """Connects once, plainly, to tell a broker that is not up yet (waited for: compose
    starts services before it) from one that refuses us (BrokerRefused: configuration).
    Of several brokers, one that answers is enough. Returns False when `stopping` was set
    while waiting."""
    attempt = 0
    while not stopping.is_set():
        attempt += 1
        try:
            connection = await connect(url, connect_timeout=connect_timeout)
        except BROKER_ERRORS as exc:
            if refusal(exc) is not None:
                raise BrokerRefused(explain(exc, url)) from None
            log.warning(
                "RabbitMQ not reachable yet, waiting for it",
                extra={"attempt": attempt, "error": explain(exc, url)},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=delay)
            continue
        await connection.close()
        return True
    return False


# A node whose connection failed or was lost this many seconds ago is tried after the others.
SUSPECT_FOR = 30.0
_suspects: dict[str, float] = {}  # node (HOST:PORT) -> when it last failed us (monotonic)


def connection_node(connection: AbstractConnection) -> str:
    """HOST:PORT of the broker `connection` is to (for logs)."""
    url = getattr(connection, "url", None)  # aio_pika.Connection's; not on the ABC
    if url is None:
        return "?"
    return f"{url.host}:{url.port or (5671 if url.scheme == 'amqps' else 5672)}"


def connection_lost(connection: AbstractConnection) -> None:
    """Notes that `connection` (made by `connect`) was lost: its node is tried last for a
    while, so the next `connect` goes to another node of the cluster if one answers."""
    _suspects[connection_node(connection)] = time.monotonic()


def _in_trying_order(urls: list[str]) -> list[str]:
    now = time.monotonic()

    def suspect(url: str) -> bool:
        return now - _suspects.get(node_address(url), -SUSPECT_FOR) < SUSPECT_FOR

    # Stable: in the listed order, the suspects after the others.
    return sorted(urls, key=suspect)


async def _open(url: str, connect_timeout: float) -> AbstractConnection:
    """aio_pika.connect, except that a connection that fails to open is closed here, on
    this loop. aio-pika would close it from its finalizer, whenever the garbage collector
    runs: with no loop running then, the close() coroutine it made is never awaited (a
    RuntimeWarning)."""
    connection = aio_pika.Connection(aio_pika.connection.make_url(url))
    try:
        await connection.connect(timeout=connect_timeout)
    except BaseException:
        await connection.close()
        raise
    return connection


async def connect(amqp_url: str, *, connect_timeout: float = 10.0) -> AbstractConnection:
    """A plain connection to the first broker of `amqp_url` that answers (nodes that failed
    us lately last). Plain, not robust: the workers reconnect by themselves (a robust
    connection retries a refused login or a missing vhost forever and restores only part of
    what was open), and a publish on a lost connection fails at once. With one URL, its
    error is raised as it is; with several and none answering, NoBrokerAnswered."""
    urls = broker_urls(amqp_url)
    if len(urls) <= 1:
        return await _open(urls[0] if urls else amqp_url, connect_timeout)
    failures: list[tuple[str, BaseException]] = []
    for url in _in_trying_order(urls):
        try:
            connection = await _open(url, connect_timeout)
        except BROKER_ERRORS as exc:
            _suspects[node_address(url)] = time.monotonic()
            failures.append((url, exc))
            continue
        _suspects.pop(node_address(url), None)
        return connection
    raise NoBrokerAnswered(failures)


class TopologyMismatch(RuntimeError):
    """A contract queue exists with arguments this release neither declares nor accepts."""


# A dead-letter queue: where a contract queue dead-letters to (through the default exchange).
DEAD_LETTER_QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


def queue_arguments(q: ContractQueue, delivery_limit: int = DELIVERY_LIMIT) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": q.dead_letter_queue,
        # Dead-lettering is at-most-once unless both of these are set.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_topology(amqp_url: str, *, connect_timeout: float = 10.0) -> None:
    """Both exchanges, the contract queues and their dead-letter queues, over a connection
    of its own: a declaration the broker refuses closes its channel, and a robust channel
    would repeat our declarations after a reconnect (consumers only look queues up)."""
    connection = await connect(amqp_url, connect_timeout=connect_timeout)
    async with connection:
        channel = await connection.channel()
        for exchange in EXCHANGES:
            await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for q in CONTRACT_QUEUES:
            await channel.declare_queue(
                q.dead_letter_queue, durable=True, arguments=DEAD_LETTER_QUEUE_ARGUMENTS
            )
            channel, queue = await _declare_contract_queue(connection, channel, q)
            for key in q.routing_keys:
                await queue.bind(q.exchange, key)


async def _declare_contract_queue(
    connection: AbstractConnection, channel: AbstractChannel, q: ContractQueue
) -> tuple[AbstractChannel, AbstractQueue]:
    """The queue as this release declares it or, when it exists as the previous release
    declared it (only the delivery limit differs), as that one did, with a warning. Returns
    the channel to go on with: a refused declaration closes the one it was sent on."""
    try:
        queue = await channel.declare_queue(q.name, durable=True, arguments=queue_arguments(q))
        return channel, queue
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        refused = str(exc)
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(
            q.name, durable=True, arguments=queue_arguments(q, LEGACY_DELIVERY_LIMIT)
        )
    except aio_pika.exceptions.ChannelPreconditionFailed:
        raise TopologyMismatch(
            f"queue {q.name!r} exists with other arguments than this release declares "
            f"({refused}); see README, Upgrading"
        ) from None
    log.warning(
        "contract queue declared by the previous release: a message is dead-lettered after "
        "fewer returns, consumer crashes included; recreate the queue when convenient "
        "(README, Upgrading)",
        extra={"queue": q.name, "delivery_limit": LEGACY_DELIVERY_LIMIT, "wanted": DELIVERY_LIMIT},
    )
    return channel, queue
