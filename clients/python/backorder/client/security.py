"""How a client reaches a server: plaintext or TLS (mTLS with a client certificate), and the
bearer token it sends. The same settings, from the same variables, as `backorderctl`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

TRUE = ("1", "true", "yes")


class SecurityConfigError(ValueError):
    """A token or TLS file is malformed or unreadable; the message names the setting and never
    quotes a secret."""


def read_pem(name: str, path: str, kind: str) -> bytes:
    """The bytes of the PEM file `path` (setting `name`), checked to hold a `kind` block."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{name}={path}: cannot read it ({exc.strerror})") from None
    if f"{kind}-----".encode() not in data:
        raise SecurityConfigError(f"{name}={path}: expected a PEM file with a {kind}")
    return data


@dataclass
class ClientSecurity:
    """How a client reaches a server: plaintext or TLS (with an optional client certificate
    for mTLS), and the bearer token to send."""

    tls: bool = False
    ca: bytes | None = None
    cert_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)
    server_name: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSecurity:
        """From the variables `backorderctl` reads: BACKORDER_TOKEN (or BACKORDER_TOKEN_FILE),
        BACKORDER_TLS=1, BACKORDER_CA_FILE, BACKORDER_CLIENT_CERT_FILE and
        BACKORDER_CLIENT_KEY_FILE (mTLS), BACKORDER_TLS_SERVER_NAME. Any TLS file implies TLS.
        Raises SecurityConfigError."""
        env = os.environ if env is None else env
        return cls.from_options(
            tls=env.get("BACKORDER_TLS", "").lower() in TRUE,
            ca_file=env.get("BACKORDER_CA_FILE") or None,
            cert_file=env.get("BACKORDER_CLIENT_CERT_FILE") or None,
            key_file=env.get("BACKORDER_CLIENT_KEY_FILE") or None,
            server_name=env.get("BACKORDER_TLS_SERVER_NAME") or None,
            token=env.get("BACKORDER_TOKEN") or None,
            token_file=env.get("BACKORDER_TOKEN_FILE") or None,
        )

    @classmethod
    def from_options(
        cls,
        *,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        server_name: str | None = None,
        token: str | None = None,
        token_file: str | None = None,
    ) -> ClientSecurity:
        """From flags/environment; any TLS file implies TLS. Raises SecurityConfigError."""
        if bool(cert_file) != bool(key_file):
            raise SecurityConfigError(
                "a client certificate needs both BACKORDER_CLIENT_CERT_FILE and "
                "BACKORDER_CLIENT_KEY_FILE (--cert-file and --key-file)"
            )
        if token_file and not token:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise SecurityConfigError(
                    f"BACKORDER_TOKEN_FILE={token_file}: cannot read it ({exc.strerror})"
                ) from None
        return cls(
            tls=bool(tls or ca_file or cert_file),
            ca=read_pem("BACKORDER_CA_FILE", ca_file, "CERTIFICATE") if ca_file else None,
            cert_chain=(
                read_pem("BACKORDER_CLIENT_CERT_FILE", cert_file, "CERTIFICATE")
                if cert_file
                else None
            ),
            private_key=(
                read_pem("BACKORDER_CLIENT_KEY_FILE", key_file, "PRIVATE KEY") if key_file else None
            ),
            server_name=server_name or None,
            token=token or None,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        if not self.tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.private_key,
            certificate_chain=self.cert_chain,
        )

    def channel_options(self) -> list[tuple[str, Any]]:
        if self.tls and self.server_name:
            return [("grpc.ssl_target_name_override", self.server_name)]
        return []

    def metadata(self) -> list[tuple[str, str]]:
        # Sent as plain metadata rather than call credentials, which gRPC refuses to send over
        # a plaintext channel (tokens on a trusted loopback network are allowed by the
        # services' security rules).
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def channel(self, target: str) -> grpc.Channel:
        """A plain blocking channel (no deadline or retry defaults: see `backorder.client`)."""
        credentials = self.channel_credentials()
        if credentials is None:
            return grpc.insecure_channel(target, options=self.channel_options())
        return grpc.secure_channel(target, credentials, options=self.channel_options())

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        """A plain asyncio channel (no deadline or retry defaults: see `backorder.client`)."""
        credentials = self.channel_credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(target, options=self.channel_options())
        return grpc.aio.secure_channel(target, credentials, options=self.channel_options())
