"""Checks of the operator stack in deploy/ and of the container healthcheck probe.

No Docker engine is needed: deploy/docker-compose.yml is validated against the official
Compose Specification JSON schema (as shipped by the check-jsonschema package) and
cross-checked against docs/spec.md §5 (entry points, ports), deploy/.env.example,
deploy/Dockerfile, deploy/prometheus.yml, the lock files in requirements/ and README's
metrics table. The healthcheck module is run for real against a gRPC health server started
inside the test, and a service is started with the example's placeholder tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from jsonschema.validators import validator_for

from services.common.settings import ServiceSettings, SettingsError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
HA_FILE = DEPLOY / "docker-compose.ha.yml"
PATRONI_CONFIG = DEPLOY / "patroni" / "patroni.yml"
RABBITMQ_CLUSTER_CONF = DEPLOY / "rabbitmq" / "cluster.conf"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "backorder.json"
README = REPO_ROOT / "README.md"
PYPROJECT = REPO_ROOT / "pyproject.toml"
RUNTIME_LOCK = REPO_ROOT / "requirements" / "runtime.txt"
DEV_LOCK = REPO_ROOT / "requirements" / "dev.txt"


@dataclass(frozen=True)
class ServiceContract:
    """What docs/spec.md §5 fixes about one of our services, as the stack must run it."""

    name: str
    cli: str
    grpc_port: int
    metrics_port: int
    prefix: str
    database: str


SERVICES = [
    ServiceContract(
        "inventory", "backorder-inventory", 50051, 9101, "INVENTORY", "backorder_inventory"
    ),
    ServiceContract(
        "allocation", "backorder-allocation", 50052, 9102, "ALLOCATION", "backorder_allocation"
    ),
]
# Images not built from deploy/Dockerfile must come from Docker's official library (no
# namespace) or from the upstream project's own namespace.
OFFICIAL_IMAGES = {
    "postgres",
    "rabbitmq",
    "prom/prometheus",
    "grafana/grafana",
    "jaegertracing/jaeger",
}
# The metric names agreed across the team (the only ones a dashboard may query), with the
# histograms, whose series carry _bucket/_sum/_count suffixes.
AGREED_METRICS = {
    "backorder_rpc_total",
    "backorder_events_consumed_total",
    "backorder_events_published_total",
    "backorder_outbox_pending",
    "backorder_outbox_oldest_age_seconds",
    "backorder_backlog_units",
    "backorder_backlog_units_total",
    "backorder_waiting_lines_total",
    "backorder_reserved_units_total",
    "backorder_dead_letters",
    "backorder_stock_shortfalls_total",
    "backorder_stock_shortfall_units_total",
    "backorder_skus_below_reorder_point",
}
AGREED_HISTOGRAMS = {"backorder_rpc_seconds", "backorder_fill_latency_seconds"}


# --- helpers ----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_]\w*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.DOTALL)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines the way Compose reads a .env file (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value.strip().strip("'\"")
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Apply Compose's ${VAR} interpolation to one string; a failing ${VAR:?err} raises."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        assert braced, f"bad interpolation ${{{match['braced']}}}"
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        is_set = name in env
        is_nonempty = bool(env.get(name))
        present = is_nonempty if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if present else arg
        if op in (":?", "?"):
            if not present:
                raise KeyError(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if present else ""
        return env.get(name, "")

    return _VARIABLE.sub(substitute, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    """Interpolate every string value of a parsed Compose document (keys stay as written)."""
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def strings_in(node: Any) -> list[str]:
    """Every string value of a parsed YAML document (what Compose interpolates)."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings_in(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings_in(item)]
    return [node] if isinstance(node, str) else []


def referenced_variables(*files: Path) -> dict[str, set[str]]:
    """Every ${VAR} the compose files (default: the main one) use, with the operators they
    are used with ('' = bare)."""
    found: dict[str, set[str]] = {}
    texts = [t for f in files or (COMPOSE_FILE,) for t in strings_in(yaml.safe_load(f.read_text()))]
    for text in texts:
        for match in _VARIABLE.finditer(text):
            if match["escaped"]:
                continue
            if match["named"]:
                found.setdefault(match["named"], set()).add("")
                continue
            braced = _BRACED.match(match["braced"])
            assert braced, f"bad interpolation ${{{match['braced']}}}"
            found.setdefault(braced["name"], set()).add(braced["op"] or "")
    return found


def load_compose() -> dict[str, Any]:
    """The compose file as Compose sees it, with .env.example's values interpolated."""
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return dict(interpolate_tree(raw, read_env_file(ENV_EXAMPLE)))


def compose_schema() -> dict[str, Any]:
    """The official Compose Specification schema vendored by the check-jsonschema package."""
    resource = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(resource.joinpath("compose-spec.json").read_text())
    assert schema.get("title") == "Compose Specification"
    return schema


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    errors = validator_class(schema).iter_errors(document)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """Map container port -> host port for a service's `ports` (short or long syntax)."""
    mapping: dict[int, int] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            mapping[int(entry["target"])] = int(entry["published"])
            continue
        spec = str(entry).split("/")[0]
        parts = spec.rsplit(":", 2)
        assert len(parts) >= 2, f"port {entry!r} is not published on the host"
        mapping[int(parts[-1])] = int(parts[-2])
    return mapping


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Map dependency -> condition (short syntax means service_started)."""
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return cmd.split() if isinstance(cmd, str) else list(cmd)


@dataclass
class DockerStage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]


def dockerfile_stages(text: str) -> list[DockerStage]:
    """Split a Dockerfile into stages of (INSTRUCTION, arguments), resolving global ARGs."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[DockerStage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and not stages:
            arg_name, _, default = rest.partition("=")
            global_args[arg_name] = default
        elif keyword == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m[1], m[0]), words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(DockerStage(base, name, []))
        else:
            assert stages, f"instruction before FROM: {line!r}"
            stages[-1].instructions.append((keyword, rest))
    return stages


# --- the compose file against the Compose Specification --------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(load_compose()) == []


def _add_unknown_service_key(doc: dict[str, Any]) -> None:
    doc["services"]["inventory"]["healthchek"] = doc["services"]["inventory"].pop("healthcheck")


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["allocation"]["ports"] = {"grpc": "50052:50052"}


def _bad_depends_on_condition(doc: dict[str, Any]) -> None:
    doc["services"]["inventory"]["depends_on"]["inventory-migrate"]["condition"] = "done"


def _numeric_healthcheck_interval(doc: dict[str, Any]) -> None:
    doc["services"]["allocation"]["healthcheck"]["interval"] = 10


def _unknown_top_level_key(doc: dict[str, Any]) -> None:
    doc["service"] = doc.pop("services")


@pytest.mark.parametrize(
    "breakage",
    [
        _add_unknown_service_key,
        _ports_not_a_list,
        _bad_depends_on_condition,
        _numeric_healthcheck_interval,
        _unknown_top_level_key,
    ],
)
def test_schema_check_rejects_a_broken_compose_file(
    breakage: Callable[[dict[str, Any]], None],
) -> None:
    # Guards the guard: an empty or permissive schema would let the test above pass vacuously.
    document = load_compose()
    breakage(document)
    assert schema_errors(document) != []


# --- cross-references --------------------------------------------------------------------------


def test_every_variable_the_compose_file_uses_is_in_env_example() -> None:
    used = referenced_variables(COMPOSE_FILE, HA_FILE)
    documented = read_env_file(ENV_EXAMPLE)
    assert set(used) - set(documented) == set(), "document these in deploy/.env.example"
    assert set(documented) - set(used) == set(), "deploy/.env.example lists unused variables"
    for name, operators in used.items():
        if any(op in ("", "?", ":?") for op in operators):
            assert documented[name], f"{name} has no default, so .env.example must give one"


def test_credentials_come_only_from_the_env_file() -> None:
    used = referenced_variables(COMPOSE_FILE, HA_FILE)
    secrets = {name for name in used if name.endswith(("PASSWORD", "USER", "COOKIE"))}
    assert {"POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "POSTGRES_REPLICATION_PASSWORD"} <= secrets
    for name in secrets:
        # `:?` makes Compose stop with a message instead of starting with an empty password.
        assert used[name] == {":?"}, f"${{{name}}} must be required (${{{name}:?…}})"
    services = {
        **yaml.safe_load(COMPOSE_FILE.read_text())["services"],
        **{f"ha {k}": v for k, v in yaml.safe_load(HA_FILE.read_text())["services"].items()},
    }
    for service_name, service in services.items():
        for key, value in environment(service).items():
            if re.search(r"PASS|SECRET|TOKEN", key):
                assert "${" in value, f"{service_name}: {key} is written into the compose file"
            for url in re.findall(r"\w+://[^\s]+", value):
                userinfo = url.split("://", 1)[1].split("@")[0] if "@" in url else ""
                assert "@" not in url or "${" in userinfo, f"{service_name}: literal creds in {key}"


def test_a_missing_credential_stops_compose() -> None:
    env = read_env_file(ENV_EXAMPLE)
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        interpolate_tree(yaml.safe_load(COMPOSE_FILE.read_text()), env)


def test_every_image_is_built_from_deploy_dockerfile_or_a_pinned_official_image() -> None:
    services = load_compose()["services"]
    built = []
    for name, service in services.items():
        if "build" in service:
            build = service["build"]
            context = (COMPOSE_FILE.parent / build["context"]).resolve()
            assert context == REPO_ROOT, f"{name}: build context must be the repository root"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE, name
            built.append(service.get("image"))
            continue
        image = service["image"]
        repository, _, reference = image.partition("@")
        repository, _, tag = repository.rpartition(":") if ":" in repository else (image, "", "")
        assert repository in OFFICIAL_IMAGES, f"{name}: {image} is not an official image"
        if not reference:
            assert re.match(r"^v?\d+\.\d+", tag), f"{name}: {image} needs a pinned version tag"
    assert DOCKERFILE.is_file()
    assert len(set(built)) == 1 and built[0], "services built here must share one image name"
    postgres_tag = services["postgres"]["image"].partition(":")[2]
    assert postgres_tag.split(".")[0] == "16", "the stack runs Postgres 16"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_service_serves_on_the_spec_ports(svc: ServiceContract) -> None:
    service = load_compose()["services"][svc.name]
    # Bearer tokens are required, so binding 0.0.0.0 needs no --insecure (docs/spec.md §6).
    assert command(service) == [svc.cli, "serve"]
    env = environment(service)
    assert env[f"{svc.prefix}_GRPC_ADDR"] == f"0.0.0.0:{svc.grpc_port}"
    assert env[f"{svc.prefix}_METRICS_ADDR"] == f"0.0.0.0:{svc.metrics_port}"
    assert published_ports(service) == {
        svc.grpc_port: svc.grpc_port,
        svc.metrics_port: svc.metrics_port,
    }
    assert service.get("restart") in {"always", "unless-stopped", "on-failure"}
    assert service.get("profiles") is None, "the services run without any profile"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_service_healthcheck_probes_its_own_grpc_port(svc: ServiceContract) -> None:
    test = load_compose()["services"][svc.name]["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", "exec form, no shell needed"
    assert test[1:5] == [
        "python",
        "-m",
        "services.common.healthcheck",
        f"127.0.0.1:{svc.grpc_port}",
    ]


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_service_waits_for_its_migration_and_its_backing_servers(svc: ServiceContract) -> None:
    services = load_compose()["services"]
    service = services[svc.name]
    migrations = [
        name for name, other in services.items() if command(other) == [svc.cli, "migrate"]
    ]
    assert len(migrations) == 1, f"exactly one one-shot `{svc.cli} migrate` service"
    migrate = services[migrations[0]]
    assert migrate.get("restart") == "no", "a migration runs once"
    assert migrate.get("image") == service.get("image")
    assert depends_on(service)[migrations[0]] == "service_completed_successfully"
    assert depends_on(service)["postgres"] == "service_healthy"
    assert depends_on(service)["rabbitmq"] == "service_healthy"
    assert depends_on(migrate)["postgres"] == "service_healthy"
    for name in ("postgres", "rabbitmq"):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck to be waited on"

    url_key = f"{svc.prefix}_DATABASE_URL"
    for runner in (service, migrate):
        url = environment(runner)[url_key]
        assert re.fullmatch(rf"postgresql://[^@/]+@postgres:5432/{svc.database}", url), url
    assert environment(service)["AMQP_URL"].endswith("@rabbitmq:5672/")


def test_backing_servers_keep_their_data_in_named_volumes() -> None:
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    expected = {"postgres": "/var/lib/postgresql/data", "rabbitmq": "/var/lib/rabbitmq"}
    for name, data_dir in expected.items():
        mounts = {}
        for volume in compose["services"][name].get("volumes", []):
            source, _, target = str(volume).partition(":")
            mounts[target.split(":")[0]] = source
        assert mounts.get(data_dir) in declared, f"{name}: {data_dir} on a named volume"
    assert compose["services"]["rabbitmq"].get("hostname"), "node name must survive re-creation"


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_service_requires_tokens_and_takes_tls_files_from_the_mounted_directory(
    svc: ServiceContract,
) -> None:
    used = referenced_variables()
    assert used["BACKORDER_TOKENS"] == {":?"}, "the servers must not start without tokens"
    service = load_compose()["services"][svc.name]
    env = environment(service)
    assert env["BACKORDER_TOKENS"] == read_env_file(ENV_EXAMPLE)["BACKORDER_TOKENS"]
    for suffix in ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE"):
        assert f"{svc.prefix}_{suffix}" in env, f"{svc.name} must pass {svc.prefix}_{suffix}"
    for name in ("BACKORDER_CA_FILE", "BACKORDER_CLIENT_CERT_FILE", "BACKORDER_CLIENT_KEY_FILE"):
        assert name in env, f"the healthcheck of {svc.name} needs {name} for TLS"
    assert any(str(v).endswith(":/etc/backorder/tls:ro") for v in service["volumes"])
    # The .env.example tokens are placeholders: the services refuse to start with them, and
    # accept the same entries once the tokens are real.
    with pytest.raises(SettingsError, match="BACKORDER_TOKENS holds a placeholder token"):
        ServiceSettings.from_env(svc.name, {"BACKORDER_TOKENS": env["BACKORDER_TOKENS"]})
    real = re.sub(r"change-me", lambda m: "0123456789", env["BACKORDER_TOKENS"])
    settings = ServiceSettings.from_env(svc.name, {"BACKORDER_TOKENS": real})
    assert settings.security.authenticated and len(settings.security.tokens) == 2


@pytest.mark.parametrize(
    "tokens",
    [
        "change-me-read-token-0000:read",
        "0123456789abcdef0123:read;CHANGE-ME-00000000000:write",
        "0123456789abcdef0123:read\nyes-change-me-please-0:admin",
    ],
)
def test_placeholder_tokens_are_refused_naming_the_setting(tokens: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as refused:
        ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS": tokens})
    assert "BACKORDER_TOKENS" in str(refused.value)
    assert "0000" not in str(refused.value), "never quote a token"
    # In a tokens file too; a comment may mention the placeholder.
    listed = tmp_path / "tokens"
    listed.write_text("# replace every change-me token\n" + tokens.replace(";", "\n") + "\n")
    with pytest.raises(SettingsError, match="BACKORDER_TOKENS_FILE"):
        ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS_FILE": str(listed)})
    listed.write_text("# replace every change-me token\n0123456789abcdef0123:read\n")
    assert ServiceSettings.from_env("allocation", {"BACKORDER_TOKENS_FILE": str(listed)})


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_a_service_started_with_the_example_tokens_stops_with_one_line(
    svc: ServiceContract,
) -> None:
    tokens = read_env_file(ENV_EXAMPLE)["BACKORDER_TOKENS"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKORDER_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / svc.cli), "serve"],
        env={**env, "BACKORDER_TOKENS": tokens},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "BACKORDER_TOKENS" in lines[0], done.stderr
    assert "change-me-ops-token" not in done.stderr


def test_rabbitmq_publishes_amqp_for_subscribers_on_the_host() -> None:
    rabbitmq = load_compose()["services"]["rabbitmq"]
    assert published_ports(rabbitmq) == {5672: 5672, 15672: 15672}
    for entry in rabbitmq["ports"]:
        assert str(entry).startswith("127.0.0.1:"), f"{entry} must bind to PUBLISH_HOST"


def test_observability_profile_runs_prometheus_and_grafana_and_scrapes_both_services() -> None:
    services = load_compose()["services"]
    profiled = {name: svc["profiles"] for name, svc in services.items() if "profiles" in svc}
    assert profiled == {
        "prometheus": ["observability"],
        "jaeger": ["observability"],
        "grafana": ["observability"],
    }
    mounts = services["prometheus"]["volumes"]
    config_mount = next(m for m in mounts if m.split(":")[1] == "/etc/prometheus/prometheus.yml")
    assert (COMPOSE_FILE.parent / config_mount.split(":")[0]).resolve() == PROMETHEUS_CONFIG

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert targets == {f"{svc.name}:{svc.metrics_port}" for svc in SERVICES}


def grafana_mounts() -> dict[str, Path]:
    mounts = {}
    for volume in load_compose()["services"]["grafana"]["volumes"]:
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard() -> None:
    mounts = grafana_mounts()
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == (GRAFANA / "provisioning").resolve()
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [datasource] = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "backorder.yml").read_text())
    dashboard_dir = providers["providers"][0]["options"]["path"]
    assert mounts[dashboard_dir] == DASHBOARD.parent.resolve()

    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert panels and all(p["datasource"]["uid"] == datasource["uid"] for p in panels)
    for panel in panels:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_tracing_is_off_by_default_and_goes_to_jaeger_when_on() -> None:
    """The services' OTEL_* settings default to off, and to the observability profile's
    Jaeger (its OTLP/HTTP port) once OTEL_TRACES_EXPORTER=otlp; Grafana reads Jaeger."""
    services = load_compose()["services"]
    for svc in SERVICES:
        env = environment(services[svc.name])
        assert env["OTEL_TRACES_EXPORTER"] == "none"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
        assert "OTEL_SERVICE_NAME" not in env  # backorder-<service>, from the service itself
    assert "jaeger" in services["grafana"]["depends_on"]
    provisioning = grafana_mounts()["/etc/grafana/provisioning"]
    datasources = yaml.safe_load((provisioning / "datasources" / "jaeger.yml").read_text())
    [datasource] = datasources["datasources"]
    assert datasource["type"] == "jaeger"
    assert datasource["url"] == "http://jaeger:16686"


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def metric_names(expr: str) -> tuple[set[str], set[str]]:
    """(agreed metric names, unknown names) a PromQL expression uses."""
    known, unknown = set(), set()
    for name in re.findall(r"\bbackorder_[a-z_]+", expr):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in AGREED_HISTOGRAMS:
            known.add(base)
        elif name in AGREED_METRICS:
            known.add(name)
        else:
            unknown.add(name)
    return known, unknown


def test_dashboard_queries_only_the_agreed_metric_names() -> None:
    used = set()
    for expr in dashboard_queries():
        known, unknown = metric_names(expr)
        assert unknown == set(), f"{expr!r} uses names that are not agreed"
        assert expr.count("(") == expr.count(")"), expr
        used |= known
    # What the issue asks the dashboard to show.
    for name in (
        "backorder_backlog_units",
        "backorder_reserved_units_total",
        "backorder_fill_latency_seconds",
        "backorder_outbox_oldest_age_seconds",
        "backorder_dead_letters",
        "backorder_rpc_total",
        "backorder_rpc_seconds",
        "backorder_stock_shortfalls_total",
        "backorder_stock_shortfall_units_total",
        "backorder_skus_below_reorder_point",
    ):
        assert name in used, f"the dashboard shows no {name}"


def test_the_agreed_metrics_are_the_code_s_and_readme_s() -> None:
    """Every agreed name is registered by the services and listed in README's table."""
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "services").rglob("*.py"))
    registered = set(re.findall(r"""["'](backorder_[a-z_]+)["']""", source))
    readme_table = README.read_text().split("### Metrics", 1)[1].split("\n### ", 1)[0]
    for name in AGREED_METRICS | AGREED_HISTOGRAMS:
        assert name in registered, f"no service registers {name}"
        assert f"`{name}" in readme_table, f"README's metrics table lacks {name}"


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(backorder_reserved_unit_total[1m]))",
        "max(backorder_backlog_units_bucket)",  # not a histogram
        "histogram_quantile(0.5, rate(backorder_fill_latency_bucket[5m]))",
    ],
)
def test_the_metric_check_catches_a_wrong_name(expr: str) -> None:
    # Guards the guard above: a typo must not slip through.
    assert metric_names(expr)[1] != set()


# --- the Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_final_stage_is_slim_python_and_runs_as_non_root() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    final = stages[-1]
    # A patch release and a Debian release, optionally with the digest (the comment says how).
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", final.base), (
        final.base
    )
    assert all(stage.base == final.base for stage in stages), "build and run on one base"
    assert "imagetools inspect" in DOCKERFILE.read_text(), "say how to pin the digest"
    users = [args for keyword, args in final.instructions if keyword == "USER"]
    assert users, "the final stage must switch to an unprivileged USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"final stage runs as {users[-1]}"
    last_user_at = max(i for i, (k, _) in enumerate(final.instructions) if k == "USER")
    assert all(k != "RUN" for k, _ in final.instructions[last_user_at:]), "RUN after USER"
    runs = " ".join(args for keyword, args in final.instructions if keyword == "RUN")
    assert not re.search(r"apt-get install|pip install|gcc|build-essential", runs)


def test_dockerfile_installs_the_project_with_its_contract() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text())
    instructions = [(k, a) for stage in stages for k, a in stage.instructions]
    copied = " ".join(a for k, a in instructions if k == "COPY")
    for path in ("pyproject.toml", "protos/", "clients/python/backorder/", "services/"):
        assert path in copied, f"the image build must copy {path}"
    assert any(k == "RUN" and "pip install --no-deps ." in a for k, a in instructions)


def test_dockerfile_installs_the_locked_dependencies_in_a_layer_of_their_own() -> None:
    """Changing the source must not reinstall the dependencies: the lock file alone is
    copied, and installed, before anything else of the project."""
    [build, _] = dockerfile_stages(DOCKERFILE.read_text())
    steps = [(k, a) for k, a in build.instructions if k in ("COPY", "RUN")]
    lock_copied = steps.index(("COPY", "requirements/runtime.txt requirements/runtime.txt"))
    installed = next(
        i for i, (k, a) in enumerate(steps) if k == "RUN" and "-r requirements/runtime.txt" in a
    )
    first_source = min(i for i, (k, a) in enumerate(steps) if k == "COPY" and i != lock_copied)
    assert lock_copied < installed < first_source, steps


def test_dockerfile_has_a_healthcheck_of_the_grpc_health_service() -> None:
    final = dockerfile_stages(DOCKERFILE.read_text())[-1]
    [healthcheck] = [a for k, a in final.instructions if k == "HEALTHCHECK"]
    assert "CMD python -m services.common.healthcheck" in healthcheck
    assert "$HEALTHCHECK_ADDR" in healthcheck
    env = " ".join(a for k, a in final.instructions if k == "ENV")
    assert "HEALTHCHECK_ADDR=127.0.0.1:50051" in env


# --- the lock files ------------------------------------------------------------------------------


def _name(requirement: str) -> str:
    """PEP 503 normalised project name of `name==version` or `name[extra]==version`."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>~!; ]", requirement, maxsplit=1)[0]).lower()


def locked(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{path.name}: {line!r} is not NAME==VERSION"
        pins[_name(name)] = version
    return pins


def direct_pins(extra: str | None) -> dict[str, str]:
    import tomllib

    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = project["dependencies"] + (
        project["optional-dependencies"][extra] if extra else []
    )
    return {_name(r): r.split("==", 1)[1] for r in requirements}


@pytest.mark.parametrize(("lock", "extra"), [(RUNTIME_LOCK, None), (DEV_LOCK, "dev")])
def test_the_lock_files_pin_pyproject_s_direct_dependencies(lock: Path, extra: str | None) -> None:
    pins = locked(lock)
    for name, version in direct_pins(extra).items():
        assert pins.get(name) == version, f"{lock.name}: {name} is not locked at {version}"
    assert "backorder" not in pins and "file:" not in lock.read_text(), "no machine paths"


def test_the_dev_lock_installs_the_runtime_lock_unchanged() -> None:
    runtime, dev = locked(RUNTIME_LOCK), locked(DEV_LOCK)
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "pytest" in dev and "pytest" not in runtime


@pytest.mark.parametrize(("script", "lock"), [("up", "runtime"), ("test", "dev")])
def test_the_scripts_install_through_the_lock(script: str, lock: str) -> None:
    text = (REPO_ROOT / "scripts" / script).read_text()
    assert f"ensure_python_venv {lock}\n" in text
    lib = (REPO_ROOT / "scripts" / "lib.sh").read_text()
    assert '-c "$ROOT/requirements/$want.txt"' in lib


# --- the healthcheck probe, for real ------------------------------------------------------------


@contextlib.asynccontextmanager
async def health_server() -> AsyncIterator[tuple[int, health.aio.HealthServicer]]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, servicer
    finally:
        await server.stop(grace=None)


async def run_healthcheck(*args: str) -> tuple[int, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # Run it as a separate process, as Docker does; the event loop keeps serving meanwhile.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.common.healthcheck",
        *args,
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.asyncio
async def test_healthcheck_exits_0_when_the_server_is_serving() -> None:
    async with health_server() as (port, servicer):
        await servicer.set("", SERVING)
        code, output = await run_healthcheck(f"127.0.0.1:{port}", "--timeout", "5")
    assert code == 0, output
    assert output.strip().endswith("SERVING")
    assert len(output.strip().splitlines()) == 1


@pytest.mark.asyncio
async def test_healthcheck_exits_1_when_the_server_is_not_serving() -> None:
    async with health_server() as (port, servicer):
        await servicer.set("", NOT_SERVING)
        code, output = await run_healthcheck(f"127.0.0.1:{port}")
    assert code == 1, output
    assert "NOT_SERVING" in output


@pytest.mark.asyncio
async def test_healthcheck_asks_about_a_named_service() -> None:
    name = "backorder.inventory.v1.InventoryService"
    async with health_server() as (port, servicer):
        await servicer.set("", NOT_SERVING)
        await servicer.set(name, SERVING)
        serving, output = await run_healthcheck(f"127.0.0.1:{port}", "--service", name)
        unknown, unknown_output = await run_healthcheck(
            f"127.0.0.1:{port}", "--service", "no.such.Service"
        )
    assert serving == 0, output
    assert unknown == 1 and "NOT_FOUND" in unknown_output, unknown_output


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.asyncio
async def test_healthcheck_exits_1_when_nothing_listens() -> None:
    code, output = await run_healthcheck(f"127.0.0.1:{_free_loopback_port()}", "--timeout", "2")
    assert code == 1, output
    assert "UNAVAILABLE" in output or "DEADLINE_EXCEEDED" in output


@pytest.mark.asyncio
async def test_healthcheck_rejects_a_malformed_address() -> None:
    code, output = await run_healthcheck("localhost")
    assert code == 1, "Docker reserves healthcheck exit code 2"
    assert "HOST:PORT" in output


# --- the cluster override (docker-compose.ha.yml) ---------------------------------------------


def load_ha() -> dict[str, Any]:
    """docker-compose.ha.yml alone, interpolated with .env.example's values."""
    return dict(interpolate_tree(yaml.safe_load(HA_FILE.read_text()), read_env_file(ENV_EXAMPLE)))


def merge(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, as far as these files need it: mappings merge
    key by key, anything else in the override replaces the base's value."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def test_ha_override_and_the_merged_stack_are_valid_against_the_compose_specification() -> None:
    ha = load_ha()
    assert schema_errors(ha) == []
    assert schema_errors(merge(load_compose(), ha)) == []
    broken = merge(load_compose(), ha)
    broken["services"]["rabbitmq-2"]["depends_on"] = {"rabbitmq": {"condition": "up"}}
    assert schema_errors(broken) != []


def test_ha_services_are_pointed_at_every_broker_and_both_postgres_nodes() -> None:
    stack = merge(load_compose(), load_ha())
    services = stack["services"]
    brokers = sorted(n for n in services if n.startswith("rabbitmq"))
    nodes = sorted(n for n in services if n.startswith("postgres"))
    assert brokers == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    assert nodes == ["postgres", "postgres-2"]
    ours = ["inventory", "allocation", "inventory-migrate", "allocation-migrate"]
    for name in [*ours, "allocation-planning"]:
        env = environment(services[name])
        amqp = [url for url in env["AMQP_URL"].split(",")]
        assert [url.split("@")[1].split(":")[0] for url in amqp] == brokers, name
        prefix = "INVENTORY" if name.startswith("inventory") else "ALLOCATION"
        url = env[f"{prefix}_DATABASE_URL"]
        assert url.split("@")[1].split("/")[0] == ",".join(f"{n}:5432" for n in nodes), name
        assert url.endswith("?target_session_attrs=read-write"), name
        # The services accept the URL (docs/spec.md §5) as it is written.
        service = "inventory" if prefix == "INVENTORY" else "allocation"
        settings = ServiceSettings.from_env(
            service, {f"{prefix}_DATABASE_URL": url, "AMQP_URL": amqp[0]}
        )
        assert settings.database_url == url
    for name in ("inventory", "allocation"):
        needs = depends_on(services[name])
        for node in [*brokers, *nodes]:
            assert needs.get(node) == "service_healthy", (name, node)


def test_ha_rabbitmq_nodes_form_one_cluster_from_the_classic_config() -> None:
    services = merge(load_compose(), load_ha())["services"]
    conf = dict(
        line.split(" = ", 1)
        for line in RABBITMQ_CLUSTER_CONF.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert conf["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = {v for k, v in conf.items() if k.startswith("cluster_formation.classic_config.nodes")}
    brokers = [n for n in services if n.startswith("rabbitmq")]
    # Node names derive from the hostname: each must be fixed and listed.
    assert listed == {f"rabbit@{services[n]['hostname']}" for n in brokers}
    cookies = {environment(services[n])["RABBITMQ_ERLANG_COOKIE"] for n in brokers}
    assert len(cookies) == 1 and cookies != {""}
    for name in brokers:
        mounts = [v.split(":") for v in services[name]["volumes"]]
        assert any(
            (DEPLOY / src).resolve() == RABBITMQ_CLUSTER_CONF
            and dst.startswith("/etc/rabbitmq/conf.d/")
            for src, dst, *_ in mounts
        ), name
        assert any(dst == "/var/lib/rabbitmq" for _, dst, *_ in mounts), f"{name} keeps no data"


def test_ha_postgres_is_a_synchronous_patroni_pair_on_a_3_node_etcd() -> None:
    services = merge(load_compose(), load_ha())["services"]
    config = yaml.safe_load(PATRONI_CONFIG.read_text())
    dcs = config["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["postgresql"]["parameters"]["synchronous_commit"] == "on"
    assert dcs["maximum_lag_on_failover"] == 0
    etcd = sorted(n for n in services if n.startswith("etcd"))
    assert len(etcd) == 3
    assert sorted(h.split(":")[0] for h in config["etcd3"]["hosts"].split(",")) == etcd
    for name in ("postgres", "postgres-2"):
        service = services[name]
        assert (DEPLOY / service["build"]["context"]).resolve() == PATRONI_CONFIG.parent
        env = environment(service)
        assert env["PATRONI_NAME"] == name
        assert env["PATRONI_POSTGRESQL_CONNECT_ADDRESS"] == f"{name}:5432"
        assert "PATRONI_REPLICATION_PASSWORD" in env
    base = (PATRONI_CONFIG.parent / "Dockerfile").read_text()
    assert f"FROM {load_compose()['services']['postgres']['image']}" in base, (
        "the Patroni nodes run the stack's Postgres image"
    )
    assert config["postgresql"]["bin_dir"] == "/usr/lib/postgresql/16/bin"
