#!/usr/bin/env bash
# Throwaway Chroma server for the Lingxi test suite.
#
#   eval "$(bash scripts/chroma_test_server.sh start)"   # prints one `export ...` line
#   bash scripts/chroma_test_server.sh status [PORT]
#   bash scripts/chroma_test_server.sh stop   [PORT]
#
# `start` runs `chroma run` (the CLI that ships with the chromadb package) on
# 127.0.0.1 with a fresh data directory in /tmp/lingxi-chroma-<port>, waits for
# its heartbeat (/api/v2/heartbeat) and prints
# `export LINGXI_TEST_CHROMA_URL=http://127.0.0.1:PORT`.
# Only the export line goes to stdout; all diagnostics go to stderr.
#
# `stop` without PORT takes the port from $LINGXI_TEST_CHROMA_URL (as exported by
# `start`); if that is unset too it stops every /tmp/lingxi-chroma-* server.
# The data directory is deleted on stop.
#
# Environment:
#   CHROMA_PORT   port to use (default: a free one picked at random)
#   CHROMA_BIN    the chroma CLI (default: .venv/bin/chroma, else `chroma` on PATH)
#
# No authentication: acceptable for a throwaway loopback server, never for anything else.
set -euo pipefail

BASE_PREFIX=/tmp/lingxi-chroma-
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER_NAME=chroma_test_server
EXPORT_VAR=LINGXI_TEST_CHROMA_URL
PORT_VAR=CHROMA_PORT
# shellcheck source=scripts/test_server_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_server_lib.sh"

find_chroma() {
    if [[ -n ${CHROMA_BIN:-} ]]; then
        [[ -x $CHROMA_BIN ]] || die "CHROMA_BIN=$CHROMA_BIN is not executable"
        printf '%s\n' "$CHROMA_BIN"
    elif [[ -x $ROOT/.venv/bin/chroma ]]; then
        printf '%s\n' "$ROOT/.venv/bin/chroma"
    elif command -v chroma >/dev/null 2>&1; then
        command -v chroma
    else
        die "chroma CLI not found (it comes with chromadb: run 'make venv', or set CHROMA_BIN)"
    fi
}

heartbeat() { # $1 = port; succeeds when the server answers
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --max-time 2 "http://127.0.0.1:$1/api/v2/heartbeat" >/dev/null 2>&1
    else
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "http://127.0.0.1:$1/api/v2/heartbeat" >/dev/null 2>&1
    fi
}

is_running() { # $1 = base dir
    [[ -f $1/server.pid ]] || return 1
    local pid
    pid=$(cat "$1/server.pid" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

stop_one() { # $1 = port
    local port=$1 base=${BASE_PREFIX}$1 pid _
    if [[ ! -d $base ]]; then
        log "no server at $base (nothing to stop)"
        return 0
    fi
    if is_running "$base"; then
        pid=$(cat "$base/server.pid")
        log "stopping Chroma (pid $pid) on port $port"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "killing $pid"
            kill -9 "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -rf -- "$base"
    log "removed $base"
}

cmd_start() {
    local chroma port base pid _
    chroma=$(find_chroma)
    port=$(pick_port)
    base=${BASE_PREFIX}$port
    log "using $chroma, port $port, dir $base"

    if [[ -e $base ]]; then
        if is_running "$base"; then
            die "a server is already running in $base; run '$0 stop $port' first"
        fi
        log "removing stale $base"
        rm -rf -- "$base"
    fi
    if heartbeat "$port"; then
        die "something already answers on 127.0.0.1:$port"
    fi
    mkdir -p "$base/data"

    # From here on, clean up the half-started server if anything fails.
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then log "start failed; cleaning up"; [[ -f '"$base"'/server.log ]] && tail -n 30 '"$base"'/server.log >&2; stop_one '"$port"' || true; fi' EXIT

    # setsid + nohup: the server outlives this script and the caller's shell,
    # and no terminal signal reaches it. NO_COLOR keeps the log readable.
    ANONYMIZED_TELEMETRY=False NO_COLOR=1 setsid nohup "$chroma" run \
        --path "$base/data" --host 127.0.0.1 --port "$port" \
        </dev/null >"$base/server.log" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$base/server.pid"

    log "waiting for the heartbeat"
    for _ in $(seq 1 120); do
        heartbeat "$port" && break
        kill -0 "$pid" 2>/dev/null || die "chroma exited early (log: $base/server.log)"
        sleep 0.5
    done
    heartbeat "$port" || die "no heartbeat from 127.0.0.1:$port after 60 s"

    trap - EXIT
    log "ready on 127.0.0.1:$port (stop with: bash $0 stop $port)"
    printf 'export LINGXI_TEST_CHROMA_URL=http://127.0.0.1:%s\n' "$port"
}

port_from_env() {
    local url=${LINGXI_TEST_CHROMA_URL:-}
    if [[ $url =~ ^https?://127\.0\.0\.1:([0-9]+)/?$ ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    fi
}

alive() { is_running "$1" && heartbeat "${1#"$BASE_PREFIX"}"; }

main "$@"
