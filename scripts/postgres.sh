#!/usr/bin/env bash
# A throwaway PostgreSQL server for loopynet's tests (Debian), listening on 127.0.0.1 only.
#
#   eval "$(bash scripts/postgres.sh start)"   # exports LOOPYNET_TEST_POSTGRES_URL and LOOPYNET_TEST_POSTGRES_DIR
#   bash scripts/postgres.sh stop [DIR]        # DIR defaults to $LOOPYNET_TEST_POSTGRES_DIR; removes it
#
# start: installs the `postgresql` package with apt-get when no initdb is found under
# /usr/lib/postgresql/*/bin (needs root), creates a cluster in a new temporary folder (as the
# `postgres` user when run as root: initdb refuses root), starts it on a free loopback port with
# trust authentication, creates the database loopynet_test, and prints two `export` lines.
# Everything else goes to stderr, so the output can be eval'd.
set -euo pipefail

DB=loopynet_test
MARKER=.loopynet-postgres   # only folders holding this file are removed by `stop`

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

install_postgres() {
    [[ $(id -u) -eq 0 ]] || die "no PostgreSQL under /usr/lib/postgresql and not root: install the postgresql package"
    log "installing postgresql with apt-get"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
}

# Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ $(id -u) -ne 0 ]]; then
        "$@"
    elif command -v runuser >/dev/null; then
        runuser -u postgres -- "$@"
    else
        su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 40000))
}

start() {
    local bin dir port
    bin=$(bindir) || { install_postgres; bin=$(bindir) || die "initdb still missing after installing postgresql"; }
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "user postgres does not exist (install the postgresql package)"
    fi
    dir=$(mktemp -d "${TMPDIR:-/tmp}/loopynet-postgres.XXXXXX")
    trap "abort_start $dir $bin" EXIT
    touch "$dir/$MARKER"
    [[ $(id -u) -ne 0 ]] || chown -R postgres: "$dir"
    port=$(free_port)
    log "cluster in $dir, port $port ($bin)"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >&2 \
        || die "initdb failed"
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >&2 \
        || die "the server did not start: $(tail -n 5 "$dir/server.log" 2>/dev/null)"
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DB" >&2 || die "createdb failed"
    trap - EXIT
    printf 'export LOOPYNET_TEST_POSTGRES_URL=%q\n' "postgresql+psycopg2://postgres@127.0.0.1:$port/$DB"
    printf 'export LOOPYNET_TEST_POSTGRES_DIR=%q\n' "$dir"
}

# After a failed start: stop the server if it came up, and remove the folder.
abort_start() {
    local dir=$1 bin=$2
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
}

stop() {
    local dir=${1:-${LOOPYNET_TEST_POSTGRES_DIR:-}} bin
    [[ -n "$dir" ]] || die "stop: give the folder, or set LOOPYNET_TEST_POSTGRES_DIR"
    [[ -f "$dir/$MARKER" ]] || die "stop: $dir was not made by postgres.sh start; leaving it alone"
    bin=$(bindir) || die "no PostgreSQL under /usr/lib/postgresql"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || log "pg_ctl stop failed"
    fi
    rm -rf "$dir"
    log "stopped and removed $dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start | stop [DIR]" ;;
esac
