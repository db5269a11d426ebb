#!/bin/sh
# PostgreSQL's first start (docker-entrypoint-initdb.d): dcp's two roles and its database.
# `dcp_owner` owns the database and its tables (dcp migrates as it); `dcp` is what dcp runs
# as: dcp grants it what it needs after each migration, and it cannot update, delete or
# truncate the event log. Neither is a superuser. Passwords come from compose secrets.
set -eu
owner_password="$(tr -d '\n' </run/secrets/dcp_owner_password)"
app_password="$(tr -d '\n' </run/secrets/dcp_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$owner_password" -v app_password="$app_password" <<'SQL'
CREATE ROLE dcp_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE dcp LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
CREATE DATABASE dcp OWNER dcp_owner;
REVOKE ALL ON DATABASE dcp FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE dcp TO dcp;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname dcp <<'SQL'
ALTER SCHEMA public OWNER TO dcp_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
