"""Security settings (docs/spec.md §6): token lists, TLS files, the bind check, the scope table."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from backorder.allocation.v1 import allocation_pb2
from backorder.inventory.v1 import inventory_pb2
from backorder.operations.v1 import dead_letters_pb2

# Each service declares its RPCs' scopes when its entrypoint is imported (as its server does).
from services.allocation.entrypoints import grpc as _allocation_entrypoint  # noqa: F401
from services.common.runtime import InsecureBindRefused, check_bind
from services.common.security import (
    ADMIN,
    METHOD_SCOPES,
    READ,
    WRITE,
    ClientSecurity,
    SecurityConfigError,
    parse_tokens,
    required_scope,
)
from services.common.settings import (
    Address,
    ServerSecurity,
    ServiceSettings,
    SettingsError,
)
from services.inventory.entrypoints import grpc as _inventory_entrypoint  # noqa: F401
from tests.support.certs import Authority
from tests.support.processes import BIN, free_port


def token() -> str:
    return secrets.token_hex(16)


# --- tokens ------------------------------------------------------------------------------------


def test_tokens_from_variable_and_file_with_their_scopes() -> None:
    a, b, c = token(), token(), token()
    table = parse_tokens(
        [("BACKORDER_TOKENS", f"{a}:read;{b}:read,write"), ("file", f"# ops\n\n{c}:admin\n")]
    )
    assert table.scopes(a) == {READ}
    assert table.scopes(b) == {READ, WRITE}
    assert table.scopes(c) == {ADMIN}
    assert table.scopes(token()) is None
    assert a not in repr(table)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{t}", "expected TOKEN:SCOPE"),
        ("{t}:", "missing scope"),
        ("{t}:reed", "reed"),
        ("short:read", "at least 16 characters"),
        ("{t}!x:read", "at least 16 characters"),
        ("{t}:read {t}:write", "listed twice"),
    ],
)
def test_malformed_token_lists_are_refused_without_echoing_the_token(
    entry: str, message: str
) -> None:
    secret = token()
    text = entry.format(t=secret)
    with pytest.raises(SecurityConfigError) as caught:
        parse_tokens([("BACKORDER_TOKENS", text)])
    assert message in str(caught.value)
    assert "BACKORDER_TOKENS entry" in str(caught.value)
    assert secret not in str(caught.value)
    assert "short" not in str(caught.value).replace("shorter", "")


def test_settings_read_tokens_file_and_refuse_an_unreadable_one(tmp_path: Path) -> None:
    secret = token()
    path = tmp_path / "tokens"
    path.write_text(f"{secret}:read,write\n")
    settings = ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS_FILE": str(path)})
    assert settings.security.tokens.scopes(secret) == {READ, WRITE}
    assert settings.security.authenticated
    with pytest.raises(SettingsError, match=r"BACKORDER_TOKENS_FILE=.*cannot read"):
        ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS_FILE": str(tmp_path / "no")})
    path.write_text("# nothing yet\n")
    with pytest.raises(SettingsError, match="list no token"):
        ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS_FILE": str(path)})


def test_no_security_settings_means_plaintext_and_no_tokens() -> None:
    security = ServiceSettings.from_env("inventory", {}).security
    assert security.tls is None and not security.tokens and not security.authenticated


def test_db_pool_size_per_service_with_a_default() -> None:
    env = {"ALLOCATION_DB_POOL_SIZE": "32"}
    assert ServiceSettings.from_env("allocation", env).db_pool_size == 32
    assert ServiceSettings.from_env("inventory", env).db_pool_size == 10
    for bad in ("0", "-3", "ten", "201"):
        with pytest.raises(SettingsError, match=r"ALLOCATION_DB_POOL_SIZE=.*from 1 to 200"):
            ServiceSettings.from_env("allocation", {"ALLOCATION_DB_POOL_SIZE": bad})


def test_database_urls_take_one_host_or_libpq_multi_host_syntax() -> None:
    one = "postgresql://u:pw@db:5432/stock"
    assert (
        ServiceSettings.from_env("inventory", {"INVENTORY_DATABASE_URL": one}).database_url == one
    )
    for single in ("any", "primary"):
        url = f"postgresql://u@db/stock?target_session_attrs={single}"
        env = {"ALLOCATION_DATABASE_URL": url}
        assert ServiceSettings.from_env("allocation", env).database_url == url
    pair = "postgresql://u@h1:5432,h2:5433/stock?target_session_attrs=read-write"
    env = {"ALLOCATION_DATABASE_URL": pair}
    assert ServiceSettings.from_env("allocation", env).database_url == pair
    # Several hosts and no target_session_attrs: read-write, so a standby is never chosen.
    bare = "postgresql://u@h1,[::1]:5433/stock?sslmode=disable"
    env = {"ALLOCATION_DATABASE_URL": bare}
    assert (
        ServiceSettings.from_env("allocation", env).database_url
        == f"{bare}&target_session_attrs=read-write"
    )
    refused = {
        "postgresql://u@h1:5432,h2:99999/stock": "port is not a number",
        "postgresql://u@h1:5432,:5433/stock": "names no host",
        "postgresql://u@h1,h2/": "names no database",
        "mysql://u@h1/stock": "scheme 'mysql'",
        "postgresql://u@h1,h2/stock?target_session_attrs=standby": "cannot write",
        "postgresql://u@h1,h2/stock?target_session_attrs=any": "may pick a standby",
        "postgresql://u@h1/stock?target_session_attrs=read-only": "cannot write",
        "postgresql://u@h1/stock?target_session_attrs=leader": "expected one of",
    }
    for url, message in refused.items():
        with pytest.raises(SettingsError, match=f"ALLOCATION_DATABASE_URL: .*{message}"):
            ServiceSettings.from_env("allocation", {"ALLOCATION_DATABASE_URL": url})


# --- TLS files ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("ca"), "unit")


def test_tls_and_mtls_settings(authority: Authority) -> None:
    server = authority.issue_server("inv", ["localhost"])
    env = {
        "INVENTORY_TLS_CERT_FILE": str(server.cert_file),
        "INVENTORY_TLS_KEY_FILE": str(server.key_file),
    }
    tls = ServiceSettings.from_env("inventory", env).security
    # TLS alone encrypts but authenticates no one.
    assert tls.tls is not None and tls.tls.client_ca is None and not tls.authenticated
    assert tls.describe() == {"tls": "tls", "tokens": 0}
    # Per service: the allocation service does not pick up the inventory's certificate.
    assert ServiceSettings.from_env("allocation", env).security.tls is None
    mtls = ServiceSettings.from_env(
        "inventory", {**env, "INVENTORY_TLS_CLIENT_CA_FILE": str(authority.cert_file)}
    ).security
    assert mtls.describe() == {"tls": "mtls", "tokens": 0} and mtls.authenticated
    assert server.key not in repr(mtls).encode()


def test_bad_tls_settings_name_the_variable(authority: Authority, tmp_path: Path) -> None:
    server = authority.issue_server("alloc", ["localhost"])
    other = authority.issue_server("other", ["localhost"])
    cert, key = str(server.cert_file), str(server.key_file)
    cases = [
        ({"ALLOCATION_TLS_CERT_FILE": cert}, "ALLOCATION_TLS_KEY_FILE is missing"),
        ({"ALLOCATION_TLS_CLIENT_CA_FILE": cert}, "needs ALLOCATION_TLS_CERT_FILE"),
        (
            {"ALLOCATION_TLS_CERT_FILE": str(tmp_path / "nope"), "ALLOCATION_TLS_KEY_FILE": key},
            "ALLOCATION_TLS_CERT_FILE=.*cannot read",
        ),
        (
            {"ALLOCATION_TLS_CERT_FILE": key, "ALLOCATION_TLS_KEY_FILE": key},
            "ALLOCATION_TLS_CERT_FILE=.*expected a PEM file with a CERTIFICATE",
        ),
        (
            {"ALLOCATION_TLS_CERT_FILE": cert, "ALLOCATION_TLS_KEY_FILE": str(other.key_file)},
            "ALLOCATION_TLS_KEY_FILE: the private key does not fit",
        ),
    ]
    for env, message in cases:
        with pytest.raises(SettingsError, match=message) as caught:
            ServiceSettings.from_env("allocation", env)
        assert "PRIVATE KEY-----" not in str(caught.value)


def test_client_security_needs_both_halves_of_a_client_certificate(
    authority: Authority,
) -> None:
    client = authority.issue_client("c")
    with pytest.raises(SecurityConfigError, match="both"):
        ClientSecurity.from_options(cert_file=str(client.cert_file))
    security = ClientSecurity.from_options(
        ca_file=str(authority.cert_file),
        cert_file=str(client.cert_file),
        key_file=str(client.key_file),
    )
    assert security.tls and security.metadata() == []
    assert client.key not in repr(security).encode()


# --- the bind check ----------------------------------------------------------------------------


def test_non_loopback_bind_needs_tls_or_tokens_or_insecure() -> None:
    public, loopback = Address("0.0.0.0", 50051), Address("127.0.0.1", 50051)
    plain = ServerSecurity()
    with_tokens = ServerSecurity(tokens=parse_tokens([("t", f"{token()}:read")]))
    with pytest.raises(InsecureBindRefused, match="--insecure"):
        check_bind(public, insecure=False, security=plain)
    check_bind(public, insecure=True, security=plain)
    check_bind(public, insecure=False, security=with_tokens)
    check_bind(loopback, insecure=False, security=plain)


def run_serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "backorder-inventory"), "serve"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_public_plaintext_bind_with_one_line() -> None:
    result = run_serve({"INVENTORY_GRPC_ADDR": f"0.0.0.0:{free_port()}"})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--insecure" in result.stderr and "BACKORDER_TOKENS" in result.stderr


def test_serve_stops_on_a_bad_security_setting_with_one_line(tmp_path: Path) -> None:
    result = run_serve({"INVENTORY_TLS_CERT_FILE": str(tmp_path / "missing.pem")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "backorder-inventory: bad setting: INVENTORY_TLS_KEY_FILE is missing: TLS needs both "
        "INVENTORY_TLS_CERT_FILE and INVENTORY_TLS_KEY_FILE"
    ]


# --- the scope table ---------------------------------------------------------------------------


def declared_methods() -> list[str]:
    names = []
    for file, service in (
        (inventory_pb2.DESCRIPTOR, "InventoryService"),
        (allocation_pb2.DESCRIPTOR, "AllocationService"),
        (dead_letters_pb2.DESCRIPTOR, "DeadLetterService"),
    ):
        descriptor = file.services_by_name[service]
        names += [f"/{descriptor.full_name}/{m.name}" for m in descriptor.methods]
    return names


def test_every_declared_rpc_has_an_explicit_scope() -> None:
    # The default (admin) is safe but surprising for a read: classify each new RPC on purpose
    # in its service's entrypoint SCOPES (declared to services/common/security.py).
    missing = [m for m in declared_methods() if m not in METHOD_SCOPES]
    assert missing == []


def test_scope_rules() -> None:
    assert required_scope("/grpc.health.v1.Health/Check") is None
    assert required_scope("/backorder.inventory.v1.InventoryService/GetStock") == READ
    assert required_scope("/backorder.allocation.v1.AllocationService/Allocate") == WRITE
    assert required_scope("/backorder.allocation.v1.AllocationService/SetSkuPolicy") == ADMIN
    # An RPC nobody classified is locked down, not left open.
    assert required_scope("/backorder.allocation.v1.AllocationService/ReplayDeadLetters") == ADMIN
    for method, scope in METHOD_SCOPES.items():
        name = method.rsplit("/", 1)[-1]
        if "DeadLetterService" in method:
            assert scope == ADMIN, method  # dead letters are operations, reads included
        elif name.startswith(("Get", "List", "Watch")):
            assert scope == READ, method
