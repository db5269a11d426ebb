#!/usr/bin/env bash
# Installs (when missing) and starts the services the test suite needs, idempotently: running it
# again leaves running services alone and restarts the ones that died.
#
# Usage: scripts/services.sh [SERVICE]...      (default: every known service)
# Services: postgres, dockerd (with the test image dcp-test/busybox:latest), registry (a local
# Docker registry on 127.0.0.1 holding that image, for pulls), nats (nats-server with JetStream),
# sshd (an OpenSSH server on 127.0.0.1 with its own host key, for remote Docker hosts),
# chromium (Debian's browser, driven by the UI's browser tests through playwright-core)
#
# Run it as root (it installs Debian packages and runs servers as their unprivileged users). As
# another user it only checks that the packages are there, and runs the servers as that user.
#
# Environment:
#   DCP_SERVICES_DIR        where the services keep data, logs and sockets (default /tmp/dcp-services)
#   DCP_TEST_PG_PORT        TCP port of the test PostgreSQL on 127.0.0.1 (default 55432)
#   DCP_TEST_REGISTRY_PORT  TCP port of the test registry on 127.0.0.1 (default 55000)
#   DCP_TEST_NATS_PORT      TCP port of the test NATS on 127.0.0.1 (default 54222; monitoring on +4000)
#   DCP_TEST_SSHD_PORT      TCP port of the test sshd on 127.0.0.1 (default 52222)
#   DCP_SERVICES_TIMEOUT    seconds to wait for a service to become ready (default 60)
#
# At the end it writes "$DCP_SERVICES_DIR/env", to be sourced by the test command:
#   export DCP_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres
#   export DCP_TEST_DOCKERD_OWNED=1   (dockerd was started by this script: tests may restart it)
#
# Each service is a function service_NAME that installs, starts and waits for readiness, and
# exports its settings with export_setting; nats, dockerd, sshd and a registry go in the same way.
set -euo pipefail

SERVICES_DIR="${DCP_SERVICES_DIR:-/tmp/dcp-services}"
TIMEOUT="${DCP_SERVICES_TIMEOUT:-60}"
KNOWN_SERVICES=(postgres dockerd registry nats sshd chromium)

log() { printf 'services: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# --- packages -----------------------------------------------------------------------------------

APT_UPDATED=false

# install_packages PACKAGE...: installs the given Debian packages (callers pass only missing ones).
install_packages() {
    (($#)) || return 0
    if ! is_root; then
        die "missing: $* (install with \`apt-get install $*\` as root, or run this script as root)"
    fi
    if ! $APT_UPDATED; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=true
    fi
    log "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- settings for the test command --------------------------------------------------------------

SETTINGS=()

# export_setting NAME VALUE: recorded in "$SERVICES_DIR/env" at the end.
export_setting() { SETTINGS+=("export $1=$2"); }

write_env_file() {
    local env_file="$SERVICES_DIR/env" tmp="$SERVICES_DIR/env.tmp" line name
    # Keep the settings of services not started this time.
    : >"$tmp"
    if [[ -f $env_file ]]; then
        while IFS= read -r line; do
            name="${line#export }"
            name="${name%%=*}"
            if ! printf '%s\n' "${SETTINGS[@]}" | grep -q "^export $name="; then
                printf '%s\n' "$line" >>"$tmp"
            fi
        done <"$env_file"
    fi
    printf '%s\n' "${SETTINGS[@]}" >>"$tmp"
    mv "$tmp" "$env_file"
    log "wrote $env_file:"
    cat "$env_file"
}

# --- helpers ------------------------------------------------------------------------------------

# wait_until DESCRIPTION COMMAND...: polls COMMAND until it succeeds or TIMEOUT seconds pass.
wait_until() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@"; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${TIMEOUT}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

# fail_with_log LOGFILE MESSAGE: prints the end of the log and exits.
fail_with_log() {
    log "last lines of $1:"
    tail -n 30 "$1" >&2 || true
    die "$2"
}

# --- postgres -----------------------------------------------------------------------------------

PG_PORT="${DCP_TEST_PG_PORT:-55432}"
PG_BIN=""
PG_DATA=""
PG_SOCKETS=""
PG_LOG=""
PG_AS=()

pg_find_bin_dir() {
    local dir
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
        PG_BIN=$dir
        return 0
    fi
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres ]]; then
        PG_BIN=$dir
        return 0
    fi
    return 1
}

# pg COMMAND ARG...: runs a server program as the cluster's user.
pg() { "${PG_AS[@]}" "$PG_BIN/$1" "${@:2}"; }

# The pid in postmaster.pid, if it is a live postgres working in our data dir. A killed postmaster
# may linger as a zombie until init reaps it, and a pid may be recycled: neither is our server.
pg_running_pid() {
    local pid
    [[ -f $PG_DATA/postmaster.pid ]] || return 1
    pid=$(head -n 1 "$PG_DATA/postmaster.pid")
    [[ $pid =~ ^[0-9]+$ ]] && pg_is_cluster_process "$pid" || return 1
    printf '%s\n' "$pid"
}

# pg_is_cluster_process PID: a live (not zombie) postgres process working in our data dir.
pg_is_cluster_process() {
    local stat comm state
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    comm=${stat#*(}
    comm=${comm%)*}
    state=${stat##*) }
    state=${state%% *}
    [[ $comm == postgres && $state != [ZXx] ]] || return 1
    [[ $(readlink "/proc/$1/cwd" 2>/dev/null) == "$PG_DATA" ]]
}

# No process of an old server on our data dir is left (they exit soon after their postmaster dies).
pg_no_cluster_processes() {
    local dir
    for dir in /proc/[0-9]*; do
        if pg_is_cluster_process "${dir#/proc/}"; then
            return 1
        fi
    done
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }

pg_init() {
    local staging="$PG_DATA.initdb"
    rm -rf "$staging"
    mkdir -m 0700 "$staging"
    if is_root; then
        chown postgres:postgres "$staging"
        "${PG_AS[@]}" test -w "$staging" ||
            die "user postgres cannot write to $staging: every directory above $SERVICES_DIR must be traversable by it (or set DCP_SERVICES_DIR)"
    fi
    log "initialising a PostgreSQL cluster in $PG_DATA"
    pg initdb -D "$staging" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions >/dev/null
    printf "\n# Settings of scripts/services.sh, rewritten at every start\ninclude_if_exists = 'dcp-services.conf'\n" \
        >>"$staging/postgresql.conf"
    # Renamed only when complete, so an interrupted initdb is simply redone.
    mv "$staging" "$PG_DATA"
}

pg_write_settings() {
    local sockets="$PG_SOCKETS"
    # sun_path holds 107 characters; past that, TCP only.
    if ((${#sockets} + ${#PG_PORT} + 10 > 107)); then
        log "$PG_SOCKETS is too long for a unix socket path; TCP only"
        sockets=""
    fi
    cat >"$PG_DATA/dcp-services.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockets'
max_connections = 300
fsync = on
idle_in_transaction_session_timeout = '60s'
EOF
    if is_root; then chown postgres:postgres "$PG_DATA/dcp-services.conf"; fi
}

pg_start() {
    # Not `[[ ]] || pg_init`: errexit does not apply on the left of `||`.
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then pg_init; fi
    if [[ ! -d $PG_SOCKETS ]]; then mkdir -m 0700 "$PG_SOCKETS"; fi
    touch "$PG_LOG"
    if is_root; then chown postgres:postgres "$PG_SOCKETS" "$PG_LOG"; fi

    local pid running_port
    if pid=$(pg_running_pid); then
        running_port=$(sed -n 4p "$PG_DATA/postmaster.pid")
        if [[ $running_port == "$PG_PORT" ]]; then
            log "postgres (pid $pid) is up but not ready yet; waiting for it"
            wait_until "postgres on 127.0.0.1:$PG_PORT" pg_ready ||
                fail_with_log "$PG_LOG" "postgres did not become ready"
            return 0
        fi
        log "postgres (pid $pid) runs on port $running_port; restarting it on $PG_PORT"
        pg pg_ctl stop -D "$PG_DATA" -m fast -w -t "$TIMEOUT" >/dev/null ||
            fail_with_log "$PG_LOG" "could not stop postgres"
    elif [[ -f $PG_DATA/postmaster.pid ]]; then
        log "removing the stale postmaster.pid of a server that died"
        wait_until "the processes of the old postgres to exit" pg_no_cluster_processes ||
            die "processes of an old postgres still run in $PG_DATA; stop them first"
        rm -f "$PG_DATA/postmaster.pid" "$PG_SOCKETS/.s.PGSQL.$PG_PORT.lock"
    fi

    pg_write_settings
    log "starting postgres on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
    pg pg_ctl start -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" >/dev/null ||
        fail_with_log "$PG_LOG" "postgres failed to start"
    wait_until "postgres on 127.0.0.1:$PG_PORT" pg_ready ||
        fail_with_log "$PG_LOG" "postgres did not become ready"
}

service_postgres() {
    if ! pg_find_bin_dir; then
        install_packages postgresql
        pg_find_bin_dir || die "PostgreSQL server programs not found after installing postgresql"
    fi
    PG_DATA="$SERVICES_DIR/postgres"
    PG_SOCKETS="$SERVICES_DIR/postgres-run"
    PG_LOG="$SERVICES_DIR/postgres.log"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "user postgres is missing (the postgresql package creates it)"
        if command -v setpriv >/dev/null; then
            PG_AS=(setpriv "--reuid=$(id -u postgres)" "--regid=$(id -g postgres)" --clear-groups --)
        else
            PG_AS=(runuser -u postgres --)
        fi
    else
        PG_AS=(env)
    fi

    if ! pg_ready; then pg_start; fi
    log "postgres is ready on 127.0.0.1:$PG_PORT"
    export_setting DCP_TEST_DATABASE_URL "postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

# --- dockerd ------------------------------------------------------------------------------------

TEST_IMAGE=dcp-test/busybox:latest

docker_ready() { docker version >/dev/null 2>&1; }

# A daemon that was killed leaves its pid files behind, and a new one then refuses to start.
docker_remove_stale_pid_files() {
    local file pid
    for file in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
        [[ -f $file ]] || continue
        pid=$(cat "$file" 2>/dev/null || true)
        if [[ ! $pid =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            log "removing stale $file"
            rm -f "$file"
        fi
    done
}

# An image made here, as none can be pulled: a static busybox root filesystem.
docker_build_test_image() {
    docker image inspect "$TEST_IMAGE" >/dev/null 2>&1 && return 0
    log "building $TEST_IMAGE from busybox-static"
    local root applet
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
    cp /bin/busybox "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$TEST_IMAGE" >/dev/null
    rm -rf "$root"
}

service_dockerd() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    # To check docker-compose.yml, and to run it (tests/compose.rs, on images it makes from
    # a Debian base built with debootstrap: this machine pulls nothing from Docker Hub).
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
    install_packages "${missing[@]}"
    if ! docker_ready; then
        is_root || die "dockerd is not running, and only root can start it"
        docker_remove_stale_pid_files
        log "starting dockerd"
        setsid dockerd >"$SERVICES_DIR/dockerd.log" 2>&1 </dev/null &
        echo $! >"$SERVICES_DIR/dockerd.started"
        wait_until dockerd docker_ready || fail_with_log "$SERVICES_DIR/dockerd.log" "dockerd did not start"
    fi
    docker_build_test_image
    log "dockerd is ready ($(docker version --format '{{.Server.Version}}'))"
    export_setting DCP_TEST_DOCKER_IMAGE "$TEST_IMAGE"
    # Tests that stop and restart the engine only touch a dockerd this script started (never
    # one a developer runs for their own containers): they restart it with this script.
    local started
    started=$(cat "$SERVICES_DIR/dockerd.started" 2>/dev/null || true)
    if [[ -n $started && $started == "$(cat /var/run/docker.pid 2>/dev/null || true)" ]]; then
        export_setting DCP_TEST_DOCKERD_OWNED 1
    else
        export_setting DCP_TEST_DOCKERD_OWNED 0
    fi
}

# --- registry -----------------------------------------------------------------------------------

REGISTRY_PORT="${DCP_TEST_REGISTRY_PORT:-55000}"

registry_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/"; }

# A private registry (Debian's docker-registry) on 127.0.0.1, seeded with the test image;
# dockerd trusts a loopback registry without TLS.
service_registry() {
    command -v docker-registry >/dev/null || install_packages docker-registry
    command -v curl >/dev/null || install_packages curl
    docker_ready || service_dockerd
    local dir="$SERVICES_DIR/registry"
    if ! registry_ready; then
        mkdir -p "$dir/data"
        cat >"$dir/config.yml" <<EOF_CONFIG
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF_CONFIG
        log "starting docker-registry on 127.0.0.1:$REGISTRY_PORT"
        setsid docker-registry serve "$dir/config.yml" >"$SERVICES_DIR/registry.log" 2>&1 </dev/null &
        wait_until registry registry_ready || fail_with_log "$SERVICES_DIR/registry.log" "docker-registry did not start"
    fi
    local remote="127.0.0.1:$REGISTRY_PORT/$TEST_IMAGE"
    if ! curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/${TEST_IMAGE%%:*}/manifests/latest" \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'; then
        log "pushing $TEST_IMAGE to the registry"
        docker tag "$TEST_IMAGE" "$remote"
        docker push "$remote" >/dev/null
        docker rmi "$remote" >/dev/null
    fi
    log "registry is ready on 127.0.0.1:$REGISTRY_PORT"
    export_setting DCP_TEST_REGISTRY "127.0.0.1:$REGISTRY_PORT"
}

# --- main ---------------------------------------------------------------------------------------

# --- nats ---------------------------------------------------------------------------------------

NATS_PORT="${DCP_TEST_NATS_PORT:-54222}"
NATS_MONITOR_PORT=$((NATS_PORT + 4000))

nats_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$NATS_MONITOR_PORT/healthz"; }

# nats-server with JetStream on 127.0.0.1, its store under the services dir. Tests that restart
# NATS run their own nats-server (the binary is exported) and leave this one alone.
service_nats() {
    command -v nats-server >/dev/null || install_packages nats-server
    command -v curl >/dev/null || install_packages curl
    if ! nats_ready; then
        mkdir -p "$SERVICES_DIR/nats"
        log "starting nats-server on 127.0.0.1:$NATS_PORT"
        setsid nats-server -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -js \
            -sd "$SERVICES_DIR/nats" >"$SERVICES_DIR/nats.log" 2>&1 </dev/null &
        wait_until nats nats_ready || fail_with_log "$SERVICES_DIR/nats.log" "nats-server did not start"
    fi
    log "nats is ready on 127.0.0.1:$NATS_PORT"
    export_setting DCP_TEST_NATS_URL "nats://127.0.0.1:$NATS_PORT"
    export_setting DCP_TEST_NATS_SERVER "$(command -v nats-server)"
}

# --- sshd ---------------------------------------------------------------------------------------

SSHD_PORT="${DCP_TEST_SSHD_PORT:-52222}"
SSH_USER=dcp-ssh

sshd_ready() { ssh-keyscan -p "$SSHD_PORT" -T 2 127.0.0.1 2>/dev/null | grep -q ssh-ed25519; }

# A private OpenSSH server on 127.0.0.1 that dcp reaches as a remote Docker host: its own
# ED25519 host key, one user (in the docker group, so the engine's socket is reachable over a
# direct-streamlocal channel) with a random password and an authorized_keys file the tests
# append to. Tests that stop sshd or change its host key run their own sshd from this config.
service_sshd() {
    is_root || die "the test sshd needs root (it runs a user's sessions)"
    local missing=()
    [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
    command -v ssh-keyscan >/dev/null || missing+=(openssh-client)
    install_packages "${missing[@]}"
    docker_ready || service_dockerd
    local dir="$SERVICES_DIR/sshd"
    mkdir -p "$dir/authorized_keys" /run/sshd
    chmod 0755 "$dir" "$dir/authorized_keys"
    if ! id "$SSH_USER" >/dev/null 2>&1; then
        log "creating user $SSH_USER"
        useradd --create-home --shell /bin/sh "$SSH_USER"
    fi
    getent group docker >/dev/null || groupadd --system docker
    id -nG "$SSH_USER" | grep -qw docker || usermod -aG docker "$SSH_USER"
    if [[ ! -s $dir/password ]]; then
        (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password")
    fi
    printf '%s:%s\n' "$SSH_USER" "$(cat "$dir/password")" | chpasswd
    [[ -f $dir/host_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C dcp-test-sshd -f "$dir/host_ed25519"
    touch "$dir/authorized_keys/$SSH_USER"
    chown "$SSH_USER" "$dir/authorized_keys/$SSH_USER"
    chmod 0644 "$dir/authorized_keys/$SSH_USER"
    cat >"$dir/sshd_config" <<EOF_SSHD
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
AuthorizedKeysFile $dir/authorized_keys/%u
StrictModes no
AllowUsers $SSH_USER
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin no
AllowStreamLocalForwarding yes
# OpenSSH lets a channel reach a unix socket (the Docker socket) only when local TCP
# forwarding is allowed too.
AllowTcpForwarding local
X11Forwarding no
MaxSessions 100
MaxStartups 100:30:200
ClientAliveInterval 15
LogLevel VERBOSE
EOF_SSHD
    if ! sshd_ready; then
        /usr/sbin/sshd -t -f "$dir/sshd_config" || die "the test sshd configuration is invalid"
        log "starting sshd on 127.0.0.1:$SSHD_PORT"
        setsid /usr/sbin/sshd -D -e -f "$dir/sshd_config" -p "$SSHD_PORT" -o "PidFile=$dir/sshd.pid" \
            >"$SERVICES_DIR/sshd.log" 2>&1 </dev/null &
        wait_until sshd sshd_ready || fail_with_log "$SERVICES_DIR/sshd.log" "sshd did not start"
    fi
    log "sshd is ready on 127.0.0.1:$SSHD_PORT"
    export_setting DCP_TEST_SSHD_PORT "$SSHD_PORT"
    export_setting DCP_TEST_SSHD "/usr/sbin/sshd"
    export_setting DCP_TEST_SSHD_CONFIG "$dir/sshd_config"
    export_setting DCP_TEST_SSH_USER "$SSH_USER"
    export_setting DCP_TEST_SSH_PASSWORD_FILE "$dir/password"
    export_setting DCP_TEST_SSH_AUTHORIZED_KEYS "$dir/authorized_keys/$SSH_USER"
    export_setting DCP_TEST_SSH_HOST_KEY "$dir/host_ed25519.pub"
}

# Debian's chromium for the browser tests (never a browser downloaded by playwright).
service_chromium() {
    [[ -x /usr/bin/chromium ]] || install_packages chromium
    log "chromium is $(/usr/bin/chromium --version 2>/dev/null || echo 'installed')"
    export_setting DCP_TEST_CHROMIUM /usr/bin/chromium
}

main() {
    local services=("$@") service
    ((${#services[@]})) || services=("${KNOWN_SERVICES[@]}")
    for service in "${services[@]}"; do
        declare -F "service_$service" >/dev/null ||
            die "unknown service '$service' (known: ${KNOWN_SERVICES[*]})"
    done

    # 0755: the servers' users must reach their directories inside.
    if [[ ! -d $SERVICES_DIR ]]; then
        mkdir -p "$SERVICES_DIR"
        chmod 0755 "$SERVICES_DIR"
    fi
    # Canonical, as processes are matched to the data dir by their working directory.
    SERVICES_DIR=$(realpath "$SERVICES_DIR")

    for service in "${services[@]}"; do
        "service_$service"
    done
    write_env_file
}

main "$@"
