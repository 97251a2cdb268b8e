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

note_started() {
  mkdir -p "$RUN"
  echo "$*" >>"$RUN/started"
}

ensure_servers() {
  ensure_postgres
  ensure_rabbitmq
}
