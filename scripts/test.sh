#!/usr/bin/env bash
# The one test command: starts a throwaway PostgreSQL and a throwaway single-node
# Garage (S3), runs every test of the workspace against them (the API suite runs on
# SQLite and on PostgreSQL), then stops both and removes their files, also on failure.
#
# Garage and the cargo target directory are cached outside the clone
# (DONGHANH_CACHE, default ~/.cache/donghanh), so only the first run builds them.
# Extra arguments are passed to `cargo test` (e.g. `scripts/test.sh -- login`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
GARAGE_VERSION="2.5.0"
GARAGE="$CACHE/garage-$GARAGE_VERSION/bin/garage"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
mkdir -p "$CACHE"

log() { printf '[test.sh] %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------
pg_bindir() {
  local dir=""
  if command -v pg_config >/dev/null 2>&1; then dir="$(pg_config --bindir)"; fi
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  printf '%s' "$dir"
}

PG_BIN="$(pg_bindir)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
  log "PostgreSQL server not found; installing Debian's postgresql"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  PG_BIN="$(pg_bindir)"
fi

if [ ! -x "$GARAGE" ]; then
  log "building Garage $GARAGE_VERSION into $CACHE (first run only; about 10 minutes)"
  CARGO_TARGET_DIR="$CACHE/garage-build" cargo install garage --version "$GARAGE_VERSION" --locked \
    --no-default-features --features bundled-libs,sqlite --root "$CACHE/garage-$GARAGE_VERSION"
  rm -rf "$CACHE/garage-build"
fi

# --- throwaway services ----------------------------------------------------
TMP="$(mktemp -d -t donghanh-test.XXXXXX)"
PG_DATA="$TMP/pg"
GARAGE_PID=""
AS_PG=()

cleanup() {
  local status=$?
  set +e
  if [ -n "$GARAGE_PID" ]; then kill "$GARAGE_PID" 2>/dev/null; wait "$GARAGE_PID" 2>/dev/null; fi
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

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

# PostgreSQL refuses to run as root: run it as the postgres user then.
chmod 755 "$TMP"
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$TMP" postgres
  AS_PG=(runuser -u postgres --)
  mkdir -p "$PG_DATA" && chown postgres "$PG_DATA"
fi
free_port; PG_PORT="$PORT"
"${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-locale >"$TMP/initdb.log" 2>&1 \
  || { cat "$TMP/initdb.log" >&2; exit 1; }
"${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start \
  -o "-p $PG_PORT -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  >/dev/null || { cat "$PG_DATA/server.log" >&2; exit 1; }
log "PostgreSQL on 127.0.0.1:$PG_PORT"

start_garage() {
free_port; S3_PORT="$PORT"; free_port; RPC_PORT="$PORT"; free_port; ADMIN_PORT="$PORT"
rm -rf "$TMP/garage"
mkdir -p "$TMP/garage/meta" "$TMP/garage/data"
cat >"$TMP/garage/garage.toml" <<TOML
metadata_dir = "$TMP/garage/meta"
data_dir = "$TMP/garage/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
admin_token = "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
TOML
chmod 600 "$TMP/garage/garage.toml"
garage() { "$GARAGE" -c "$TMP/garage/garage.toml" "$@"; }
"$GARAGE" -c "$TMP/garage/garage.toml" server >"$TMP/garage/server.log" 2>&1 &
GARAGE_PID=$!
for _ in $(seq 1 100); do
  if ! kill -0 "$GARAGE_PID" 2>/dev/null; then wait "$GARAGE_PID" 2>/dev/null; GARAGE_PID=""; return 1; fi
  if garage status >/dev/null 2>&1; then return 0; fi
  sleep 0.2
done
return 1
}
# A port taken by another process between the check and Garage's bind makes Garage
# exit at once: try again on fresh ports before giving up.
for attempt in 1 2 3; do
  if start_garage; then break; fi
  if [ -n "$GARAGE_PID" ]; then kill "$GARAGE_PID" 2>/dev/null; wait "$GARAGE_PID" 2>/dev/null; GARAGE_PID=""; fi
  if [ "$attempt" -eq 3 ]; then cat "$TMP/garage/server.log" >&2; log "Garage did not start"; exit 1; fi
  log "Garage did not start (attempt $attempt); retrying on other ports"
done
NODE_ID="$(garage node id -q | cut -d@ -f1)"
garage layout assign -z dc1 -c 1G "$NODE_ID" >/dev/null
garage layout apply --version 1 >/dev/null
garage bucket create donghanh-test >/dev/null
KEY_OUT="$(garage key create donghanh-test-key)"
S3_KEY_ID="$(printf '%s\n' "$KEY_OUT" | awk -F': *' '/Key ID/ {print $2; exit}' | tr -d ' ')"
S3_SECRET="$(printf '%s\n' "$KEY_OUT" | awk -F': *' '/Secret key/ {print $2; exit}' | tr -d ' ')"
if [ -z "$S3_KEY_ID" ] || [ -z "$S3_SECRET" ]; then printf '%s\n' "$KEY_OUT" >&2; log "could not read the Garage key"; exit 1; fi
garage bucket allow --read --write --owner donghanh-test --key donghanh-test-key >/dev/null
log "Garage S3 on 127.0.0.1:$S3_PORT (bucket donghanh-test)"

# --- the tests -------------------------------------------------------------
export DONGHANH_TEST_PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export DONGHANH_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
export DONGHANH_TEST_S3_REGION="garage"
export DONGHANH_TEST_S3_BUCKET="donghanh-test"
export DONGHANH_TEST_S3_ACCESS_KEY_ID="$S3_KEY_ID"
export DONGHANH_TEST_S3_SECRET_ACCESS_KEY="$S3_SECRET"
export DONGHANH_TEST_GARAGE_BIN="$GARAGE"
export DONGHANH_TEST_REQUIRE_SERVICES=1

cd "$ROOT"
start=$(date +%s)
cargo test --workspace --no-fail-fast "$@"
log "all tests passed in $(( $(date +%s) - start ))s (PostgreSQL and Garage included)"
