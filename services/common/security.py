"""Transport security and bearer-token authorisation (docs/spec.md §6), for servers and clients.

Servers: TLS when a certificate and key are configured, mTLS when a client CA is too, and
bearer tokens with scopes checked by `AuthInterceptor` when tokens are configured. Every RPC
needs one scope, looked up by its full method name in `METHOD_SCOPES`; a method missing from
the table needs `admin`, so a new RPC is never left open by accident. Health checks need no
token (orchestrators probe them); reflection (v1 and v1alpha) needs `read`.

Clients (`backorderctl`, the container healthcheck): `ClientSecurity`, from the client package
(backorder.client), makes the channel and the `authorization` metadata from flags or the
BACKORDER_* client variables.

Secrets (tokens, private keys) are never put in a log line or an error message: tokens are
referred to by position in their list, or by a short fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

# The client side (backorderctl, the healthcheck, the demo) is the client package's.
from backorder.client.security import ClientSecurity as ClientSecurity
from backorder.client.security import SecurityConfigError as SecurityConfigError
from backorder.client.security import read_pem

log = logging.getLogger(__name__)

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)

_DEAD_LETTERS = "/backorder.operations.v1.DeadLetterService/"

# The scope each RPC needs, by full method name. Each service declares its own RPCs'
# scopes (`declare_scopes`, from its entrypoint); the methods every server shares are
# here. Reads (Get*, List*, Watch*) need `read`, mutations `write`, policy and dead-letter
# operations `admin`. A method missing from this table needs `admin` (safe default), so
# forgetting it locks it down rather than opening it.
METHOD_SCOPES: dict[str, str] = {
    # DeadLetterService (both servers, each for its own inbox)
    _DEAD_LETTERS + "ListDeadLetters": ADMIN,
    _DEAD_LETTERS + "ReplayDeadLetters": ADMIN,
    # Server reflection describes the whole API, and health's List names every service:
    # readers may see them, strangers may not (Check and Watch are public, below).
    "/grpc.health.v1.Health/List": READ,
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": READ,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": READ,
}
# Callable without a token: orchestrators and load balancers probe these.
PUBLIC_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})

# RFC 6750 b64token characters; at least 16 of them, so "admin" or "secret" are refused.
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/-]{16,}=*$")
MIN_TOKEN_LENGTH = 16


def declare_scopes(scopes: Mapping[str, str]) -> None:
    """Adds a service's RPCs (full method name -> scope) to METHOD_SCOPES."""
    METHOD_SCOPES.update(scopes)


def required_scope(method: str) -> str | None:
    """The scope `method` (full name, `/pkg.Service/Method`) needs; None for public methods."""
    if method in PUBLIC_METHODS:
        return None
    return METHOD_SCOPES.get(method, ADMIN)


def fingerprint(token: str) -> str:
    """A short, non-reversible id of a token, for logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class TokenTable:
    """Accepted bearer tokens and their scopes, keyed by the SHA-256 of the token."""

    scopes_by_digest: Mapping[bytes, frozenset[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.scopes_by_digest)

    def __len__(self) -> int:
        return len(self.scopes_by_digest)

    def scopes(self, token: str) -> frozenset[str] | None:
        """The scopes of `token`, or None when it is not one of ours."""
        return self.scopes_by_digest.get(hashlib.sha256(token.encode()).digest())

    def __repr__(self) -> str:  # never print digests either: they identify tokens
        return f"TokenTable({len(self)} tokens)"


def parse_tokens(sources: list[tuple[str, str]]) -> TokenTable:
    """Tokens from `(source name, text)` pairs; entries `TOKEN:SCOPE[,SCOPE…]` separated by
    whitespace, newlines or `;`; lines starting with `#` are comments."""
    table: dict[bytes, frozenset[str]] = {}
    for source, text in sources:
        entries = [
            entry
            for line in text.splitlines()
            if not line.strip().startswith("#")
            for entry in re.split(r"[\s;]+", line)
            if entry
        ]
        for number, entry in enumerate(entries, start=1):
            where = f"{source} entry {number}"
            token, sep, scope_list = entry.partition(":")
            if not sep:
                raise SecurityConfigError(
                    f"{where}: expected TOKEN:SCOPE[,SCOPE...] (scopes: {', '.join(SCOPES)})"
                )
            if not _TOKEN.match(token):
                raise SecurityConfigError(
                    f"{where}: a token needs at least {MIN_TOKEN_LENGTH} characters of "
                    "A-Z a-z 0-9 . _ ~ + / - (e.g. from `openssl rand -hex 32`)"
                )
            scopes = frozenset(s for s in scope_list.split(",") if s)
            unknown = sorted(scopes - set(SCOPES))
            if not scopes or unknown:
                raise SecurityConfigError(
                    f"{where}: unknown or missing scope {', '.join(unknown) or '(none)'}; "
                    f"expected some of {', '.join(SCOPES)}"
                )
            digest = hashlib.sha256(token.encode()).digest()
            if digest in table:
                raise SecurityConfigError(f"{where}: this token is listed twice")
            table[digest] = scopes
    return TokenTable(table)


@dataclass(frozen=True)
class ServerTls:
    """PEM certificate chain and key of a server; with a client CA, clients must present a
    certificate it signed (mTLS)."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    @classmethod
    def from_files(
        cls, cert: tuple[str, str], key: tuple[str, str], client_ca: tuple[str, str] | None
    ) -> ServerTls:
        """Each argument is (setting name, path). Checks that key and certificate match, so a
        mistake stops start-up instead of failing every handshake later."""
        cert_pem = read_pem(*cert, "CERTIFICATE")
        key_pem = read_pem(*key, "PRIVATE KEY")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert[1], key[1], password=_no_passphrase)
        except (ssl.SSLError, OSError, _EncryptedKey) as exc:
            reason = "it is encrypted" if isinstance(exc, _EncryptedKey) else "they do not match"
            raise SecurityConfigError(
                f"{key[0]}: the private key does not fit {cert[0]} ({reason}; "
                "use an unencrypted PEM key for this certificate)"
            ) from None
        ca_pem = None
        if client_ca is not None:
            ca_pem = read_pem(*client_ca, "CERTIFICATE")
        return cls(cert_pem, key_pem, ca_pem)


class _EncryptedKey(Exception):
    pass


def _no_passphrase() -> bytes:
    raise _EncryptedKey


# --- the server interceptor --------------------------------------------------------------------


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks `authorization: Bearer <token>` against the token table and the method's scope.

    No token or an unknown one: UNAUTHENTICATED. A known token without the scope:
    PERMISSION_DENIED. Public methods (health) pass without a token. A refused call's body
    is never parsed (its handler takes the bytes as they came): a stranger's bytes reach no
    parser. grpc_errors.ErrorInterceptor, before this one, counts and logs the refusals.
    """

    def __init__(
        self, tokens: TokenTable, on_denied: Callable[[str, str], None] | None = None
    ) -> None:
        self._tokens = tokens
        self._on_denied = on_denied

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        scope = required_scope(method)
        handler = await continuation(handler_call_details)
        if scope is None or handler is None:
            return handler
        token = bearer_token(handler_call_details.invocation_metadata or ())
        if token is None:
            return self._deny(
                handler,
                method,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token: send metadata 'authorization: Bearer <token>'",
            )
        scopes = self._tokens.scopes(token)
        if scopes is None:
            log.debug(
                "unknown bearer token", extra={"method": method, "token_id": fingerprint(token)}
            )
            return self._deny(
                handler, method, grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not valid"
            )
        if scope not in scopes:
            log.debug(
                "bearer token lacks scope",
                extra={"method": method, "scope": scope, "token_id": fingerprint(token)},
            )
            return self._deny(
                handler,
                method,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method.rsplit('/', 1)[-1]} needs a token with scope '{scope}'",
            )
        return handler

    def _deny(
        self, handler: grpc.RpcMethodHandler, method: str, code: grpc.StatusCode, message: str
    ) -> grpc.RpcMethodHandler:
        if self._on_denied is not None:
            self._on_denied(method, code.name)
        return denying_handler(handler, code, message)


def bearer_token(metadata: Any) -> str | None:
    """The token of an `authorization: Bearer …` entry, if any."""
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


def denying_handler(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that only aborts with `code`, without
    parsing the request (authenticate first: a body is parsed for callers we know only)."""

    async def deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    kinds = {
        "unary_unary": grpc.unary_unary_rpc_method_handler,
        "unary_stream": grpc.unary_stream_rpc_method_handler,
        "stream_unary": grpc.stream_unary_rpc_method_handler,
        "stream_stream": grpc.stream_stream_rpc_method_handler,
    }
    for attribute, make in kinds.items():
        if getattr(handler, attribute) is not None:
            return make(deny, response_serializer=handler.response_serializer)
    raise ValueError("handler of unknown kind")
