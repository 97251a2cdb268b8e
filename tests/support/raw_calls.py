"""Calling any gRPC method with raw bytes: for tests of what a server does with a body that
is not the method's request message, on unary and streaming methods alike."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor

# Bytes no request message parses: a tag whose varint never ends; a length past the end.
TRUNCATED_VARINT = b"\x80"
TRUNCATED_FIELD = b"\x0a\x05ab"


def call_raw(
    channel: grpc.Channel,
    method: MethodDescriptor,
    body: bytes,
    metadata: list[tuple[str, str]],
    timeout: float = 10,
) -> tuple[grpc.StatusCode, str, list[bytes]]:
    """Calls `method` with `body` as its only request message; (code, details, responses).
    A stream that is still open after `timeout` counts as OK with what it sent so far."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    responses: list[bytes] = []
    try:
        if method.client_streaming and method.server_streaming:
            stream = channel.stream_stream(path)(iter([body]), metadata=metadata, timeout=timeout)
            for response in stream:
                responses.append(response)
                stream.cancel()
        elif method.server_streaming:
            stream = channel.unary_stream(path)(body, metadata=metadata, timeout=timeout)
            for response in stream:
                responses.append(response)
                stream.cancel()
        elif method.client_streaming:
            responses.append(
                channel.stream_unary(path)(iter([body]), metadata=metadata, timeout=timeout)
            )
        else:
            responses.append(channel.unary_unary(path)(body, metadata=metadata, timeout=timeout))
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.CANCELLED and responses:
            return grpc.StatusCode.OK, "", responses  # we ended it after the first message
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and method.server_streaming:
            return grpc.StatusCode.OK, "", responses  # a valid stream with nothing to say yet
        return code, error.details() or "", responses
    return grpc.StatusCode.OK, "", responses


def invalid_utf8(method: MethodDescriptor) -> bytes | None:
    """The method's request with its first string field holding bytes that are not UTF-8."""
    for field in method.input_type.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            tag = (field.number << 3) | 2
            return bytes([tag, 2]) + b"\xff\xfe" if tag < 0x80 else None
    return None


def malformed_bodies(method: MethodDescriptor) -> list[bytes]:
    """Bodies that are not `method`'s request: truncated, and invalid UTF-8 in a string."""
    bodies = [TRUNCATED_VARINT, TRUNCATED_FIELD]
    utf8 = invalid_utf8(method)
    if utf8 is not None:
        bodies.append(utf8)
    return bodies
