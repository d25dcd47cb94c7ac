#!/usr/bin/env bash
# Operations benchmark: how long a district office waits for `backup`, `backup --verify`,
# `restore` and `move` with a realistic pilot behind them.
#
# Fills an embedded default (SQLite + disk) through the API with a release server:
# BENCH_VISITS outreach visits of 8 contacts, of which BENCH_PHOTOS carry one photo of
# BENCH_PHOTO_BYTES each (loadgen for the visits without photos, photoload for those
# with). Then, with the server still running (as in an office), times a backup, its
# verification and a restore into a new data directory; then stops the server and times
# a move into a throwaway PostgreSQL (durability defaults on) and a throwaway Garage
# bucket. Prints a markdown table. Everything it started is stopped and removed on exit.
#
#   BENCH_VISITS       visits in all (default 100000)
#   BENCH_PHOTOS       of which with a photo (default 20000)
#   BENCH_PHOTO_BYTES  size of each photo (default 200000: a phone photo after Collect's
#                      or the app's resizing)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VISITS="${BENCH_VISITS:-100000}"
PHOTOS="${BENCH_PHOTOS:-20000}"
PHOTO_BYTES="${BENCH_PHOTO_BYTES:-200000}"

log() { printf '[bench-ops] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

for v in VISITS PHOTOS PHOTO_BYTES; do
  case "${!v}" in '' | *[!0-9]* | 0) die "$v: expected a positive whole number, got '${!v}'" ;; esac
done
[ "$PHOTOS" -le "$VISITS" ] || die "BENCH_PHOTOS must not exceed BENCH_VISITS"

ensure_postgres
ensure_garage
missing=()
for tool in curl jq; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

cd "$ROOT"
log "building donghanh, loadgen and photoload (release) into $CARGO_TARGET_DIR"
cargo build --release -q -p server -p donghanh-tests --bin donghanh --bin loadgen --bin photoload
DONGHANH="$CARGO_TARGET_DIR/release/donghanh"
BIN="$CARGO_TARGET_DIR/release"

TMP="$(mktemp -d -t donghanh-bench-ops.XXXXXX)"
SERVER_PID=""
GARAGE_PID=""
cleanup() {
  local status=$?
  set +e
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  stop_garage
  pg_stop 2>/dev/null
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

# timed LABEL COMMAND...: runs COMMAND, dies unless it succeeds, sets SECS.
timed() {
  local label="$1" start end
  shift
  start=$(date +%s.%N)
  "$@" >"$TMP/$label.out" 2>"$TMP/$label.err" || { cat "$TMP/$label.err" >&2; die "$label failed"; }
  end=$(date +%s.%N)
  SECS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  log "$label: ${SECS} s"
}

free_port; SRV_PORT="$PORT"; BASE="http://127.0.0.1:$SRV_PORT"
export BIND_ADDR="127.0.0.1:$SRV_PORT" DATA_DIR="$TMP/data"
export PHOTO_SWEEP_INTERVAL_SECS=0 REFERRAL_EXPIRY_INTERVAL_SECS=0 ACCESS_TOKEN_TTL_SECS=86400
export LOGIN_MAX_FAILURES_PER_ADDRESS=100000
unset RUST_LOG DATABASE_URL JWT_KEYS UIC_HMAC_KEY BLOB_STORE BLOB_DIR
create_admin bench.admin
start_donghanh
ADMIN_TOKEN="$(login bench.admin "$ADMIN_PASSWORD")"
DONGDA="$(api GET '/api/v1/org-units?limit=200' "$ADMIN_TOKEN" | jq -er '.items[] | select(.code == "006") | .id')"
api POST /api/v1/users "$ADMIN_TOKEN" \
  "$(jq -nc --arg o "$DONGDA" '{username: "bench.peer", password: "bench-password-1", role: "peer_educator", org_unit_id: $o}')" >/dev/null
PEER_TOKEN="$(login bench.peer bench-password-1)"

log "filling: $((VISITS - PHOTOS)) visits without photos (loadgen), $PHOTOS with one photo of $PHOTO_BYTES bytes (photoload)"
"$BIN/loadgen" --base-url "$BASE" --token "$PEER_TOKEN" --org-unit-id "$DONGDA" \
  --concurrency 8 --duration-secs 86400 --total "$((VISITS - PHOTOS))" >"$TMP/fill.json" || die "loadgen failed"
log "visits: $(cat "$TMP/fill.json")"
"$BIN/photoload" --base-url "$BASE" --token "$PEER_TOKEN" --org-unit-id "$DONGDA" \
  --concurrency 8 --count "$PHOTOS" --size-bytes "$PHOTO_BYTES" >"$TMP/photos.json" || die "photoload failed"
log "photos: $(cat "$TMP/photos.json")"
SIZE="$(du -sh "$DATA_DIR" | cut -f1)"

# While the server runs, as an office would.
timed backup "$DONGHANH" backup --to "$TMP/backup"; BACKUP=$SECS
timed verify "$DONGHANH" backup --verify "$TMP/backup"; VERIFY=$SECS
timed restore env DATA_DIR="$TMP/restored" "$DONGHANH" restore --from "$TMP/backup"; RESTORE=$SECS
stop_pid "$SERVER_PID"; SERVER_PID=""

# The move, into a PostgreSQL with its durability defaults and a Garage bucket.
init_postgres "$TMP/pg"
pg_start
psql_q postgres "CREATE DATABASE moved" >/dev/null
start_garage "$TMP/garage" donghanh-moved
timed move env S3_ENDPOINT="http://127.0.0.1:$S3_PORT" S3_REGION=garage S3_BUCKET=donghanh-moved \
  S3_ACCESS_KEY_ID="$S3_KEY_ID" S3_SECRET_ACCESS_KEY="$S3_SECRET" S3_FORCE_PATH_STYLE=true \
  "$DONGHANH" move --to-database "postgres://postgres@127.0.0.1:$PG_PORT/moved" --to-s3
MOVE=$SECS

printf '\nOperations on %s visits (8 contacts each), %s photos of %s bytes; data directory %s\n\n' \
  "$VISITS" "$PHOTOS" "$PHOTO_BYTES" "$SIZE"
echo "| backup --to (server running) | backup --verify | restore --from | move --to-database --to-s3 |"
echo "| --- | --- | --- | --- |"
echo "| $BACKUP s | $VERIFY s | $RESTORE s | $MOVE s |"
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
