# Shared by scripts/test.sh and the benchmark scripts: free loopback ports, a throwaway
# PostgreSQL cluster and a throwaway single-node Garage (S3), stopping a process.
# Source it after setting CACHE and defining `log`.
# shellcheck shell=bash

GARAGE_VERSION="2.5.0"
GARAGE="$CACHE/garage-$GARAGE_VERSION/bin/garage"

# Builds Garage into the cache once (about 10 minutes on 2 cores).
ensure_garage() {
  if [ ! -x "$GARAGE" ]; then
    log "building Garage $GARAGE_VERSION into $CACHE (first run only; about 10 minutes)"
    CARGO_TARGET_DIR="$CACHE/garage-build" cargo install garage --version "$GARAGE_VERSION" --locked \
      --no-default-features --features bundled-libs,sqlite --root "$CACHE/garage-$GARAGE_VERSION"
    rm -rf "$CACHE/garage-build"
  fi
}

# Ports are drawn below the kernel's ephemeral range (32768+), so an outgoing
# connection cannot hold one between the check and the bind; each is used once.
USED_PORTS=" "
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # sets PORT
  local p
  for _ in $(seq 1 200); do
    p=$(( 10000 + (RANDOM * 32768 + RANDOM) % 22000 ))
    case "$USED_PORTS" in *" $p "*) continue ;; esac
    if port_free "$p"; then USED_PORTS="$USED_PORTS$p "; PORT="$p"; return 0; fi
  done
  log "no free port found"; return 1
}


# start_garage DIR BUCKET: a Garage with its files in DIR and one bucket with a key that
# may read and write it. Sets GARAGE_PID, S3_PORT, S3_KEY_ID, S3_SECRET; exits on failure.
GARAGE_PID=""
start_garage() {
  local dir="$1" bucket="$2" attempt
  # A port taken by another process between the check and Garage's bind makes Garage
  # exit at once: try again on fresh ports before giving up.
  for attempt in 1 2 3; do
    if garage_try_start "$dir"; then break; fi
    if [ -n "$GARAGE_PID" ]; then kill "$GARAGE_PID" 2>/dev/null; wait "$GARAGE_PID" 2>/dev/null; GARAGE_PID=""; fi
    if [ "$attempt" -eq 3 ]; then cat "$dir/server.log" >&2; log "Garage did not start"; exit 1; fi
    log "Garage did not start (attempt $attempt); retrying on other ports"
  done
  local node key_out
  node="$(garage_cli "$dir" node id -q | cut -d@ -f1)"
  garage_cli "$dir" layout assign -z dc1 -c 1G "$node" >/dev/null
  garage_cli "$dir" layout apply --version 1 >/dev/null
  garage_cli "$dir" bucket create "$bucket" >/dev/null
  key_out="$(garage_cli "$dir" key create "$bucket-key")"
  S3_KEY_ID="$(printf '%s\n' "$key_out" | awk -F': *' '/Key ID/ {print $2; exit}' | tr -d ' ')"
  S3_SECRET="$(printf '%s\n' "$key_out" | awk -F': *' '/Secret key/ {print $2; exit}' | tr -d ' ')"
  if [ -z "$S3_KEY_ID" ] || [ -z "$S3_SECRET" ]; then printf '%s\n' "$key_out" >&2; log "could not read the Garage key"; exit 1; fi
  garage_cli "$dir" bucket allow --read --write --owner "$bucket" --key "$bucket-key" >/dev/null
}

garage_cli() { local dir="$1"; shift; "$GARAGE" -c "$dir/garage.toml" "$@"; }

stop_garage() {
  if [ -n "$GARAGE_PID" ]; then kill "$GARAGE_PID" 2>/dev/null; wait "$GARAGE_PID" 2>/dev/null; GARAGE_PID=""; fi
}

garage_try_start() {
  local dir="$1" rpc_port admin_port
  free_port; S3_PORT="$PORT"; free_port; rpc_port="$PORT"; free_port; admin_port="$PORT"
  rm -rf "$dir"
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$dir/garage.toml" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
TOML
  chmod 600 "$dir/garage.toml"
  "$GARAGE" -c "$dir/garage.toml" server >"$dir/server.log" 2>&1 &
  GARAGE_PID=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$GARAGE_PID" 2>/dev/null; then wait "$GARAGE_PID" 2>/dev/null; GARAGE_PID=""; return 1; fi
    if garage_cli "$dir" status >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}


# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL.
stop_pid() {
  local pid="$1"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# apt_install PACKAGE...: Debian's packages, with sudo unless we are root.
apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing $* with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# --- Python tools (schemathesis, ...) ------------------------------------------------

# The tools the tests drive, pinned; the virtualenv is named by this list, so changing a
# version makes a new one beside the old.
PY_TOOLS="schemathesis==4.32.5 pyxform==4.5.0"

# ensure_python_tools: sets PY_VENV to a virtualenv in the cache holding PY_TOOLS,
# creating it on first use (python3 from the machine; Debian's python3-venv if needed).
ensure_python_tools() {
  PY_VENV="$CACHE/py-$(printf '%s' "$PY_TOOLS" | sha1sum | cut -c1-12)"
  if [ -x "$PY_VENV/bin/python" ] && [ -f "$PY_VENV/.complete" ]; then return 0; fi
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  rm -rf "$PY_VENV"
  if ! python3 -m venv "$PY_VENV" >/dev/null 2>&1; then
    apt_install python3-venv
    rm -rf "$PY_VENV"
    python3 -m venv "$PY_VENV"
  fi
  log "installing $PY_TOOLS into $PY_VENV"
  # shellcheck disable=SC2086
  "$PY_VENV/bin/pip" install -q --disable-pip-version-check $PY_TOOLS \
    || { log "pip install failed"; exit 1; }
  touch "$PY_VENV/.complete"
}

# ODK Validate (JavaRosa, the engine inside ODK Collect) as shipped in pyxform's wheel.
odk_validate_jar() {
  ls "$PY_VENV"/lib/python3*/site-packages/pyxform/validators/odk_validate/bin/ODK_Validate.jar 2>/dev/null | head -n 1
}

# ensure_java: java and javac on PATH (Debian's OpenJDK 17 if either is missing).
ensure_java() {
  if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    apt_install openjdk-17-jdk-headless
  fi
}

# --- the browser tests: Debian's Chromium and chromedriver, axe-core from npm ----------

CHROMIUM="/usr/bin/chromium"
CHROMEDRIVER="/usr/bin/chromedriver"

# ensure_chromium: Debian's chromium and its chromedriver (never a browser a library
# downloads), installed with apt-get if either is missing.
ensure_chromium() {
  if [ ! -x "$CHROMIUM" ] || [ ! -x "$CHROMEDRIVER" ]; then
    apt_install chromium chromium-driver
  fi
  [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ] || { log "chromium or chromedriver still missing after apt-get"; exit 1; }
}

# The accessibility engine the browser tests inject into every page, pinned.
AXE_VERSION="4.10.3"

# ensure_axe: sets AXE_JS to axe.min.js of axe-core $AXE_VERSION, installed with npm into
# the cache once (Debian's nodejs and npm if npm is missing).
ensure_axe() {
  local prefix="$CACHE/npm"
  AXE_JS="$prefix/node_modules/axe-core/axe.min.js"
  if [ -f "$AXE_JS" ] && grep -q "\"version\": \"$AXE_VERSION\"" "$prefix/node_modules/axe-core/package.json" 2>/dev/null; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  log "installing axe-core $AXE_VERSION into $prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --save-exact "axe-core@$AXE_VERSION" >&2 \
    || { log "npm install axe-core failed"; exit 1; }
  [ -f "$AXE_JS" ] || { log "axe.min.js not found in $prefix"; exit 1; }
}

# --- PostgreSQL --------------------------------------------------------------------

# The newest PostgreSQL bin directory holding initdb and every named tool.
pg_bindir() {
  local dir="" tool
  if command -v pg_config >/dev/null 2>&1; then dir="$(pg_config --bindir 2>/dev/null || true)"; fi
  for tool in initdb "$@"; do
    if [ -z "$dir" ] || [ ! -x "$dir/$tool" ]; then
      dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
      break
    fi
  done
  printf '%s' "$dir"
}

# ensure_postgres [TOOL...]: sets PG_BIN to a directory with initdb, psql and each TOOL
# (e.g. pgbench), installing Debian's postgresql (which brings the client) if needed.
ensure_postgres() {
  local tool
  PG_BIN="$(pg_bindir psql "$@")"
  for tool in initdb psql "$@"; do
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/$tool" ]; then
      apt_install postgresql postgresql-client
      PG_BIN="$(pg_bindir psql "$@")"
      break
    fi
  done
  for tool in initdb psql "$@"; do
    [ -x "$PG_BIN/$tool" ] || { log "$tool still missing after apt-get"; exit 1; }
  done
}

# init_postgres DIR: a new cluster in DIR (trust auth, UTF-8, no locale) on a free
# port, owned by the postgres user when we are root (PostgreSQL refuses to run as root).
# Sets PG_DATA, PG_PORT and AS_PG (the command prefix that runs as the cluster's owner).
AS_PG=()
PG_DATA=""
init_postgres() {
  PG_DATA="$1"
  mkdir -p "$PG_DATA"
  chmod 755 "$(dirname "$PG_DATA")"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$(dirname "$PG_DATA")" postgres
    AS_PG=(runuser -u postgres --)
    chown postgres "$PG_DATA"
  fi
  free_port; PG_PORT="$PORT"
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-locale \
    >"$PG_DATA.initdb.log" 2>&1 || { cat "$PG_DATA.initdb.log" >&2; log "initdb failed"; exit 1; }
}

# pg_start [-c name=value ...]: starts the cluster on 127.0.0.1:PG_PORT (socket in
# PG_DATA) with these settings besides max_connections=300.
pg_start() {
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 120 start \
    -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c max_connections=300 $*" \
    >/dev/null || { tail -n 50 "$PG_DATA/server.log" >&2; log "PostgreSQL did not start"; exit 1; }
}

# pg_stop [MODE]: stops the cluster if it runs (fast by default; immediate on clean-up).
pg_stop() {
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "${1:-fast}" -w -t 300 stop >/dev/null
  fi
}

# psql_q DB SQL: the result unaligned, tuples only; stops at the first error.
psql_q() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d "$1" -Atc "$2"
}

# --- a release donghanh for the benchmarks ----------------------------------------

# start_donghanh: runs "$DONGHANH serve" (configured by the environment) with its log in
# $TMP/server.log and waits up to 60 s for $BASE/readyz. Sets SERVER_PID.
start_donghanh() {
  local ready=""
  "$DONGHANH" serve >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=""
      cat "$TMP/server.log" >&2
      log "the server exited during start-up"; exit 1
    fi
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/readyz" || true)" = "200" ]; then ready=1; break; fi
    sleep 0.2
  done
  [ -n "$ready" ] || { cat "$TMP/server.log" >&2; log "the server was not ready within 60 s"; exit 1; }
  log "donghanh (pid $SERVER_PID) ready on $BASE"
}

# api METHOD PATH TOKEN [JSON]: the answer's body; fails unless 2xx.
api() {
  local method="$1" path="$2" token="$3" body="${4:-}" out code
  local args=(-s -o "$TMP/api.out" -w '%{http_code}' -X "$method" -H 'Accept: application/json')
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  code="$(curl "${args[@]}" "$BASE$path")" || { log "$method $path: curl failed"; exit 1; }
  out="$(cat "$TMP/api.out")"
  case "$code" in 2??) printf '%s' "$out" ;; *) log "$method $path answered $code: $out"; exit 1 ;; esac
}

# login USERNAME PASSWORD: an access token.
login() {
  api POST /api/v1/auth/login "" \
    "$(jq -nc --arg u "$1" --arg p "$2" '{username: $u, password: $p, device_id: "bench"}')" \
    | jq -er .access_token
}

# create_admin USERNAME: an admin made with `donghanh create-admin`; sets ADMIN_PASSWORD.
create_admin() {
  local out
  out="$("$DONGHANH" create-admin --username "$1" 2>>"$TMP/create-admin.log")" \
    || { cat "$TMP/create-admin.log" >&2; log "create-admin failed"; exit 1; }
  ADMIN_PASSWORD="$(printf '%s\n' "$out" | sed -n 's/^ *password: *//p' | head -n 1)"
  [ -n "$ADMIN_PASSWORD" ] || { log "could not read the password create-admin printed"; exit 1; }
}
