"""Settings read from the environment (docs/spec.md §5), validated once at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qs, urlencode, urlsplit

from services.common.security import SecurityConfigError, ServerTls, TokenTable, parse_tokens

DEFAULTS = {
    "INVENTORY_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/backorder_inventory",
    "ALLOCATION_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/backorder_allocation",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
    "INVENTORY_GRPC_ADDR": "127.0.0.1:50051",
    "ALLOCATION_GRPC_ADDR": "127.0.0.1:50052",
    "INVENTORY_METRICS_ADDR": "127.0.0.1:9101",
    "ALLOCATION_METRICS_ADDR": "127.0.0.1:9102",
    "LOG_LEVEL": "INFO",
}
# Connections of a service's asyncpg pool (<SERVICE>_DB_POOL_SIZE). Each concurrent RPC or
# consumed event holds one for its transaction; more than the callers only idles in Postgres.
DEFAULT_DB_POOL_SIZE = 10
MAX_DB_POOL_SIZE = 200
# Security (docs/spec.md §6), all optional. Tokens are shared by both services; TLS files are per
# service (its own certificate): INVENTORY_TLS_CERT_FILE, ALLOCATION_TLS_KEY_FILE, …
TOKENS = "BACKORDER_TOKENS"
TOKENS_FILE = "BACKORDER_TOKENS_FILE"
TLS_CERT_FILE = "TLS_CERT_FILE"
TLS_KEY_FILE = "TLS_KEY_FILE"
TLS_CLIENT_CA_FILE = "TLS_CLIENT_CA_FILE"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# In every token of deploy/.env.example: a deployment that kept one would accept a token
# anyone can read in this repository.
TOKEN_PLACEHOLDER = "change-me"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ServerSecurity:
    """TLS (None: plaintext) and accepted bearer tokens (empty: no token needed)."""

    tls: ServerTls | None = None
    tokens: TokenTable = field(default_factory=TokenTable)

    @property
    def authenticated(self) -> bool:
        """Whether every caller proves who it is: a bearer token, or a client certificate
        (mTLS). TLS alone only encrypts: anyone may connect. Off loopback this is required
        unless --insecure (docs/spec.md §6)."""
        return bool(self.tokens) or (self.tls is not None and self.tls.client_ca is not None)

    def describe(self) -> dict[str, object]:
        """What is configured, for the start-up log line (no secrets)."""
        return {
            "tls": "mtls" if self.tls and self.tls.client_ca else "tls" if self.tls else "off",
            "tokens": len(self.tokens),
        }


@dataclass(frozen=True)
class ServiceSettings:
    """Everything one service process needs to start."""

    service: str
    database_url: str
    amqp_url: str
    grpc_addr: Address
    metrics_addr: Address
    log_level: str
    # Address of the peer service's gRPC server (used by tools such as the demo).
    peer_grpc_addr: Address
    security: ServerSecurity = field(default_factory=ServerSecurity)
    db_pool_size: int = DEFAULT_DB_POOL_SIZE

    @classmethod
    def from_env(cls, service: str, env: Mapping[str, str] | None = None) -> ServiceSettings:
        env = os.environ if env is None else env
        if service not in ("inventory", "allocation"):
            raise ValueError(f"unknown service {service!r}")
        peer = "allocation" if service == "inventory" else "inventory"
        prefix = service.upper()

        def get(name: str) -> str:
            return env.get(name) or DEFAULTS[name]

        log_level = get("LOG_LEVEL").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL={log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
        return cls(
            service=service,
            database_url=_postgres_url(f"{prefix}_DATABASE_URL", get(f"{prefix}_DATABASE_URL")),
            amqp_url=_amqp_url("AMQP_URL", get("AMQP_URL")),
            grpc_addr=parse_address(f"{prefix}_GRPC_ADDR", get(f"{prefix}_GRPC_ADDR")),
            metrics_addr=parse_address(f"{prefix}_METRICS_ADDR", get(f"{prefix}_METRICS_ADDR")),
            log_level=log_level,
            peer_grpc_addr=parse_address(
                f"{peer.upper()}_GRPC_ADDR", get(f"{peer.upper()}_GRPC_ADDR")
            ),
            security=server_security(prefix, env),
            db_pool_size=_pool_size(f"{prefix}_DB_POOL_SIZE", env.get(f"{prefix}_DB_POOL_SIZE")),
        )


def server_security(prefix: str, env: Mapping[str, str]) -> ServerSecurity:
    """TLS files of the service `prefix` (INVENTORY/ALLOCATION) and the shared token list."""
    try:
        return ServerSecurity(tls=_server_tls(prefix, env), tokens=_tokens(env))
    except SecurityConfigError as exc:
        raise SettingsError(str(exc)) from None


def _server_tls(prefix: str, env: Mapping[str, str]) -> ServerTls | None:
    names = [f"{prefix}_{suffix}" for suffix in (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CLIENT_CA_FILE)]
    cert, key, client_ca = ((name, env.get(name, "")) for name in names)
    if not cert[1] and not key[1]:
        if client_ca[1]:
            raise SettingsError(
                f"{client_ca[0]} needs {cert[0]} and {key[0]}: mTLS is TLS plus client certificates"
            )
        return None
    for name, value in (cert, key):
        if not value:
            raise SettingsError(f"{name} is missing: TLS needs both {cert[0]} and {key[0]}")
    return ServerTls.from_files(cert, key, client_ca if client_ca[1] else None)


def _tokens(env: Mapping[str, str]) -> TokenTable:
    sources = []
    if env.get(TOKENS):
        sources.append((TOKENS, env[TOKENS]))
    path = env.get(TOKENS_FILE)
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                sources.append((f"{TOKENS_FILE} ({path})", file.read()))
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise SettingsError(f"{TOKENS_FILE}={path}: cannot read it ({reason})") from None
    refuse_placeholder_tokens(sources)
    table = parse_tokens(sources)
    if sources and not table:
        raise SettingsError(f"{TOKENS} / {TOKENS_FILE} are set but list no token")
    return table


def refuse_placeholder_tokens(sources: list[tuple[str, str]]) -> None:
    """Stops start-up when a token of `(source name, text)` still is an example's
    placeholder (comments in a tokens file may mention it). Never quotes the token."""
    for source, text in sources:
        for line in text.splitlines():
            if not line.strip().startswith("#") and TOKEN_PLACEHOLDER in line.lower():
                raise SettingsError(
                    f"{source} holds a placeholder token (one containing {TOKEN_PLACEHOLDER!r}, "
                    "as in deploy/.env.example): make real ones with `openssl rand -hex 32`"
                )


def parse_address(name: str, value: str) -> Address:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}={value!r}: expected HOST:PORT, e.g. 127.0.0.1:50051")
    return Address(host, int(port))


def _pool_size(name: str, value: str | None) -> int:
    if not value:
        return DEFAULT_DB_POOL_SIZE
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_DB_POOL_SIZE:
        raise SettingsError(
            f"{name}={value!r}: expected a whole number of connections from 1 to {MAX_DB_POOL_SIZE}"
        )
    return int(value)


# target_session_attrs values (libpq's, which asyncpg reads from the URL) under which every
# connection the services open can write. Several hosts and no value: read-write is added,
# so the services always reach the primary of a primary/standby pair.
WRITABLE_SESSION_ATTRS = ("read-write", "primary")
_ALL_SESSION_ATTRS = (*WRITABLE_SESSION_ATTRS, "any", "standby", "prefer-standby", "read-only")


def _postgres_url(name: str, value: str) -> str:
    """Checks a database URL: one host (postgresql://USER@HOST:PORT/DB) or libpq's multi-host
    form (postgresql://USER@H1:P1,H2:P2/DB?target_session_attrs=read-write), docs/spec.md §5.
    Returns it, with target_session_attrs=read-write added when it lists several hosts and
    sets none."""
    parts = urlsplit(value)
    expected = "expected postgresql://USER@HOST:PORT/DBNAME or postgresql://USER@H1:P1,H2:P2/DBNAME"
    if parts.scheme not in ("postgresql", "postgres"):
        raise SettingsError(f"{name}: {expected}, got scheme {parts.scheme!r}")
    hosts = postgres_hosts(parts.netloc)
    if not hosts or any(not host for host, _ in hosts):
        raise SettingsError(f"{name}: the URL names no host ({expected})")
    for _, port in hosts:
        if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
            raise SettingsError(f"{name}: the port is not a number from 1 to 65535")
    if not parts.path.strip("/"):
        raise SettingsError(f"{name}: the URL names no database (postgresql://…/DBNAME)")
    query = parse_qs(parts.query)
    attrs = query.get("target_session_attrs", [])
    if attrs and attrs[-1] not in _ALL_SESSION_ATTRS:
        raise SettingsError(
            f"{name}: target_session_attrs={attrs[-1]!r}: expected one of "
            + ", ".join(_ALL_SESSION_ATTRS)
        )
    # `any` is libpq's default and harmless with one host; with several it may pick a
    # standby, and the other values ask for one: the service could not write there.
    if attrs and attrs[-1] not in WRITABLE_SESSION_ATTRS and (attrs[-1] != "any" or len(hosts) > 1):
        raise SettingsError(
            f"{name}: target_session_attrs={attrs[-1]!r} may pick a standby, where the "
            "service cannot write: use read-write (the default for several hosts)"
        )
    if not attrs and len(hosts) > 1:
        extra = urlencode({"target_session_attrs": "read-write"})
        return parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra).geturl()
    return value


def postgres_hosts(netloc: str) -> list[tuple[str, str | None]]:
    """(host, port or None) of each host of a database URL's netloc (user info dropped):
    `u@h1:5432,[::1]:5433,h3` gives [("h1", "5432"), ("::1", "5433"), ("h3", None)]."""
    hosts = []
    for item in netloc.rpartition("@")[2].split(","):
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else None
        else:
            host, sep, port_text = item.partition(":")
            port = port_text if sep else None
        hosts.append((host, port))
    return hosts


def _amqp_url(name: str, value: str) -> str:
    """One broker URL, or several comma-separated: the nodes of one cluster, so one vhost."""
    entries = value.split(",")
    vhosts = set()
    for n, entry in enumerate(entries, start=1):
        where = f"{name} (broker {n} of {len(entries)})" if len(entries) > 1 else name
        parts = urlsplit(entry.strip())
        if not entry.strip():
            raise SettingsError(f"{where}: empty; list brokers as URL,URL,… without empty entries")
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise SettingsError(f"{where}: expected amqp://USER:PASSWORD@HOST:PORT/VHOST")
        _check_port(where, parts)
        vhosts.add(parts.path.lstrip("/") or "/")
    if len(vhosts) > 1:
        raise SettingsError(
            f"{name}: the brokers name different vhosts ({', '.join(sorted(vhosts))}); "
            "list the nodes of one cluster, with the same vhost"
        )
    return value


def _check_port(name: str, parts: SplitResult) -> None:
    try:
        _ = parts.port
    except ValueError:
        raise SettingsError(f"{name}: the port is not a number from 1 to 65535") from None


def redact_url(url: str) -> str:
    """The URL (or comma-separated URLs) with any password replaced, safe for logs."""
    if "," in url:
        return ",".join(redact_url(entry) for entry in url.split(","))
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
