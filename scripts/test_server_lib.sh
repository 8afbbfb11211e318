# shellcheck shell=bash
# Shared parts of the throwaway test-server scripts (pg_test_server.sh, chroma_test_server.sh).
# Sourced, not run. The including script sets:
#   SERVER_NAME   log prefix, e.g. pg_test_server
#   BASE_PREFIX   per-port directory prefix, e.g. /tmp/lingxi-pg-
#   EXPORT_VAR    the variable `start` exports, e.g. LINGXI_TEST_POSTGRES_URL
#   PORT_VAR      the environment variable that may fix the port, e.g. PGPORT
# and defines: cmd_start, stop_one PORT, alive DIR (succeeds when the server in DIR answers),
# port_from_env (prints the port of $EXPORT_VAR, or nothing).

log() { printf '%s: %s\n' "$SERVER_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    cat >&2 <<USAGE
usage: $0 start | stop [PORT] | status [PORT]
  start   start a throwaway server; prints 'export $EXPORT_VAR=...'
  stop    stop the server on PORT (default: port of \$$EXPORT_VAR,
          else all ${BASE_PREFIX}* servers) and delete its directory
  status  show whether the server on PORT is running
USAGE
}

pick_port() {
    local fixed=${!PORT_VAR:-}
    if [[ -n $fixed ]]; then
        [[ $fixed =~ ^[0-9]+$ ]] || die "$PORT_VAR must be numeric, got '$fixed'"
        printf '%s\n' "$fixed"
        return
    fi
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p _
    for _ in $(seq 1 50); do
        p=$(( 20000 + RANDOM % 40000 ))
        # Connection refused => nobody listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && [[ ! -e ${BASE_PREFIX}$p ]]; then
            printf '%s\n' "$p"
            return
        fi
    done
    die "could not find a free port; set $PORT_VAR"
}

cmd_stop() {
    local port=${1:-}
    [[ -n $port ]] || port=$(port_from_env)
    if [[ -n $port ]]; then
        stop_one "$port"
        return
    fi
    local d found=0
    for d in "${BASE_PREFIX}"*; do
        [[ -d $d ]] || continue
        found=1
        stop_one "${d#"$BASE_PREFIX"}"
    done
    [[ $found -eq 1 ]] || log "no ${BASE_PREFIX}* servers found"
}

cmd_status() {
    local port=${1:-}
    [[ -n $port ]] || port=$(port_from_env)
    local d rc=1
    for d in "${BASE_PREFIX}"${port:-*}; do
        [[ -d $d ]] || continue
        if alive "$d"; then
            log "running: port ${d#"$BASE_PREFIX"} ($d)"
            rc=0
        else
            log "not answering (stale dir): $d"
        fi
    done
    [[ $rc -eq 0 ]] || log "no running test server${port:+ on port $port}"
    return $rc
}

main() {
    case ${1:-} in
        start) shift; cmd_start "$@" ;;
        stop) shift; cmd_stop "$@" ;;
        status) shift; cmd_status "$@" ;;
        -h|--help|help) usage ;;
        *) usage; exit 2 ;;
    esac
}
