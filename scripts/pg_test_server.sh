#!/usr/bin/env bash
# Throwaway PostgreSQL server for the Lingxi test suite.
#
#   eval "$(bash scripts/pg_test_server.sh start)"   # prints one `export ...` line
#   bash scripts/pg_test_server.sh status [PORT]
#   bash scripts/pg_test_server.sh stop   [PORT]
#
# `start` initialises a fresh cluster in /tmp/lingxi-pg-<port>, listening on
# 127.0.0.1 only (unix socket inside the data dir), with fsync off, a login role
# `lingxi` (password `lingxi`, CREATEDB) and a database `lingxi_test` it owns.
# Only the export line goes to stdout; all diagnostics go to stderr.
#
# `stop` without PORT takes the port from $LINGXI_TEST_POSTGRES_URL (as exported by
# `start`); if that is unset too it stops every /tmp/lingxi-pg-* cluster.
# The cluster directory is deleted on stop.
#
# Environment:
#   PGPORT        port to use (default: a free one picked at random)
#   PG_BIN        PostgreSQL bin dir (default: highest /usr/lib/postgresql/*/bin)
#   LINGXI_PG_USER  OS user that runs the server when invoked as root (default lingxi-pg)
#
# PostgreSQL refuses to run as root, so as root the server runs as system user
# $LINGXI_PG_USER (created with `useradd -r` if missing). Authentication is `trust`
# on loopback: acceptable for a throwaway test cluster, never for anything else.
set -euo pipefail

PG_DB_USER=lingxi
PG_DB_PASSWORD=lingxi
PG_DB_NAME=lingxi_test
BASE_PREFIX=/tmp/lingxi-pg-
RUN_AS=${LINGXI_PG_USER:-lingxi-pg}
SERVER_NAME=pg_test_server
EXPORT_VAR=LINGXI_TEST_POSTGRES_URL
PORT_VAR=PGPORT
# shellcheck source=scripts/test_server_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_server_lib.sh"

find_bindir() {
    if [[ -n ${PG_BIN:-} ]]; then
        [[ -x $PG_BIN/pg_ctl && -x $PG_BIN/initdb ]] || die "PG_BIN=$PG_BIN has no pg_ctl/initdb"
        printf '%s\n' "$PG_BIN"
        return
    fi
    local d best=""
    # Highest major version wins (sort -V handles 9.6 < 15 < 16).
    while IFS= read -r d; do
        [[ -x $d/pg_ctl && -x $d/initdb && -x $d/postgres ]] && best=$d
    done < <(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -V)
    if [[ -z $best ]] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        best=$(dirname "$(command -v initdb)")
    fi
    [[ -n $best ]] || die "no PostgreSQL server binaries found in /usr/lib/postgresql/*/bin (install them with: apt-get install -y postgresql)"
    printf '%s\n' "$best"
}

# Run a command as the cluster owner (RUN_AS when we are root, else ourselves).
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u "$RUN_AS" -- "$@"
        else
            su -s /bin/sh "$RUN_AS" -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

ensure_os_user() {
    [[ $(id -u) -eq 0 ]] || return 0
    if ! id -u "$RUN_AS" >/dev/null 2>&1; then
        log "creating system user $RUN_AS"
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin "$RUN_AS" >&2 \
            || die "useradd $RUN_AS failed"
    fi
}

is_running() { # $1 = data dir
    [[ -f $1/postmaster.pid ]] || return 1
    local pid
    pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

stop_one() { # $1 = port
    local port=$1 base=${BASE_PREFIX}$1 bindir
    local data=$base/data
    if [[ ! -d $base ]]; then
        log "no cluster at $base (nothing to stop)"
        return 0
    fi
    if is_running "$data"; then
        bindir=$(find_bindir)
        log "stopping PostgreSQL on port $port"
        if ! (cd "$base" && as_owner "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >&2); then
            log "fast shutdown failed; trying immediate"
            (cd "$base" && as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w -t 30 stop >&2) || true
        fi
        if is_running "$data"; then
            local pid
            pid=$(head -n1 "$data/postmaster.pid")
            log "killing postmaster $pid"
            kill -9 "$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    rm -rf -- "$base"
    log "removed $base"
}

cmd_start() {
    local bindir port base data
    bindir=$(find_bindir)
    port=$(pick_port)
    base=${BASE_PREFIX}$port
    data=$base/data
    log "using $bindir (PostgreSQL $("$bindir/postgres" --version | awk '{print $3}')), port $port, dir $base"

    if [[ -e $base ]]; then
        if is_running "$data"; then
            die "a cluster is already running in $base; run '$0 stop $port' first"
        fi
        log "removing stale $base"
        rm -rf -- "$base"
    fi

    ensure_os_user
    mkdir -p "$base"
    chmod 700 "$base"
    if [[ $(id -u) -eq 0 ]]; then chown "$RUN_AS:" "$base"; fi

    # From here on, clean up the half-started cluster if anything fails.
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "start failed; cleaning up"; [[ -f '"$base"'/server.log ]] && tail -n 30 '"$base"'/server.log >&2; stop_one '"$port"' || true; fi' EXIT

    log "initdb"
    (cd "$base" && as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1) \
        || { cat "$base/initdb.log" >&2; die "initdb failed"; }

    cat >>"$data/postgresql.conf" <<CONF

# --- lingxi throwaway test cluster ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$data'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
logging_collector = off
log_min_messages = warning
CONF

    log "starting server"
    (cd "$base" && as_owner "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 start >&2) \
        || die "pg_ctl start failed (log: $base/server.log)"

    local psql=$bindir/psql
    [[ -x $psql ]] || psql=$(command -v psql) || die "psql not found"
    local _
    for _ in $(seq 1 30); do
        "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null && break
        sleep 0.5
    done

    log "creating role $PG_DB_USER and database $PG_DB_NAME"
    PGCONNECT_TIMEOUT=10 "$psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE $PG_DB_USER LOGIN CREATEDB PASSWORD '$PG_DB_PASSWORD'" \
        -c "CREATE DATABASE $PG_DB_NAME OWNER $PG_DB_USER" >&2 \
        || die "creating role/database failed"

    trap - EXIT
    log "ready on 127.0.0.1:$port (stop with: bash $0 stop $port)"
    printf 'export LINGXI_TEST_POSTGRES_URL=postgresql+psycopg://%s:%s@127.0.0.1:%s/%s\n' \
        "$PG_DB_USER" "$PG_DB_PASSWORD" "$port" "$PG_DB_NAME"
}

port_from_env() {
    local url=${LINGXI_TEST_POSTGRES_URL:-}
    if [[ $url =~ @127\.0\.0\.1:([0-9]+)/ ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    fi
}

alive() { is_running "$1/data"; }

main "$@"
