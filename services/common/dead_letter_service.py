"""DeadLetterService over gRPC: both services serve it for their own inbox's dead-letter
queue, so operators list and replay dead letters with their admin token (backorderctl) and
never need broker credentials."""

from __future__ import annotations

import grpc

from backorder.operations.v1 import dead_letters_pb2 as pb
from backorder.operations.v1 import dead_letters_pb2_grpc as pb_grpc
from services.common import amqp, dead_letters, paging, validation
from services.common.amqp import ContractQueue
from services.common.errors import InvalidArgument, Unavailable
from services.common.timestamps import to_proto

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def dead_letter_proto(letter: dead_letters.DeadLetter) -> pb.DeadLetter:
    return pb.DeadLetter(
        message_id=letter.message_id,
        type=letter.type,
        exchange=letter.exchange,
        routing_key=letter.routing_key,
        source_queue=letter.source_queue,
        reason=letter.reason,
        deaths=letter.deaths,
        body_bytes=letter.body_bytes,
        published_at=to_proto(letter.timestamp),
    )


class DeadLetterServicer(pb_grpc.DeadLetterServiceServicer):
    def __init__(self, amqp_url: str, inbox: ContractQueue) -> None:
        self._amqp_url = amqp_url
        self._queue = inbox.dead_letter_queue

    async def ListDeadLetters(
        self, request: pb.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        if request.page_size:
            size = paging.page_size(request.page_size)
        else:
            # The deprecated `limit`, as older clients send it.
            if not 0 <= request.limit <= MAX_LIMIT:
                raise InvalidArgument(
                    "limit", f"is {request.limit}; use 1-{MAX_LIMIT}, or 0 for 100"
                )
            size = request.limit or DEFAULT_LIMIT
        query = ("dead-letters", self._queue)
        after = paging.decode(request.page_token, query, (int, str, str))
        try:
            found = await dead_letters.list_dead_letters(
                self._amqp_url,
                self._queue,
                limit=size + 1,
                after=(after[0], after[1], after[2]) if after else None,
            )
        except amqp.BROKER_ERRORS as exc:
            raise _unavailable(exc, self._amqp_url) from None
        token = paging.encode(list(found[size - 1].position), query) if len(found) > size else ""
        return pb.ListDeadLettersResponse(
            queue=self._queue,
            dead_letters=[dead_letter_proto(d) for d in found[:size]],
            next_page_token=token,
        )

    async def ReplayDeadLetters(
        self, request: pb.ReplayDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReplayDeadLettersResponse:
        wanted = set(request.message_ids)
        if request.all == bool(wanted):
            raise InvalidArgument("message_ids", "give the message_ids to replay, or all=true")
        if len(wanted) > MAX_LIMIT:
            raise InvalidArgument("message_ids", f"at most {MAX_LIMIT} per call")
        for index, message_id in enumerate(request.message_ids):
            validation.identifier(message_id, f"message_ids[{index}]")
        try:
            result = await dead_letters.replay(
                self._amqp_url,
                self._queue,
                select=lambda letter: request.all or letter.message_id in wanted,
                # All: a page at a time. By id: wherever they are in the queue.
                limit=MAX_LIMIT if request.all else dead_letters.MAX_SCAN,
                enough=None if request.all else len(wanted),
            )
        except amqp.BROKER_ERRORS as exc:
            raise _unavailable(exc, self._amqp_url) from None
        return pb.ReplayDeadLettersResponse(replayed_message_ids=result.replayed, kept=result.kept)


def _unavailable(exc: BaseException, amqp_url: str) -> Unavailable:
    """Broker trouble is UNAVAILABLE: the request was fine, the broker is away or refuses
    the service (an operator fixes that; the call then succeeds as it is)."""
    return Unavailable(f"{amqp.explain(exc, amqp_url)}; retry once RabbitMQ is back")


def register(server: grpc.aio.Server, amqp_url: str, inbox: ContractQueue) -> list[str]:
    pb_grpc.add_DeadLetterServiceServicer_to_server(DeadLetterServicer(amqp_url, inbox), server)
    return [pb.DESCRIPTOR.services_by_name["DeadLetterService"].full_name]
