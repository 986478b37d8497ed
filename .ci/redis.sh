#!/usr/bin/env bash
# A throwaway redis-server for the test run (issue #11).
#
#   eval "$(.ci/redis.sh start)"   # exports TRIE_CACHE_REDIS_URL and TRIE_CACHE_REDIS_PIDFILE
#   ...run the tests...
#   .ci/redis.sh stop              # stops the server named by TRIE_CACHE_REDIS_PIDFILE
#
# start installs redis-server from the Debian packages when it is missing, starts it on a free
# loopback port with persistence off in a temporary folder, and waits until it answers PING.
# Everything it prints on stdout is shell for eval; progress goes to stderr. Any failure exits
# non-zero, so a CI run stops there.
set -euo pipefail

die() {
    echo "redis.sh: $*" >&2
    exit 1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ping() {
    # PING over a plain socket, so that redis-cli need not be installed.
    python3 - "$1" <<'EOF'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
EOF
}

start() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "redis.sh: installing redis-server" >&2
        local sudo=""
        if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
        $sudo apt-get update -qq >&2 || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >&2 \
            || die "apt-get install redis-server failed"
    fi
    local dir port pidfile
    dir="$(mktemp -d "${TMPDIR:-/tmp}/trie_cache_redis.XXXXXX")"
    port="$(free_port)"
    pidfile="$dir/redis.pid"
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$dir" \
        --daemonize yes --pidfile "$pidfile" --logfile "$dir/redis.log" >&2 \
        || die "redis-server did not start (see $dir/redis.log)"
    for _ in $(seq 100); do
        if ping "$port"; then
            echo "export TRIE_CACHE_REDIS_URL=redis://127.0.0.1:$port/0"
            echo "export TRIE_CACHE_REDIS_PIDFILE=$pidfile"
            return 0
        fi
        sleep 0.1
    done
    cat "$dir/redis.log" >&2 || true
    die "redis-server on port $port did not answer PING within 10 s"
}

stop() {
    local pidfile="${1:-${TRIE_CACHE_REDIS_PIDFILE:-}}"
    [ -n "$pidfile" ] || die "stop: no PID file (pass it, or set TRIE_CACHE_REDIS_PIDFILE)"
    [ -f "$pidfile" ] || die "stop: $pidfile does not exist"
    local pid
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { rm -rf "$(dirname "$pidfile")"; return 0; }
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -rf "$(dirname "$pidfile")"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start | stop [PIDFILE]" ;;
esac
