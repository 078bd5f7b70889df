#!/usr/bin/env bash
# Production mode on one machine without systemd: dagster-webserver + dagster-daemon on PostgreSQL.
#
#   deploy/prod-up.sh [start]   check the database, prepare DAGSTER_HOME, start both, wait until healthy
#   deploy/prod-up.sh stop      stop the two processes this script started (by their recorded pids)
#   deploy/prod-up.sh status    pids, webserver answer, daemon heartbeats
#   deploy/prod-up.sh migrate   `dagster instance migrate` after upgrading Dagster (stop first)
#
# Settings come from the environment, or from the env file $FP_ENV_FILE (default deploy/fp-hubspot.env; the
# template is deploy/fp-hubspot.env.example). DAGSTER_HOME is $FP_PROD_HOME/dagster_home (default
# .prod/dagster_home) — never the demo's — and gets deploy/dagster.yaml. Logs and pids are in $FP_PROD_HOME.
# On a server prefer the systemd units next to this file; they run the very same two commands.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
ENV_FILE="${FP_ENV_FILE:-$REPO/deploy/fp-hubspot.env}"
if [[ -f "$ENV_FILE" ]]; then
  set -a
  # shellcheck source=/dev/null
  source "$ENV_FILE"
  set +a
fi

BIN="${FP_VENV:-$REPO/.venv}/bin"
PROD="${FP_PROD_HOME:-$REPO/.prod}"
export DAGSTER_HOME="$PROD/dagster_home"
HOST="${FP_WEBSERVER_HOST:-127.0.0.1}"
PORT="${FP_WEBSERVER_PORT:-3000}"
WORKSPACE="$REPO/workspace.yaml"
: "${DAGSTER_PG_HOST:=127.0.0.1}" "${DAGSTER_PG_PORT:=5432}" "${DAGSTER_PG_PASSWORD:=}"
export DAGSTER_PG_HOST DAGSTER_PG_PORT DAGSTER_PG_PASSWORD

die() { echo "prod-up: $*" >&2; exit 1; }

pid_of() { [[ -f "$PROD/run/$1.pid" ]] && cat "$PROD/run/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }

check_settings() {
  local name
  for name in DAGSTER_PG_USERNAME DAGSTER_PG_DB FP_STATE_URL FP_SAP_URL; do
    [[ -n "${!name:-}" ]] || die "$name is not set (in the environment or $ENV_FILE; see deploy/fp-hubspot.env.example)"
  done
  [[ "$FP_STATE_URL" == postgresql* ]] || die "FP_STATE_URL must point at PostgreSQL in production, not ${FP_STATE_URL%%:*}"
}

# Connects to the Dagster database and creates the state store's schema (the search_path of FP_STATE_URL)
# when missing; its tables are created by the state store itself on first use.
prepare_database() {
  "$BIN/python" - <<'PY' || die "PostgreSQL is not ready (see the message above)"
import os, sys
import sqlalchemy as sa
from dagster_postgres.utils import get_conn_string

dagster_url = get_conn_string(
    os.environ["DAGSTER_PG_USERNAME"], os.environ["DAGSTER_PG_PASSWORD"], os.environ["DAGSTER_PG_HOST"],
    os.environ["DAGSTER_PG_DB"], os.environ["DAGSTER_PG_PORT"], scheme="postgresql+psycopg2",
)
state_url = sa.make_url(os.environ["FP_STATE_URL"])
options = state_url.query.get("options", "")
schema = next((o.split("=", 1)[1] for o in str(options).split() if o.startswith("-csearch_path=")), None)


def check(url: sa.URL | str, schema: str | None = None) -> None:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("select 1"))
            if schema:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    except sa.exc.OperationalError as exc:
        sys.exit(f"{sa.make_url(url).render_as_string(hide_password=True)}: {str(exc.orig).strip()}")
    finally:
        engine.dispose()


check(dagster_url)
check(state_url.set(query={}), schema)
print(f"prod-up: database ok; state store schema: {schema or 'public (no search_path in FP_STATE_URL)'}")
PY
}

prepare_home() {
  mkdir -p "$DAGSTER_HOME" "$PROD/run" "$PROD/logs"
  cp "$REPO/deploy/dagster.yaml" "$DAGSTER_HOME/dagster.yaml"
}

start_one() {  # name, command...
  local name=$1; shift
  if alive "$name"; then echo "prod-up: $name already running (pid $(pid_of "$name"))"; return; fi
  (cd "$REPO" && exec nohup "$@" >>"$PROD/logs/$name.log" 2>&1 </dev/null) &
  echo $! >"$PROD/run/$name.pid"
  echo "prod-up: $name started (pid $!, log $PROD/logs/$name.log)"
}

webserver_answers() {
  "$BIN/python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
    "http://$HOST:$PORT/server_info" 2>/dev/null
}

daemon_healthy() { (cd "$REPO" && "$BIN/dagster-daemon" liveness-check >/dev/null 2>&1); }

wait_healthy() {
  local deadline=$((SECONDS + ${FP_START_TIMEOUT:-180}))
  until webserver_answers && daemon_healthy; do
    alive webserver || die "the webserver exited; see $PROD/logs/webserver.log"
    alive daemon || die "the daemon exited; see $PROD/logs/daemon.log"
    ((SECONDS < deadline)) || die "not healthy after ${FP_START_TIMEOUT:-180}s; see $PROD/logs/"
    sleep 2
  done
  echo "prod-up: healthy — UI http://$HOST:$PORT, daemon heartbeating (schedules, sensors, run queue)"
}

stop_one() {
  local name=$1 pid
  pid=$(pid_of "$name") || { echo "prod-up: $name not started by this script"; return; }
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    echo "prod-up: $name stopped (pid $pid)"
  fi
  rm -f "$PROD/run/$name.pid"
}

case "${1:-start}" in
  start)
    check_settings
    prepare_database
    prepare_home
    start_one daemon "$BIN/dagster-daemon" run -w "$WORKSPACE"
    start_one webserver "$BIN/dagster-webserver" -w "$WORKSPACE" -h "$HOST" -p "$PORT"
    wait_healthy
    ;;
  stop)
    stop_one webserver
    stop_one daemon
    ;;
  status)
    for name in webserver daemon; do
      if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: not running"; fi
    done
    if webserver_answers; then echo "webserver: answers on http://$HOST:$PORT"; else echo "webserver: no answer"; fi
    echo -n "recent daemon heartbeats in storage: "
    (cd "$REPO" && "$BIN/dagster-daemon" liveness-check) || true
    ;;
  migrate)
    check_settings
    prepare_home
    alive daemon && die "stop first (deploy/prod-up.sh stop): migrate with no run in progress"
    "$BIN/dagster" instance migrate
    ;;
  *)
    die "usage: $0 [start|stop|status|migrate]"
    ;;
esac
