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
ensure_postgres
ensure_garage
ensure_python_tools
ensure_java
ensure_chromium
ensure_axe
ODK_VALIDATE_JAR="$(odk_validate_jar)"
[ -f "$ODK_VALIDATE_JAR" ] || { log "ODK_Validate.jar not found in $PY_VENV"; exit 1; }

# --- throwaway services ----------------------------------------------------
TMP="$(mktemp -d -t donghanh-test.XXXXXX)"

cleanup() {
  local status=$?
  set +e
  stop_garage
  pg_stop immediate 2>/dev/null
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

# Tests need no durability: a crash only loses a throwaway cluster.
init_postgres "$TMP/pg"
pg_start -c fsync=off -c synchronous_commit=off -c full_page_writes=off
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
export DONGHANH_TEST_SCHEMATHESIS="$PY_VENV/bin/schemathesis"
export DONGHANH_TEST_ODK_VALIDATE_JAR="$ODK_VALIDATE_JAR"
export DONGHANH_TEST_CHROMIUM="$CHROMIUM"
export DONGHANH_TEST_CHROMEDRIVER="$CHROMEDRIVER"
export DONGHANH_TEST_AXE_JS="$AXE_JS"
export DONGHANH_TEST_SCREENSHOTS="${DONGHANH_TEST_SCREENSHOTS:-$CACHE/screenshots}"
export DONGHANH_TEST_REQUIRE_SERVICES=1

cd "$ROOT"
start=$(date +%s)
cargo test --workspace --no-fail-fast "$@"
log "all tests passed in $(( $(date +%s) - start ))s (PostgreSQL and Garage included)"
