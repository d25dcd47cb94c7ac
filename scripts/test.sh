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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
mkdir -p "$CACHE"

log() { printf '[test.sh] %s\n' "$*" >&2; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

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

ensure_garage

# --- throwaway services ----------------------------------------------------
TMP="$(mktemp -d -t donghanh-test.XXXXXX)"
PG_DATA="$TMP/pg"
AS_PG=()

cleanup() {
  local status=$?
  set +e
  stop_garage
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

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

start_garage "$TMP/garage" donghanh-test
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
