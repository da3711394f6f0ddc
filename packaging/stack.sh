#!/bin/sh
# farutech local stack launcher: a private PostgreSQL cluster and a private
# `nats-server -js`, both bound to 127.0.0.1, all state under one data dir.
#
# Usage: packaging/stack.sh start | stop | status | env
#                           | start-pg | stop-pg | start-nats | stop-nats
#
# Environment (all optional):
#   FT_VAR_DIR            data dir (default: <repo>/var; a relative path is
#                         resolved against the repo root)
#   FT_PG_PORT            PostgreSQL TCP port          (default 55432)
#   FT_NATS_PORT          NATS client port             (default 14222)
#   FT_NATS_MONITOR_PORT  NATS HTTP monitoring port    (default 18222)
#   FT_PG_FAST=1          fsync/synchronous_commit/full_page_writes off (tests)
#   FT_PG_BIN             directory holding initdb/pg_ctl/psql (autodetected)
#
# Layout under FT_VAR_DIR:
#   pg/ pg.log            PostgreSQL cluster and its log
#   nats/ nats.log        JetStream store dir and server log
#   nats.pid nats.conf    nats-server pid file and generated config (0600)
#   secrets/              (0700) pg.password, nats.password (0600)
#   stack.env             the FT_* URLs printed by `start` (0600); removed by
#                         a full `stop`, so `env` then exits 1
#
# stdout carries only the FT_* lines (start*, env) or the status report;
# progress and errors go to stderr. Any failure exits non-zero.
#
# When run as root, initdb/pg_ctl run as the unprivileged `postgres` user (or
# as the owner of an existing pg/ directory), because PostgreSQL refuses to
# run as root. nats-server runs as the invoking user.

# shellcheck disable=SC2015  # "a && b || die" is intended: die if either fails
set -eu

PROG=stack

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: stack.sh start | stop | status | env | start-pg | stop-pg | start-nats | stop-nats
EOF
    exit 2
}

# ---------------------------------------------------------------- settings

SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd -P) \
    || die "cannot locate the script directory"
REPO_ROOT=$(dirname -- "$SCRIPT_DIR")

PG_PORT=${FT_PG_PORT:-55432}
NATS_PORT=${FT_NATS_PORT:-14222}
NATS_MON_PORT=${FT_NATS_MONITOR_PORT:-18222}

check_port() {
    case $2 in
        ''|*[!0-9]*) die "$1 must be a port number, got '$2'" ;;
    esac
    if [ "$2" -lt 1 ] || [ "$2" -gt 65535 ]; then
        die "$1 out of range: $2"
    fi
}
check_port FT_PG_PORT "$PG_PORT"
check_port FT_NATS_PORT "$NATS_PORT"
check_port FT_NATS_MONITOR_PORT "$NATS_MON_PORT"

VAR_DIR=${FT_VAR_DIR:-var}
case $VAR_DIR in
    /*) ;;
    *) VAR_DIR=$REPO_ROOT/$VAR_DIR ;;
esac
case $VAR_DIR in
    *[\'\"\\]*) die "FT_VAR_DIR must not contain quote or backslash characters: $VAR_DIR" ;;
esac
nl='
'
case $VAR_DIR in
    *"$nl"*) die "FT_VAR_DIR must not contain a newline" ;;
esac

# Make VAR_DIR absolute and canonical if it already exists (it may not yet).
canon_var_dir() {
    if [ -d "$VAR_DIR" ]; then
        VAR_DIR=$(CDPATH='' cd -- "$VAR_DIR" && pwd -P) || die "cannot enter $VAR_DIR"
    fi
    PG_DIR=$VAR_DIR/pg
    PG_LOG=$VAR_DIR/pg.log
    NATS_DIR=$VAR_DIR/nats
    NATS_LOG=$VAR_DIR/nats.log
    NATS_PID=$VAR_DIR/nats.pid
    NATS_CONF=$VAR_DIR/nats.conf
    SECRETS_DIR=$VAR_DIR/secrets
    PG_PWFILE=$SECRETS_DIR/pg.password
    NATS_PWFILE=$SECRETS_DIR/nats.password
    STACK_ENV=$VAR_DIR/stack.env
}
canon_var_dir

# PostgreSQL binaries are not on PATH on Debian.
find_pg_bin() {
    if [ -n "${FT_PG_BIN:-}" ]; then
        PG_BIN=$FT_PG_BIN
    elif [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
        PG_BIN=/usr/lib/postgresql/15/bin
    else
        PG_BIN=
        for d in /usr/lib/postgresql/*/bin; do
            [ -x "$d/pg_ctl" ] && PG_BIN=$d
        done
        if [ -z "$PG_BIN" ] && command -v pg_config >/dev/null 2>&1; then
            PG_BIN=$(pg_config --bindir)
        fi
        if [ -z "$PG_BIN" ] && command -v pg_ctl >/dev/null 2>&1; then
            PG_BIN=$(dirname -- "$(command -v pg_ctl)")
        fi
    fi
    [ -n "$PG_BIN" ] && [ -x "$PG_BIN/pg_ctl" ] \
        || die "PostgreSQL binaries not found (set FT_PG_BIN)"
}

IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ------------------------------------------------------------------ helpers

tail_log() {
    if [ -r "$1" ]; then
        printf '%s: --- last lines of %s ---\n' "$PROG" "$1" >&2
        tail -n 25 "$1" >&2 || true
        printf '%s: ---\n' "$PROG" >&2
    fi
}

now() { date +%s; }

gen_password() {
    od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
}

read_secret() {
    [ -r "$1" ] || die "cannot read $1"
    s=$(cat "$1")
    [ -n "$s" ] || die "$1 is empty"
    printf '%s' "$s"
}

# Create the var dir and the secrets (once). Used by every start command.
prepare_var() {
    mkdir -p "$VAR_DIR" || die "cannot create $VAR_DIR"
    canon_var_dir
    [ -w "$VAR_DIR" ] && [ -x "$VAR_DIR" ] \
        || die "$VAR_DIR is not writable by you (owner: $(stat -c %U "$VAR_DIR")); was it created by another user? set FT_VAR_DIR"
    if [ ! -d "$SECRETS_DIR" ]; then
        mkdir -p "$SECRETS_DIR" || die "cannot create $SECRETS_DIR"
    fi
    chmod 0700 "$SECRETS_DIR" || die "cannot chmod $SECRETS_DIR"
    for f in "$PG_PWFILE" "$NATS_PWFILE"; do
        if [ ! -s "$f" ]; then
            if [ "$f" = "$PG_PWFILE" ] && [ -e "$PG_DIR/PG_VERSION" ]; then
                die "$PG_DIR is initialised but $PG_PWFILE is missing; cannot recover the password (remove $PG_DIR to start over)"
            fi
            pw=$(gen_password)
            [ ${#pw} -eq 32 ] || die "could not generate a password from /dev/urandom"
            (umask 077 && printf '%s\n' "$pw" > "$f.tmp.$$") \
                && mv -f "$f.tmp.$$" "$f" || die "cannot write $f"
        fi
        chmod 0600 "$f" || die "cannot chmod $f"
    done
}

env_lines() {
    pgpw=$(read_secret "$PG_PWFILE")
    natspw=$(read_secret "$NATS_PWFILE")
    printf 'FT_DATABASE_URL=postgresql://farutech:%s@127.0.0.1:%s/farutech\n' "$pgpw" "$PG_PORT"
    printf 'FT_NATS_URL=nats://farutech:%s@127.0.0.1:%s\n' "$natspw" "$NATS_PORT"
    printf 'FT_NATS_MONITOR_URL=http://127.0.0.1:%s\n' "$NATS_MON_PORT"
}

write_and_print_env() {
    lines=$(env_lines) || exit 1
    (umask 077 && printf '%s\n' "$lines" > "$STACK_ENV.tmp.$$") \
        && mv -f "$STACK_ENV.tmp.$$" "$STACK_ENV" || die "cannot write $STACK_ENV"
    printf '%s\n' "$lines"
}

# A pid is alive if it exists and is not a zombie (PID 1 in containers does
# not always reap orphans).
pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    if [ -r "/proc/$1/stat" ]; then
        st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || st=
        [ "$st" != Z ] || return 1
    fi
    return 0
}

# ------------------------------------------------------------- PostgreSQL

PG_RUN_AS=

# Decide which user runs initdb/pg_ctl. Only relevant when we are root.
pg_pick_user() {
    PG_RUN_AS=
    [ "$IS_ROOT" -eq 1 ] || return 0
    owner=
    [ -d "$PG_DIR" ] && owner=$(stat -c %U "$PG_DIR")
    if [ -n "$owner" ] && [ "$owner" != root ] && [ "$owner" != UNKNOWN ]; then
        PG_RUN_AS=$owner
    else
        id postgres >/dev/null 2>&1 \
            || die "running as root, but there is no 'postgres' user to run PostgreSQL as"
        PG_RUN_AS=postgres
    fi
}

# Run a command as the PostgreSQL owner (a no-op wrapper for ordinary users).
as_pg() {
    if [ -z "$PG_RUN_AS" ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u "$PG_RUN_AS" -- "$@")
    else
        (cd / && setpriv --reuid="$PG_RUN_AS" --regid="$(id -g "$PG_RUN_AS")" \
            --init-groups -- "$@")
    fi
}

# Root only: make sure the PostgreSQL user can reach the var dir, and owns pg/.
pg_fix_perms() {
    [ -n "$PG_RUN_AS" ] || return 0
    if ! as_pg test -x "$VAR_DIR"; then
        chmod o+x "$VAR_DIR" || die "cannot chmod o+x $VAR_DIR"
        as_pg test -x "$VAR_DIR" \
            || die "user '$PG_RUN_AS' cannot reach $VAR_DIR (a parent directory is not searchable); choose another FT_VAR_DIR"
    fi
    if [ -d "$PG_DIR" ] && [ "$(stat -c %U "$PG_DIR")" != "$PG_RUN_AS" ]; then
        say "changing ownership of $PG_DIR to $PG_RUN_AS"
        chown -R "$PG_RUN_AS:" "$PG_DIR" || die "cannot chown $PG_DIR"
    fi
    touch "$PG_LOG" && chown "$PG_RUN_AS:" "$PG_LOG" && chmod 0640 "$PG_LOG" \
        || die "cannot prepare $PG_LOG"
}

# Ordinary user: fail clearly on a cluster owned by somebody else.
pg_check_owner() {
    [ "$IS_ROOT" -eq 0 ] || return 0
    [ -d "$PG_DIR" ] || return 0
    me=$(id -u)
    owner=$(stat -c %u "$PG_DIR")
    [ "$owner" = "$me" ] \
        || die "$PG_DIR belongs to uid $owner (was it started as root?); run as that user/root or use another FT_VAR_DIR"
}

pg_initialised() { as_pg test -f "$PG_DIR/PG_VERSION"; }

# pg_ctl status: 0 running, 3 not running, 4 no accessible data dir.
pg_ctl_status() {
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1 || return $?
}

pg_isready_now() {
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

pg_initdb() {
    if [ -d "$PG_DIR" ] && [ -n "$(ls -A "$PG_DIR" 2>/dev/null)" ]; then
        die "$PG_DIR exists and is not empty but is not an initialised cluster (no PG_VERSION); remove it"
    fi
    mkdir -p "$PG_DIR" && chmod 0700 "$PG_DIR" || die "cannot create $PG_DIR"
    pwfile=$PG_PWFILE
    if [ -n "$PG_RUN_AS" ]; then
        chown "$PG_RUN_AS:" "$PG_DIR" || die "cannot chown $PG_DIR"
        # secrets/ is 0700 root: give initdb a private copy it can read.
        pwfile=$VAR_DIR/.initdb-pw.$$
        trap 'rm -f "$pwfile"' EXIT
        trap 'rm -f "$pwfile"; exit 1' HUP INT TERM
        (umask 077 && cat "$PG_PWFILE" > "$pwfile") && chown "$PG_RUN_AS:" "$pwfile" \
            || die "cannot write $pwfile"
    fi
    say "initialising PostgreSQL cluster in $PG_DIR${PG_RUN_AS:+ (as user $PG_RUN_AS)}"
    ok=0
    for loc in C.UTF-8 C; do
        set +e
        out=$(as_pg "$PG_BIN/initdb" -D "$PG_DIR" -U farutech \
            --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
            --pwfile="$pwfile" -E UTF8 --locale="$loc" 2>&1)
        rc=$?
        set -e
        if [ $rc -eq 0 ]; then
            ok=1
            break
        fi
        if [ "$loc" = C.UTF-8 ]; then
            say "initdb with --locale=C.UTF-8 failed, retrying with --locale=C"
        fi
    done
    if [ -n "$PG_RUN_AS" ]; then
        rm -f "$pwfile"
        trap - EXIT HUP INT TERM
    fi
    if [ $ok -ne 1 ]; then
        printf '%s\n' "$out" | tail -n 25 >&2
        die "initdb failed for $PG_DIR"
    fi
}

pg_ensure_db() {
    pgpw=$(read_secret "$PG_PWFILE")
    set +e
    exists=$(PGPASSWORD=$pgpw PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q \
        -h 127.0.0.1 -p "$PG_PORT" -U farutech -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname='farutech'" 2>&1)
    rc=$?
    set -e
    [ $rc -eq 0 ] || die "cannot query PostgreSQL on 127.0.0.1:$PG_PORT: $exists"
    if [ "$exists" != 1 ]; then
        say "creating database farutech"
        set +e
        out=$(PGPASSWORD=$pgpw PGCONNECT_TIMEOUT=10 "$PG_BIN/createdb" \
            -h 127.0.0.1 -p "$PG_PORT" -U farutech -O farutech farutech 2>&1)
        rc=$?
        set -e
        if [ $rc -ne 0 ]; then
            case $out in
                *"already exists"*) ;;   # lost a race with a parallel start
                *) die "createdb farutech failed: $out" ;;
            esac
        fi
    fi
}

start_pg() {
    find_pg_bin
    prepare_var
    pg_check_owner
    pg_pick_user
    pg_fix_perms
    pg_initialised || pg_initdb
    if pg_ctl_status; then
        say "postgresql already running ($PG_DIR)"
    else
        # Unix sockets go into the data dir itself when the socket path
        # "<dir>/.s.PGSQL.<port>" fits sun_path (107 bytes), otherwise they
        # are disabled: never the shared /var/run/postgresql, so parallel
        # stacks cannot collide (clients use TCP 127.0.0.1 anyway).
        sockdir=$PG_DIR
        [ $(( ${#PG_DIR} + 10 + ${#PG_PORT} )) -le 107 ] || sockdir=
        opts="-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='$sockdir' -c max_connections=200"
        if [ "${FT_PG_FAST:-0}" = 1 ]; then
            opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        fi
        say "starting postgresql on 127.0.0.1:$PG_PORT"
        [ -n "$PG_RUN_AS" ] || touch "$PG_LOG"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -l "$PG_LOG" -w -t 60 start \
                -o "$opts" </dev/null >/dev/null 2>&1; then
            tail_log "$PG_LOG"
            die "postgresql failed to start (data $PG_DIR, port $PG_PORT)"
        fi
    fi
    deadline=$(( $(now) + 30 ))
    until pg_isready_now; do
        if [ "$(now)" -ge "$deadline" ]; then
            tail_log "$PG_LOG"
            die "postgresql does not answer on 127.0.0.1:$PG_PORT (pg_isready)"
        fi
        sleep 0.2
    done
    pg_ensure_db
    say "postgresql ready on 127.0.0.1:$PG_PORT"
}

stop_pg() {
    if [ ! -d "$PG_DIR" ]; then
        say "postgresql not initialised ($PG_DIR), nothing to stop"
        return 0
    fi
    find_pg_bin
    pg_check_owner
    pg_pick_user
    if ! pg_ctl_status; then
        say "postgresql not running"
        return 0
    fi
    say "stopping postgresql"
    if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR" -m fast -w -t 60 stop >/dev/null 2>&1; then
        tail_log "$PG_LOG"
        die "pg_ctl stop failed for $PG_DIR"
    fi
    say "postgresql stopped"
}

# ------------------------------------------------------------ nats-server

nats_healthy() {
    curl -fsS --noproxy '*' -o /dev/null --max-time 2 \
        "http://127.0.0.1:$NATS_MON_PORT/healthz?js-enabled-only=true" 2>/dev/null
}

# Prints the pid of our running nats-server (from the pid file), or fails.
nats_running_pid() {
    [ -r "$NATS_PID" ] || return 1
    p=$(tr -dc '0-9' < "$NATS_PID")
    [ -n "$p" ] || return 1
    pid_alive "$p" || return 1
    if [ -r "/proc/$p/comm" ]; then
        [ "$(cat "/proc/$p/comm")" = nats-server ] || return 1
    fi
    printf '%s\n' "$p"
}

write_nats_conf() {
    natspw=$(read_secret "$NATS_PWFILE")
    (
        umask 077
        cat > "$NATS_CONF.tmp.$$" <<EOF
# generated by packaging/stack.sh -- rewritten on every start
server_name: "farutech-local"
listen: "127.0.0.1:$NATS_PORT"
http: "127.0.0.1:$NATS_MON_PORT"
pid_file: "$NATS_PID"
log_file: "$NATS_LOG"
jetstream {
  store_dir: "$NATS_DIR"
}
authorization {
  user: "farutech"
  password: "$natspw"
}
EOF
    ) && mv -f "$NATS_CONF.tmp.$$" "$NATS_CONF" || die "cannot write $NATS_CONF"
}

start_nats() {
    command -v nats-server >/dev/null 2>&1 || die "nats-server not found on PATH"
    command -v curl >/dev/null 2>&1 || die "curl not found on PATH"
    prepare_var
    deadline=$(( $(now) + 30 ))
    if pid=$(nats_running_pid); then
        until nats_healthy; do
            if [ "$(now)" -ge "$deadline" ]; then
                tail_log "$NATS_LOG"
                die "nats-server (pid $pid) is running but not healthy on 127.0.0.1:$NATS_MON_PORT"
            fi
            sleep 0.2
        done
        say "nats-server already running (pid $pid)"
        say "nats-server ready on 127.0.0.1:$NATS_PORT (monitor 127.0.0.1:$NATS_MON_PORT)"
        return 0
    fi
    rm -f "$NATS_PID"
    # Something else answering on our monitor port would fake readiness.
    if nats_healthy; then
        die "port 127.0.0.1:$NATS_MON_PORT (FT_NATS_MONITOR_PORT) is already in use by another server"
    fi
    mkdir -p "$NATS_DIR" || die "cannot create $NATS_DIR"
    write_nats_conf
    if ! out=$(nats-server -c "$NATS_CONF" -t 2>&1); then
        die "nats-server rejects $NATS_CONF: $out"
    fi
    say "starting nats-server on 127.0.0.1:$NATS_PORT (monitor 127.0.0.1:$NATS_MON_PORT)"
    # Detach: new session, no tty, no inherited stdio (a caller capturing our
    # output must not wait on the daemon).
    if command -v setsid >/dev/null 2>&1; then
        setsid nats-server -c "$NATS_CONF" </dev/null >>"$NATS_LOG" 2>&1 &
    else
        nohup nats-server -c "$NATS_CONF" </dev/null >>"$NATS_LOG" 2>&1 &
    fi
    child=$!
    until nats_healthy && pid=$(nats_running_pid); do
        if ! pid_alive "$child" && ! nats_running_pid >/dev/null; then
            tail_log "$NATS_LOG"
            die "nats-server exited during startup"
        fi
        if [ "$(now)" -ge "$deadline" ]; then
            tail_log "$NATS_LOG"
            die "nats-server not healthy on 127.0.0.1:$NATS_MON_PORT after 30s"
        fi
        sleep 0.2
    done
    say "nats-server ready on 127.0.0.1:$NATS_PORT (monitor 127.0.0.1:$NATS_MON_PORT, pid $pid)"
}

stop_nats() {
    if [ -e "$NATS_PID" ] && [ ! -r "$NATS_PID" ]; then
        die "cannot read $NATS_PID (owner: $(stat -c %U "$NATS_PID")); stop the stack as that user"
    fi
    if ! pid=$(nats_running_pid); then
        say "nats-server not running"
        rm -f "$NATS_PID" 2>/dev/null || true
        return 0
    fi
    say "stopping nats-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(now) + 10 ))
    while pid_alive "$pid"; do
        if [ "$(now)" -ge "$deadline" ]; then
            say "nats-server did not exit after 10s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            ! pid_alive "$pid" || die "cannot kill nats-server (pid $pid)"
            break
        fi
        sleep 0.2
    done
    rm -f "$NATS_PID"
    say "nats-server stopped"
}

# ------------------------------------------------------------------ status

do_status() {
    up=0
    pg_state=stopped
    if [ -d "$PG_DIR" ]; then
        find_pg_bin
        if [ "$IS_ROOT" -eq 1 ]; then pg_pick_user; fi
        rc=0
        pg_ctl_status || rc=$?
        # rc 3: not running; other non-zero: pg/ not accessible to us (e.g.
        # a stack started by root), so judge by the port alone.
        if [ $rc -ne 3 ] && pg_isready_now; then
            pg_state=running
            up=$((up + 1))
        elif [ $rc -eq 0 ]; then
            pg_state="running but not answering on 127.0.0.1:$PG_PORT"
        fi
    else
        pg_state="not initialised"
    fi
    printf 'postgresql: %s (127.0.0.1:%s, %s)\n' "$pg_state" "$PG_PORT" "$PG_DIR"

    nats_state=stopped
    if pid=$(nats_running_pid); then
        if nats_healthy; then
            nats_state="running (pid $pid)"
            up=$((up + 1))
        else
            nats_state="running (pid $pid) but not healthy"
        fi
    elif [ -e "$NATS_PID" ] && [ ! -r "$NATS_PID" ] && nats_healthy; then
        # pid file of another user (e.g. a stack started by root)
        nats_state=running
        up=$((up + 1))
    fi
    printf 'nats-server: %s (127.0.0.1:%s, monitor 127.0.0.1:%s)\n' \
        "$nats_state" "$NATS_PORT" "$NATS_MON_PORT"
    [ $up -eq 2 ]
}

do_env() {
    [ -r "$STACK_ENV" ] || die "no stack started in $VAR_DIR (missing $STACK_ENV)"
    cat "$STACK_ENV"
}

# -------------------------------------------------------------------- main

[ $# -eq 1 ] || usage

case $1 in
    start)
        start_pg
        start_nats
        write_and_print_env
        ;;
    start-pg)
        start_pg
        write_and_print_env
        ;;
    start-nats)
        start_nats
        write_and_print_env
        ;;
    stop)
        rc=0
        (stop_nats) || rc=1
        (stop_pg) || rc=1
        [ $rc -eq 0 ] || die "stop failed"
        # The stack is no longer started: `env` now fails until the next start.
        rm -f "$STACK_ENV"
        ;;
    stop-pg) stop_pg ;;
    stop-nats) stop_nats ;;
    status) do_status ;;
    env) do_env ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
