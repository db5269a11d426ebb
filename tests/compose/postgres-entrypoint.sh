#!/bin/sh
# The official postgres image's contract, enough of it for docker-compose.yml: on the first
# start, a cluster for $POSTGRES_USER with the password of $POSTGRES_PASSWORD_FILE, then the
# scripts of /docker-entrypoint-initdb.d (on a local socket only), then the server.
set -eu
PGDATA=/var/lib/postgresql/data
user="${POSTGRES_USER:-postgres}"
[ "${1:-}" = postgres ] && shift
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA" && chown postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
    tr -d '\n' <"$POSTGRES_PASSWORD_FILE" >/tmp/pwfile && chown postgres /tmp/pwfile
    su postgres -c "initdb -D $PGDATA -U $user --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null"
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    su postgres -c "pg_ctl -D $PGDATA -o '-c listen_addresses=' -w start >/dev/null"
    for script in /docker-entrypoint-initdb.d/*.sh; do
        [ -e "$script" ] && POSTGRES_USER="$user" sh "$script"
    done
    su postgres -c "pg_ctl -D $PGDATA -m fast -w stop >/dev/null"
fi
exec su postgres -c "exec postgres -D $PGDATA -c listen_addresses='*' $*"
