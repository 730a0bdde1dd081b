#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's packages (tests/install-deps.sh).
#   tests/pg.sh start [DIR]   initdb into DIR and start on 127.0.0.1, a free port; prints the URL
#   tests/pg.sh url [DIR]     prints the URL of the server running from DIR
#   tests/pg.sh stop [DIR]    stops it and removes DIR
# DIR defaults to $DRILL_TEST_PG_DIR, else /tmp/drill-test-pg-<uid>. Trust auth, loopback only, the
# unix socket inside DIR. PostgreSQL refuses to run as root: as root, the server runs as `postgres`.
set -euo pipefail

cmd=${1:-}
dir=${2:-${DRILL_TEST_PG_DIR:-/tmp/drill-test-pg-$(id -u)}}

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$found" ] || [ ! -x "$found/initdb" ]; then
        echo "pg.sh: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; run tests/install-deps.sh" >&2
        exit 1
    fi
    echo "$found"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

case "$cmd" in
start)
    bin=$(bindir)
    if [ -f "$dir/url" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        cat "$dir/url"
        exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
        chown -R postgres: "$dir"
        chmod 755 "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        # fsync off: a test server need not survive a power cut, and the machine is shared.
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off -c max_connections=200" >/dev/null; then
            echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" >"$dir/url"
            cat "$dir/url"
            exit 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
url)
    cat "$dir/url"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: tests/pg.sh start|url|stop [DIR]" >&2
    exit 2
    ;;
esac
