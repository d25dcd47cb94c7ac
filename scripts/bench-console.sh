#!/usr/bin/env bash
# Console benchmark: how long one release server takes to render the supervisors'
# pages with a large database behind them, on the embedded SQLite default and on
# PostgreSQL (durability defaults on).
#
# For each database: starts the server, fills it through the API with BENCH_VISITS
# outreach visits of 8 contacts in a ward (loadgen, concurrency 8) of which BENCH_APPROVED are
# approved through `POST /api/v1/reviews`, and one more visit with 8 contacts and 5
# photos; signs the ward's supervisor in to the console as a browser does (the sign-in
# form's CSRF cookie and field), then times BENCH_RUNS requests each of the review
# queue, that visit's page and the city-year indicators page (as the admin), with curl
# on loopback (time to the last byte). Prints a markdown table of medians and 90th
# percentiles. Everything it started is stopped and removed on exit.
#
#   BENCH_VISITS    outreach visits in the database (default 100000)
#   BENCH_APPROVED  of which approved (default 10000; the report reads cells, whose
#                   number depends on days and units, not on visits)
#   BENCH_RUNS      timed requests per page (default 30)
#   BENCH_DBS       which databases (default "sqlite postgres")
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VISITS="${BENCH_VISITS:-100000}"
APPROVED="${BENCH_APPROVED:-10000}"
RUNS="${BENCH_RUNS:-30}"
DBS="${BENCH_DBS:-sqlite postgres}"

log() { printf '[bench-console] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

for v in VISITS APPROVED RUNS; do
  case "${!v}" in '' | *[!0-9]* | 0) die "$v: expected a positive whole number, got '${!v}'" ;; esac
done
[ "$APPROVED" -le "$VISITS" ] || die "BENCH_APPROVED must not exceed BENCH_VISITS"

ensure_postgres
missing=()
for tool in curl jq python3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

cd "$ROOT"
log "building donghanh and loadgen (release) into $CARGO_TARGET_DIR"
cargo build --release -p server -p donghanh-tests --bin donghanh --bin loadgen
DONGHANH="$CARGO_TARGET_DIR/release/donghanh"
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"

TMP="$(mktemp -d -t donghanh-bench-console.XXXXXX)"
SERVER_PID=""
cleanup() {
  local status=$?
  set +e
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  pg_stop 2>/dev/null
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

key32() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }

# stats FILE: "median / p90" of the seconds in FILE, in milliseconds.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 * 1000 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    p = v[int(NR * 0.9 + 0.999)]; printf "%.1f / %.1f", m, p }'
}

# time_page JAR PATH FILE: BENCH_RUNS timed GETs of PATH with the cookie jar; dies
# unless each answers 200.
time_page() {
  local jar="$1" path="$2" out="$3" code secs
  : >"$out"
  curl -s -o /dev/null -b "$jar" "$BASE$path" # warm up (first read of the pages' data)
  for _ in $(seq 1 "$RUNS"); do
    read -r code secs < <(curl -s -o "$TMP/page.html" -w '%{http_code} %{time_total}\n' -b "$jar" "$BASE$path")
    [ "$code" = "200" ] || { head -c 500 "$TMP/page.html" >&2; die "GET $path answered $code"; }
    echo "$secs" >>"$out"
  done
}

# console_sign_in USER PASSWORD JAR: a browser's sign-in (form, CSRF cookie, post).
console_sign_in() {
  local user="$1" pass="$2" jar="$3" csrf
  curl -s -c "$jar" -b "$jar" -o "$TMP/login.html" "$BASE/console/login"
  csrf="$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$TMP/login.html" | head -n 1)"
  [ -n "$csrf" ] || die "no CSRF field on the sign-in form"
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H "Origin: $BASE" \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=$user" --data-urlencode "password=$pass" \
    --data-urlencode "next=/console/" "$BASE/console/login")"
  [ "$code" = "303" ] || die "console sign-in of $user answered $code"
}

ROWS=()
for DB in $DBS; do
  log "=== $DB ==="
  rm -rf "$TMP/data"; mkdir -p "$TMP/data"
  free_port; SRV_PORT="$PORT"; BASE="http://127.0.0.1:$SRV_PORT"
  export BIND_ADDR="127.0.0.1:$SRV_PORT" DATA_DIR="$TMP/data" BLOB_STORE=disk BLOB_DIR="$TMP/data/blobs"
  export PHOTO_SWEEP_INTERVAL_SECS=0 REFERRAL_EXPIRY_INTERVAL_SECS=0 ACCESS_TOKEN_TTL_SECS=86400
  export LOGIN_MAX_FAILURES_PER_ADDRESS=100000
  unset RUST_LOG
  case "$DB" in
    sqlite) unset DATABASE_URL JWT_KEYS UIC_HMAC_KEY ;;
    postgres)
      init_postgres "$TMP/pg"
      pg_start
      psql_q postgres "CREATE DATABASE bench" >/dev/null
      export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
      export JWT_KEYS="bench:$(key32)" UIC_HMAC_KEY="$(key32)"
      ;;
    *) die "BENCH_DBS: unknown database $DB" ;;
  esac
  create_admin bench.admin
  start_donghanh
  ADMIN_TOKEN="$(login bench.admin "$ADMIN_PASSWORD")"
  CITY="$(api GET '/api/v1/org-units?limit=200' "$ADMIN_TOKEN" | jq -er '.items[] | select(.level == "city") | .id')"
  # The seeded districts ended with the 2025 reorganisation (a city-year report of today
  # has no child unit for them), so the visits are made in a ward of today's layout,
  # directly under the city.
  WARD="$(api POST /api/v1/org-units "$ADMIN_TOKEN" \
    "$(jq -nc --arg c "$CITY" '{code: "00004", name: "Phường Ba Đình", level: "ward", type: "phuong", parent_id: $c, valid_from: "2025-07-01"}')" \
    | jq -er .id)"
  for who in peer supervisor; do
    role=$([ "$who" = peer ] && echo peer_educator || echo supervisor)
    api POST /api/v1/users "$ADMIN_TOKEN" \
      "$(jq -nc --arg u "bench.$who" --arg r "$role" --arg o "$WARD" '{username: $u, password: "bench-password-1", role: $r, org_unit_id: $o}')" >/dev/null
  done
  PEER_TOKEN="$(login bench.peer bench-password-1)"
  SUP_TOKEN="$(login bench.supervisor bench-password-1)"

  log "filling: $VISITS visits through the API (loadgen, concurrency 8)"
  FILL_START=$SECONDS
  "$LOADGEN" --base-url "$BASE" --token "$PEER_TOKEN" --org-unit-id "$WARD" \
    --concurrency 8 --duration-secs 86400 --total "$VISITS" >"$TMP/fill.json" || die "loadgen failed"
  log "filled in $(( SECONDS - FILL_START )) s: $(cat "$TMP/fill.json")"

  log "approving $APPROVED of them (oldest first, 200 per request)"
  APPROVE_START=$SECONDS
  approved=0
  while [ "$approved" -lt "$APPROVED" ]; do
    ids="$(api GET '/api/v1/reviews/queue?limit=200' "$SUP_TOKEN" | jq -c '[.items[].id]')"
    [ "$ids" != "[]" ] || die "the queue ran out at $approved"
    out="$(api POST /api/v1/reviews "$SUP_TOKEN" "$(jq -nc --argjson ids "$ids" '{ids: $ids, decision: "approve"}')")"
    approved=$(( approved + $(jq -r .succeeded <<<"$out") ))
  done
  log "approved $approved in $(( SECONDS - APPROVE_START )) s"

  # The visit to render: 8 contacts and 5 photos (small PNGs made here).
  VISIT="$(python3 - "$WARD" <<'PY'
import json, sys, uuid, datetime
now = datetime.datetime.now(datetime.timezone.utc)
unit = sys.argv[1]
contacts = [{"uic": f"BENCH CLIENT {i} 1990 F", "age_band": "25_34", "condoms_male": 10 + i, "condoms_female": 1,
             "lubricant": 2, "self_test_kits": 0, "iec_materials": 1, "counselled": True,
             "referrals": ["hiv_test"] if i == 0 else []} for i in range(8)]
print(json.dumps({"id": str(uuid.uuid4()), "form_id": "outreach_visit", "form_version": 1,
                  "started_at": (now - datetime.timedelta(hours=2)).isoformat(),
                  "completed_at": (now - datetime.timedelta(hours=1)).isoformat(),
                  "org_unit_id": unit,
                  "answers": {"visit_date": str(now.date()), "place_type": "karaoke", "contacts": contacts,
                              "photos": []}}))
PY
)"
  python3 - "$TMP" <<'PY'
import struct, sys, zlib
for n in range(5):
    w, h = 320, 240
    rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in ((x * 7 + y * 3 + n * 50) % 256, (x * 2 + n * 90) % 256, (y * 5) % 256)) for y in range(h))
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    open(f"{sys.argv[1]}/photo{n}.png", "wb").write(png)
PY
  PHOTOS="$(for n in 0 1 2 3 4; do sha256sum "$TMP/photo$n.png" | cut -d' ' -f1; done | jq -Rnc '[inputs | {photo: .}]')"
  VISIT="$(jq -c --argjson p "$PHOTOS" '.answers.photos = $p' <<<"$VISIT")"
  VISIT_ID="$(jq -r .id <<<"$VISIT")"
  api POST /api/v1/submissions "$PEER_TOKEN" "$VISIT" >/dev/null
  for n in 0 1 2 3 4; do
    d="$(sha256sum "$TMP/photo$n.png" | cut -d' ' -f1)"
    code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $PEER_TOKEN" \
      -H 'Content-Type: image/png' --data-binary "@$TMP/photo$n.png" "$BASE/api/v1/submissions/$VISIT_ID/photos/$d")"
    [ "$code" = "201" ] || die "photo upload answered $code"
  done

  console_sign_in bench.supervisor bench-password-1 "$TMP/sup.jar"
  console_sign_in bench.admin "$ADMIN_PASSWORD" "$TMP/admin.jar"
  YEAR="$(date -u +%Y)"
  time_page "$TMP/sup.jar" "/console/" "$TMP/queue.txt"
  time_page "$TMP/sup.jar" "/console/visits/$VISIT_ID" "$TMP/visit.txt"
  time_page "$TMP/admin.jar" "/console/indicators?org_unit=$CITY&kind=year&year=$YEAR" "$TMP/indicators.txt"
  grep -q '<svg' "$TMP/page.html" || { sed -n '/<main/,/<\/main>/p' "$TMP/page.html" | head -c 3000 >&2; die "the indicators page has no chart"; }
  ROWS+=("| $DB | $VISITS ($approved approved) | $(stats "$TMP/queue.txt") | $(stats "$TMP/visit.txt") | $(stats "$TMP/indicators.txt") |")

  stop_pid "$SERVER_PID"; SERVER_PID=""
  if [ "$DB" = postgres ]; then pg_stop; fi
done

printf '\nConsole render time, ms (median / p90 of %s requests; curl on loopback, time to last byte)\n\n' "$RUNS"
echo "| database | submissions | review queue | a visit (8 contacts, 5 photos) | city-year indicators |"
echo "| --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
printf '\nload average at the end: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
