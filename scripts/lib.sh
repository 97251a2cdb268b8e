# Shared by scripts/up, scripts/test and scripts/down: a project venv, and Postgres + RabbitMQ
# answering. Reuses servers already listening on 5432/5672; otherwise installs Debian's
# packages (as root) and starts them, and notes that in $RUN/started so scripts/down stops
# only what was started here. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${BACKORDER_VENV:-$ROOT/.venv}
PY=$VENV/bin/python
RUN=${BACKORDER_RUN_DIR:-$ROOT/.run}  # logs, pids, what scripts/up started

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 90); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "$what did not start listening on 127.0.0.1:$port within 90 s" >&2
  return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "need to install $* but not root: install them, or start Postgres/RabbitMQ yourself" >&2
    return 1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_python_venv runtime|dev: the project (editable) and the locked dependencies of
# that set in $VENV. `runtime` is what the services need; `dev` adds the test, lint and
# benchmark tools (a dev install serves runtime too). Reinstalls when pyproject.toml or the
# lock file changed. The lock files are made by scripts/lock.
ensure_python_venv() {
  local want=${1:-runtime} stamp=$VENV/.installed mode hash
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv python3-pip
  fi
  [ -x "$PY" ] || python3 -m venv "$VENV"
  for mode in $( [ "$want" = runtime ] && echo "runtime dev" || echo dev ); do
    hash=$(cat "$ROOT/pyproject.toml" "$ROOT/requirements/$mode.txt" | sha256sum | cut -c1-16)
    grep -qx "$mode $hash" "$stamp" 2>/dev/null && return 0
  done
  hash=$(cat "$ROOT/pyproject.toml" "$ROOT/requirements/$want.txt" | sha256sum | cut -c1-16)
  local spec=$ROOT
  [ "$want" = dev ] && spec="$ROOT[dev]"
  say "installing the $want Python dependencies into ${VENV#"$ROOT"/} (requirements/$want.txt)"
  "$PY" -m pip install -q --disable-pip-version-check -c "$ROOT/requirements/$want.txt" -e "$spec"
  echo "$want $hash" > "$stamp"
}

ensure_postgres() {
  if port_open 5432; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL from the OS packages"
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  local hba=/etc/postgresql/$version/main/pg_hba.conf
  # A local development server: trust connections from this machine (docs/spec.md §5 defaults).
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  note_started "postgres $version"
  wait_port 5432 PostgreSQL
}

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  if ! command -v rabbitmq-server >/dev/null; then
    say "installing RabbitMQ from the OS packages"
    apt_install rabbitmq-server
  fi
  say "starting RabbitMQ"
  rabbitmq-server -detached
  note_started rabbitmq
  wait_port 5672 RabbitMQ
}

# tests/cluster starts RabbitMQ nodes of its own (tests/support/rabbit_cluster.py) from the
# OS's rabbitmq-server, also where the broker answering on 5672 is not the OS's (a container,
# another install): the package, not a running server.
ensure_rabbitmq_package() {
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && return 0
  say "installing RabbitMQ from the OS packages (tests/cluster runs a 3-node cluster of its own)"
  apt_install rabbitmq-server
}

note_started() {
  mkdir -p "$RUN"
  echo "$*" >>"$RUN/started"
}

ensure_servers() {
  ensure_postgres
  ensure_rabbitmq
}

# The Postgres failover tests (tests/cluster/test_postgres_failover.py) run their own primary
# and synchronous standby under Patroni with etcd, from the OS packages; the Postgres binaries
# are the machine's (ensure_postgres installs them). Nothing is started here: the tests do.
ensure_failover_tools() {
  if command -v patroni >/dev/null && command -v etcd >/dev/null; then return 0; fi
  say "installing Patroni and etcd from the OS packages (Postgres failover tests)"
  apt_install patroni etcd-server etcd-client
}

# Tools from npm, pinned and locked in tools/package.json and tools/package-lock.json, installed
# into $TOOLS (git-ignored): buf (protos lint and breaking check) and @asyncapi/specs (the
# AsyncAPI JSON schema). npm comes from the OS packages when missing.
TOOLS=${BACKORDER_TOOLS:-$ROOT/.tools}
BUF=$TOOLS/node_modules/.bin/buf
ASYNCAPI_SCHEMA=$TOOLS/node_modules/@asyncapi/specs/schemas/3.0.0-without-\$id.json

ensure_tools() {
  local want hash stamp=$TOOLS/.installed
  want=$(sed -n 's/.*"@bufbuild\/buf": "\(.*\)".*/\1/p' "$ROOT/tools/package.json")
  hash=$(cat "$ROOT/tools/package.json" "$ROOT/tools/package-lock.json" | sha256sum | cut -c1-16)
  if [ -x "$BUF" ] && grep -qx "$hash" "$stamp" 2>/dev/null; then return 0; fi
  if ! command -v npm >/dev/null; then
    say "installing npm from the OS packages"
    apt_install nodejs npm
  fi
  say "installing buf $want and the AsyncAPI schemas from npm into ${TOOLS#"$ROOT"/} (tools/)"
  mkdir -p "$TOOLS"
  cp "$ROOT/tools/package.json" "$ROOT/tools/package-lock.json" "$TOOLS/"
  npm ci --prefix "$TOOLS" --no-audit --no-fund --loglevel=error >/dev/null
  [ "$("$BUF" --version)" = "$want" ] || { echo "buf $want did not install" >&2; return 1; }
  echo "$hash" >"$stamp"
}

# The released protos that `buf breaking` compares protos/ with: a buf input, by default the
# newest release listed in protos/RELEASES (a version and its commit id; tags do not travel with
# every clone, commits do). Set PROTO_BREAKING_AGAINST to compare with something else, e.g.
# '.git#branch=main' (a subdir=protos is added when the input names none).
check_protos() {
  ensure_tools
  say "proto lint (buf.yaml)"
  (cd "$ROOT" && "$BUF" lint)
  local against=${PROTO_BREAKING_AGAINST:-} release commit gitdir
  if [ -z "$against" ]; then
    read -r release commit < <(grep -v '^#' "$ROOT/protos/RELEASES" | grep . | tail -n 1)
    if ! git -C "$ROOT" cat-file -e "$commit^{commit}" 2>/dev/null; then
      if [ "$(git -C "$ROOT" rev-parse --is-shallow-repository)" = true ]; then
        say "proto breaking check skipped: release $release ($commit) is not in this shallow clone"
        return 0
      fi
      echo "protos/RELEASES names $release at $commit, which this repository does not have" >&2
      return 1
    fi
    against=".git#ref=$commit"
    say "proto breaking check against release $release"
  fi
  # A worktree's .git is a file: buf reads the repository itself (branches and tags are shared).
  gitdir=$(cd "$ROOT" && cd "$(git rev-parse --git-common-dir)" && pwd)
  case $against in .git\#*) against="$gitdir${against#.git}" ;; esac
  case $against in *subdir=*) ;; *'#'*) against="$against,subdir=protos" ;; *) against="$against#subdir=protos" ;; esac
  say "proto breaking check against $against"
  (cd "$ROOT" && "$BUF" breaking --against "$against")
}

# docs/asyncapi.yaml is a valid AsyncAPI 3.0 document (bindings included); that it says what
# the services do is tests/unit/test_event_catalog.py's part.
check_event_catalog() {
  ensure_tools
  say "event catalog (docs/asyncapi.yaml) against the AsyncAPI 3.0.0 schema"
  "$VENV/bin/check-jsonschema" --schemafile "$ASYNCAPI_SCHEMA" "$ROOT/docs/asyncapi.yaml"
}
