#!/usr/bin/env bash
# Photo upload benchmark: MB/s of 2 MB photos at concurrency 8 through the release
# server (SQLite + a throwaway Garage) against direct PUTs to the same Garage in the
# same run, then the server's peak RSS while 32 clients each upload a 10 MB photo.
# Everything it starts is stopped and removed on exit. See BENCHMARKS.md.
#
#   BENCH_PHOTO_COUNT    photos per throughput run (default 200)
#   BENCH_CONCURRENCY    uploads in flight for the throughput runs (default 8)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
COUNT="${BENCH_PHOTO_COUNT:-200}"
CONC="${BENCH_CONCURRENCY:-8}"
log() { printf '[bench-photos] %s\n' "$*" >&2; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

ensure_garage
log "building the release server and photoload"
(cd "$ROOT" && cargo build --release -q -p server -p donghanh-tests --bin donghanh --bin photoload)
BIN="$CARGO_TARGET_DIR/release"

TMP="$(mktemp -d -t donghanh-bench-photos.XXXXXX)"
SERVER_PID=""
SAMPLER_PID=""
cleanup() {
  local status=$?
  set +e
  [ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; }
  stop_garage
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

start_garage "$TMP/garage" donghanh-bench
log "Garage S3 on 127.0.0.1:$S3_PORT"

free_port; HTTP_PORT="$PORT"
BASE="http://127.0.0.1:$HTTP_PORT"
DATA_DIR="$TMP/data" BIND_ADDR="127.0.0.1:$HTTP_PORT" BLOB_STORE=s3 \
  S3_ENDPOINT="http://127.0.0.1:$S3_PORT" S3_REGION=garage S3_BUCKET=donghanh-bench \
  S3_ACCESS_KEY_ID="$S3_KEY_ID" S3_SECRET_ACCESS_KEY="$S3_SECRET" S3_FORCE_PATH_STYLE=true \
  PHOTO_SWEEP_INTERVAL_SECS=0 REFERRAL_EXPIRY_INTERVAL_SECS=0 RUST_LOG=warn \
  "$BIN/donghanh" serve >"$TMP/server.out" 2>"$TMP/server.err" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.err" >&2; log "server died"; exit 1; }
  sleep 0.1
done
curl -fsS "$BASE/readyz" >/dev/null || { log "server not ready"; exit 1; }
ADMIN_PW="$(awk '/password:/ {print $2; exit}' "$TMP/server.out")"
[ -n "$ADMIN_PW" ] || { cat "$TMP/server.out" >&2; log "no admin password printed"; exit 1; }

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() {
  curl -fsS -X POST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"password\":\"$2\"}" | json_field "['access_token']"
}
ADMIN_TOKEN="$(login admin "$ADMIN_PW")"
UNIT="$(curl -fsS "$BASE/api/v1/org-units?limit=200" -H "authorization: Bearer $ADMIN_TOKEN" \
  | python3 -c "import json,sys; print(next(u['id'] for u in json.load(sys.stdin)['items'] if u['code']=='006'))")"
curl -fsS -X POST "$BASE/api/v1/users" -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' \
  -d "{\"username\":\"bench-peer\",\"password\":\"bench-peer-password\",\"role\":\"peer_educator\",\"org_unit_id\":\"$UNIT\"}" >/dev/null
PEER_TOKEN="$(login bench-peer bench-peer-password)"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status"; }

log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
log "through the server: $COUNT photos of 2 MB, $CONC at a time"
SERVER_RUN="$("$BIN/photoload" --base-url "$BASE" --token "$PEER_TOKEN" --org-unit-id "$UNIT" \
  --concurrency "$CONC" --count "$COUNT" --size-bytes 2000000 --seed 1)"
log "straight to Garage: the same"
DIRECT_RUN="$("$BIN/photoload" --direct-endpoint "http://127.0.0.1:$S3_PORT" --direct-bucket donghanh-bench \
  --direct-key-id "$S3_KEY_ID" --direct-secret "$S3_SECRET" \
  --concurrency "$CONC" --count "$COUNT" --size-bytes 2000000 --seed 1)"

log "peak RSS: 32 clients, one 10 MB photo each"
RSS_BEFORE="$(rss_kb)"
( peak=0; while kill -0 "$SERVER_PID" 2>/dev/null; do
    r="$(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)"
    [ "${r:-0}" -gt "$peak" ] && peak="$r" && echo "$peak" >"$TMP/peak"
    sleep 0.05
  done ) &
SAMPLER_PID=$!
BIG_RUN="$("$BIN/photoload" --base-url "$BASE" --token "$PEER_TOKEN" --org-unit-id "$UNIT" \
  --concurrency 32 --count 32 --size-bytes 10000000 --seed 2)"
sleep 0.3
kill "$SAMPLER_PID" 2>/dev/null; SAMPLER_PID=""
RSS_PEAK="$(cat "$TMP/peak" 2>/dev/null || echo "$RSS_BEFORE")"
RSS_AFTER="$(rss_kb)"

python3 - "$SERVER_RUN" "$DIRECT_RUN" "$BIG_RUN" "$RSS_BEFORE" "$RSS_PEAK" "$RSS_AFTER" "$(hwm_kb)" <<'PY'
import json, sys
s, d, b = (json.loads(x) for x in sys.argv[1:4])
before, peak, after, hwm = (int(x) / 1024 for x in sys.argv[4:8])
print(f"| run | uploads | errors | MB/s | p50 ms | p99 ms |")
print(f"| --- | --- | --- | --- | --- | --- |")
for name, r in (("through the server", s), ("direct to Garage", d), ("server, 32 × 10 MB", b)):
    print(f"| {name} (c={r['concurrency']}) | {r['uploads']} | {r['errors']} | {r['mb_per_s']} | {r['p50_ms']} | {r['p99_ms']} |")
print()
print(f"server ÷ direct throughput: {s['mb_per_s'] / d['mb_per_s']:.2f}")
print(f"server RSS: {before:.0f} MB before the 32 × 10 MB run, peak {peak:.0f} MB during it, {after:.0f} MB after (VmHWM {hwm:.0f} MB over the whole run)")
PY
