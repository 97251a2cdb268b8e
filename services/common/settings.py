"""Settings read from the environment (SPEC §5), validated once at start-up."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

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
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
        )


def parse_address(name: str, value: str) -> Address:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"{name}={value!r}: expected HOST:PORT, e.g. 127.0.0.1:50051")
    return Address(host, int(port))


def _postgres_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise SettingsError(
            f"{name}: expected postgresql://USER@HOST:PORT/DBNAME, got scheme {parts.scheme!r}"
        )
    if not parts.path.strip("/"):
        raise SettingsError(f"{name}: the URL names no database (postgresql://…/DBNAME)")
    _check_port(name, parts)
    return value


def _amqp_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise SettingsError(f"{name}: expected amqp://USER:PASSWORD@HOST:PORT/VHOST")
    _check_port(name, parts)
    return value


def _check_port(name: str, parts: SplitResult) -> None:
    try:
        _ = parts.port
    except ValueError:
        raise SettingsError(f"{name}: the port is not a number from 1 to 65535") from None


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
