#!/usr/bin/env bash
# System packages for worklane-capture-db: unixODBC (its `odbc` feature, which
# scripts/test turns on, links libodbc through the odbc-api crate)
# and two Debian ODBC drivers the tests use (PostgreSQL and MariaDB), registered in
# /etc/odbcinst.ini under the names the tests expect. Idempotent.
set -euo pipefail

"$(dirname "$0")/../apt-install" unixodbc unixodbc-dev odbc-postgresql odbc-mariadb

# Register a driver section unless one with that name exists already. The Debian
# packages normally register "PostgreSQL Unicode"/"PostgreSQL ANSI" (odbc-postgresql) and
# "MariaDB Unicode" (odbc-mariadb) themselves; this covers installs where they did not.
register() {
    local name="$1" lib="$2"
    if grep -q "^\[$name\]" /etc/odbcinst.ini 2>/dev/null; then
        return
    fi
    local path
    path="$(find /usr/lib -name "$lib" -print -quit 2>/dev/null || true)"
    if [[ -z "$path" ]]; then
        echo "capture-db deps: $lib not found, cannot register $name" >&2
        return 1
    fi
    printf '\n[%s]\nDescription=%s\nDriver=%s\n' "$name" "$name" "$path" >>/etc/odbcinst.ini
}
register "PostgreSQL Unicode" psqlodbcw.so
register "MariaDB Unicode" libmaodbc.so
