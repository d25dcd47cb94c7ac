#!/usr/bin/env bash
# Intake load benchmark: how many outreach visits a second one release server stores in
# PostgreSQL, next to what pgbench gets from the same PostgreSQL with a one-row insert
# per transaction (the ceiling for a durable commit per request on this machine).
#
# Builds `donghanh` and `loadgen` (release), starts a throwaway PostgreSQL with its
# durability defaults (fsync, synchronous_commit and full_page_writes stay on, unlike
# scripts/test.sh) and the server on free loopback ports, creates an admin and a peer
# educator in Đống Đa (006), runs loadgen and then pgbench at each concurrency, and
# prints a markdown table. Everything it started is stopped and its files removed on
# exit, also on failure. See BENCHMARKS.md.
#
#   BENCH_CONCURRENCY  concurrencies to run (default "1 8 32")
#   BENCH_SECONDS      seconds per run, for loadgen and for pgbench (default 20)
#   BENCH_CONTACTS     contacts per outreach visit (default 8)
#   BENCH_KEEP_LOGS    a directory to copy the server and PostgreSQL logs into
#   BENCH_DATABASE     postgres (default) or sqlite: the server's database (pgbench
#                      always runs against the throwaway PostgreSQL, for the ratio)
#   BENCH_PHONES       peer educators sending (default: the highest concurrency, so each
#                      connection is its own phone, as in the field); 1 = one phone
#                      sending everything at once
#   BENCH_PROFILE      a directory: record the whole machine with `perf` (cpu-clock,
#                      499 Hz) during each loadgen run and write the hottest symbols
#                      to profile.<concurrency>.txt there (installs linux-perf); also
#                      load pg_stat_statements and write the server's statements by
#                      time, with calls per visit, to statements.<concurrency>.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
CONCURRENCIES="${BENCH_CONCURRENCY:-1 8 32}"
RUN_SECS="${BENCH_SECONDS:-20}"
CONTACTS="${BENCH_CONTACTS:-8}"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"

log() { printf '[bench-intake] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

for c in $CONCURRENCIES; do
  case "$c" in '' | *[!0-9]* | 0) die "BENCH_CONCURRENCY: expected positive whole numbers, got '$CONCURRENCIES'" ;; esac
done
case "$RUN_SECS" in '' | *[!0-9]* | 0) die "BENCH_SECONDS: expected a positive whole number, got '$RUN_SECS'" ;; esac

# --- tools -----------------------------------------------------------------
ensure_postgres pgbench
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ -n "${BENCH_PROFILE:-}" ] && ! command -v perf >/dev/null 2>&1; then missing+=(linux-perf); fi
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

# --- build -----------------------------------------------------------------
cd "$ROOT"
log "building donghanh and loadgen (release) into $CARGO_TARGET_DIR"
cargo build --release -p server -p donghanh-tests --bin donghanh --bin loadgen
DONGHANH="$CARGO_TARGET_DIR/release/donghanh"
LOADGEN="$CARGO_TARGET_DIR/release/loadgen"

# --- throwaway services ----------------------------------------------------
TMP="$(mktemp -d -t donghanh-bench.XXXXXX)"
SERVER_PID=""
SAMPLER_PID=""
WAITS_PID=""
PERF_PID=""

cleanup() {
  local status=$?
  set +e
  [ -n "$SAMPLER_PID" ] && stop_pid "$SAMPLER_PID"
  [ -n "$WAITS_PID" ] && stop_pid "$WAITS_PID"
  [ -n "$PERF_PID" ] && stop_pid "$PERF_PID"
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  pg_stop 2>/dev/null
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS"
    cp "$TMP/server.log" "$BENCH_KEEP_LOGS/donghanh.log" 2>/dev/null
    cp "$PG_DATA/server.log" "$BENCH_KEEP_LOGS/postgresql.log" 2>/dev/null
  fi
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

# Durability defaults on purpose: no fsync=off, synchronous_commit=off or
# full_page_writes=off here, so every accepted submission is on disk when it is answered.
init_postgres "$TMP/pg"
if [ -n "${BENCH_PROFILE:-}" ]; then
  pg_start -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top
else
  pg_start
fi
psql_q postgres "CREATE DATABASE donghanh" >/dev/null
[ -n "${BENCH_PROFILE:-}" ] && psql_q donghanh "CREATE EXTENSION pg_stat_statements" >/dev/null
psql_q postgres "CREATE DATABASE pgbench" >/dev/null
PG_VERSION="$(psql_q postgres 'SHOW server_version')"
PG_DURABILITY="$(psql_q postgres "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers')")"
log "PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT ($PG_DURABILITY)"

# The server: release build, PostgreSQL, disk blobs under the temp dir, fresh keys.
key32() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
free_port; SRV_PORT="$PORT"
BASE="http://127.0.0.1:$SRV_PORT"
mkdir -p -m 700 "$TMP/data"
BENCH_DATABASE="${BENCH_DATABASE:-postgres}"
case "$BENCH_DATABASE" in
  postgres) export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/donghanh" ;;
  sqlite) unset DATABASE_URL ;; # the embedded default: $DATA_DIR/donghanh.db
  *) die "BENCH_DATABASE: expected postgres or sqlite, got '$BENCH_DATABASE'" ;;
esac
export BIND_ADDR="127.0.0.1:$SRV_PORT"
export DATA_DIR="$TMP/data"
export BLOB_STORE=disk
export BLOB_DIR="$TMP/data/blobs"
export JWT_KEYS="bench:$(key32)"
export UIC_HMAC_KEY="$(key32)"
export LOG_FORMAT=text
# Tokens must outlive long runs (BENCH_SECONDS × concurrencies).
export ACCESS_TOKEN_TTL_SECS=86400
unset RUST_LOG # the server's own default filter (info), as in production
start_donghanh

create_admin bench-admin
ADMIN_TOKEN="$(login bench-admin "$ADMIN_PASSWORD")"
UNIT_ID="$(api GET '/api/v1/org-units?limit=200' "$ADMIN_TOKEN" | jq -er '.items[] | select(.code == "006") | .id')" \
  || die "no org unit 006 (Đống Đa) in GET /api/v1/org-units"
# The phones: BENCH_PHONES peer educators in Đống Đa, each logged in once; loadgen's
# worker i sends as phone i mod BENCH_PHONES.
PHONES="${BENCH_PHONES:-$(printf '%s\n' $CONCURRENCIES | sort -n | tail -n 1)}"
case "$PHONES" in '' | *[!0-9]* | 0) die "BENCH_PHONES: expected a positive whole number, got '$PHONES'" ;; esac
PEER_PASSWORD="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
TOKENS="$TMP/tokens"
(umask 077 && : >"$TOKENS")
for i in $(seq 1 "$PHONES"); do
  api POST /api/v1/users "$ADMIN_TOKEN" \
    "$(jq -nc --arg n "bench.peer$i" --arg p "$PEER_PASSWORD" --arg u "$UNIT_ID" '{username: $n, password: $p, role: "peer_educator", org_unit_id: $u}')" \
    >/dev/null
  login "bench.peer$i" "$PEER_PASSWORD" >>"$TOKENS" # one a line (jq ends it)
done
log "$PHONES peer educators bench.peer1… in Đống Đa ($UNIT_ID) logged in"

# --- runs ------------------------------------------------------------------
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }

# Samples the server's VmRSS and RssAnon every 0.5 s until killed, writing the peaks so
# far (kB) to $1.rss and $1.anon. VmRSS includes the mapped pages of the binary (large
# with debug line tables) and the kernel may drop those at any time; RssAnon is the
# server's own memory (heap, stacks).
sample_rss() {
  local out="$1" peak=0 peak_anon=0 v a
  while :; do
    v="$(rss_kb "$SERVER_PID" VmRSS)"
    a="$(rss_kb "$SERVER_PID" RssAnon)"
    if [ -n "$v" ] && [ "$v" -gt "$peak" ]; then peak="$v"; printf '%s\n' "$peak" >"$out.rss"; fi
    if [ -n "$a" ] && [ "$a" -gt "$peak_anon" ]; then peak_anon="$a"; printf '%s\n' "$peak_anon" >"$out.anon"; fi
    sleep 0.5
  done
}

# Samples what the server's PostgreSQL sessions are doing every 0.2 s until killed, one
# line per busy session to $1: the wait event ("CPU" when it waits for nothing, i.e.
# runs), so the report can say where a visit's time goes (a row lock, the WAL flush…).
sample_waits() {
  local out="$1"
  : >"$out"
  while :; do
    psql_q donghanh "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity WHERE datname = 'donghanh' AND state = 'active' AND pid <> pg_backend_pid()" >>"$out" 2>/dev/null || true
    sleep 0.2
  done
}

# The five commonest wait events in a sample file, as "event share%, …".
top_waits() {
  sort "$1" | uniq -c | sort -rn | head -n 5 \
    | awk -v n="$(grep -c . "$1")" '{ printf "%s%s %.0f%%", (NR > 1 ? ", " : ""), $2, 100 * $1 / n }'
}

# CPU time in clock ticks: the machine's busy time (/proc/stat), the server's, and
# PostgreSQL's (the postmaster with the backends it has reaped, plus the live ones). Read
# before and after a run, the differences say where a visit's CPU goes; the rest of the
# machine's is loadgen's and the kernel's.
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
proc_ticks() { awk '{ print $14 + $15 + ('"${2:-0}"' ? $16 + $17 : 0) }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local pm total child
  pm="$(head -n 1 "$PG_DATA/postmaster.pid")"
  total="$(proc_ticks "$pm" 1)"
  for child in $(pgrep -P "$pm"); do total=$(( total + $(proc_ticks "$child") )); done
  echo "$total"
}
cpu_ticks() { echo "$(machine_ticks) $(proc_ticks "$SERVER_PID") $(pg_ticks)"; }
# "server a, PostgreSQL b, the rest c" in CPU milliseconds per accepted visit, from the
# ticks before ($1) and after ($2) a run that accepted $3 visits.
cpu_split() {
  awk -v before="$1" -v after="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(before, b, " "); split(after, a, " ")
    if (n == 0) { print "no visits"; exit }
    ms = 1000 / hz / n
    m = (a[1] - b[1]) * ms; s = (a[2] - b[2]) * ms; p = (a[3] - b[3]) * ms
    printf "CPU per visit %.2f ms: server %.2f, PostgreSQL %.2f, loadgen and the rest %.2f", m, s, p, m - s - p
  }'
}

field() { printf '%s' "$2" | jq -er ".$1"; }
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

printf '%s\n' "INSERT INTO bench_rows VALUES (gen_random_uuid(), gen_random_uuid(), '{\"k\":1}'::jsonb, now());" >"$TMP/insert.sql"
psql_q pgbench "CREATE TABLE bench_rows (id uuid PRIMARY KEY, author uuid, answers jsonb, received_at timestamptz)"
chmod 644 "$TMP/insert.sql"

LOAD_AT_RUNS="$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="${LOAD_AT_RUNS%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
  log "warning: load average $LOAD_AT_RUNS on $(nproc) cores before the runs (a build just ran, or something else is busy); figures will be low"
fi
RSS_BEFORE_KB="$(rss_kb "$SERVER_PID" VmRSS)"
ANON_BEFORE_KB="$(rss_kb "$SERVER_PID" RssAnon)"
ROWS=()
DETAILS=()
for c in $CONCURRENCIES; do
  # Start every run from a clean checkpoint, so a run does not pay for the last one's WAL.
  psql_q postgres CHECKPOINT >/dev/null
  log "loadgen: concurrency $c for ${RUN_SECS}s"
  rm -f "$TMP/peak.rss" "$TMP/peak.anon"
  sample_rss "$TMP/peak" &
  SAMPLER_PID=$!
  if [ "$BENCH_DATABASE" = postgres ]; then
    sample_waits "$TMP/waits.$c" &
    WAITS_PID=$!
  fi
  if [ -n "${BENCH_PROFILE:-}" ]; then
    mkdir -p "$BENCH_PROFILE"
    perf record -q -a -F 499 -e cpu-clock -o "$BENCH_PROFILE/perf.$c.data" -- sleep "$RUN_SECS" 2>/dev/null &
    PERF_PID=$!
  fi
  [ -n "${BENCH_PROFILE:-}" ] && psql_q donghanh "SELECT pg_stat_statements_reset()" >/dev/null
  TICKS_BEFORE="$(cpu_ticks)"
  LG="$("$LOADGEN" --base-url "$BASE" --tokens-file "$TOKENS" --org-unit-id "$UNIT_ID" \
    --concurrency "$c" --duration-secs "$RUN_SECS" --contacts "$CONTACTS")" || die "loadgen failed"
  TICKS_AFTER="$(cpu_ticks)"
  if [ -n "$PERF_PID" ]; then
    wait "$PERF_PID" || true
    PERF_PID=""
    # The hottest symbols of the whole machine, each with its process and binary.
    perf report -i "$BENCH_PROFILE/perf.$c.data" --stdio --no-children --sort comm,dso,sym \
      --percent-limit 0.5 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 60 \
      >"$BENCH_PROFILE/profile.$c.txt" || true
    perf report -i "$BENCH_PROFILE/perf.$c.data" --stdio --no-children --sort dso \
      2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 15 >"$BENCH_PROFILE/dso.$c.txt" || true
    # The server's statements (its database only), by total time: calls per accepted
    # visit, mean and total milliseconds, and the statement's start.
    psql_q donghanh "SELECT round(s.calls::numeric / greatest($(field accepted "$LG"), 1), 2) || ' calls/visit | ' || round(s.mean_exec_time::numeric, 3) || ' ms mean | ' || round(s.total_exec_time::numeric) || ' ms total | ' || regexp_replace(left(s.query, 160), '\s+', ' ', 'g') FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'donghanh' ORDER BY s.total_exec_time DESC LIMIT 30" \
      >"$BENCH_PROFILE/statements.$c.txt" || true
    log "profile: $BENCH_PROFILE/profile.$c.txt, statements.$c.txt"
  fi
  stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
  if [ -n "$WAITS_PID" ]; then stop_pid "$WAITS_PID"; WAITS_PID=""; fi
  PEAK_KB="$(cat "$TMP/peak.rss" 2>/dev/null || echo 0)"
  PEAK_ANON_KB="$(cat "$TMP/peak.anon" 2>/dev/null || echo 0)"
  AFTER_KB="$(rss_kb "$SERVER_PID" VmRSS)"
  AFTER_ANON_KB="$(rss_kb "$SERVER_PID" RssAnon)"
  printf '%s\n' "$LG" >&2

  psql_q postgres CHECKPOINT >/dev/null
  j=$(( c < 2 ? c : 2 ))
  log "pgbench: -c $c -j $j -T $RUN_SECS"
  PGB="$("$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -f "$TMP/insert.sql" \
    -c "$c" -j "$j" -T "$RUN_SECS" pgbench 2>&1)" || { printf '%s\n' "$PGB" >&2; die "pgbench failed"; }
  TPS="$(printf '%s\n' "$PGB" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)"
  [ -n "$TPS" ] || { printf '%s\n' "$PGB" >&2; die "no tps in pgbench's output"; }
  log "pgbench: $TPS tps"

  PER_SEC="$(field per_sec "$LG")"
  RATIO="$(awk -v a="$PER_SEC" -v b="$TPS" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }')"
  ROWS+=("| $c | $PER_SEC | $(field p50_ms "$LG") | $(field p99_ms "$LG") | $(field errors "$LG") | $(mb "$PEAK_KB") | $(awk -v t="$TPS" 'BEGIN { printf "%.1f", t }') | $RATIO |")
  WAITS=""
  if [ -s "$TMP/waits.$c" ]; then WAITS="; the server's PostgreSQL sessions: $(top_waits "$TMP/waits.$c")"; fi
  DETAILS+=("concurrency $c ($(field phones "$LG") phones): $(field accepted "$LG") accepted in $(field duration_s "$LG") s, max $(field max_ms "$LG") ms; $(cpu_split "$TICKS_BEFORE" "$TICKS_AFTER" "$(field accepted "$LG")"); server RSS $(mb "$PEAK_KB") MB peak, $(mb "${AFTER_KB:-0}") MB after; anonymous $(mb "$PEAK_ANON_KB") MB peak, $(mb "${AFTER_ANON_KB:-0}") MB after$WAITS")
done
HWM_KB="$(rss_kb "$SERVER_PID" VmHWM)"
LOAD_AT_END="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$BENCH_DATABASE" = postgres ]; then
  SUBMISSIONS="$(psql_q donghanh 'SELECT count(*) FROM submissions')"
  DB_MB="$(psql_q donghanh "SELECT round(pg_database_size('donghanh') / 1048576.0, 1)")"
else
  SUBMISSIONS="$(python3 -c 'import sqlite3, sys; print(sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True).execute("SELECT count(*) FROM submissions").fetchone()[0])' "$TMP/data/donghanh.db")"
  DB_MB="$(du -sm "$TMP/data/donghanh.db" | cut -f1) (+ WAL $(du -sm "$TMP/data/donghanh.db-wal" 2>/dev/null | cut -f1 || echo 0))"
fi

# What the server logged while it was under load: warnings and errors, and whether any
# secret the benchmark knows of (passwords, tokens, keys) appears in its log.
WARNINGS="$(grep -cE ' (WARN|ERROR) ' "$TMP/server.log" || true)"
LEAKS=""
for name in ADMIN_PASSWORD PEER_PASSWORD ADMIN_TOKEN UIC_HMAC_KEY; do
  if grep -qF -- "${!name}" "$TMP/server.log"; then LEAKS="$LEAKS $name"; fi
done
# The tokens file has no empty line: an empty pattern would match every line.
if grep -qFf "$TOKENS" "$TMP/server.log"; then LEAKS="$LEAKS peer-token"; fi
if grep -qF -- "${JWT_KEYS#bench:}" "$TMP/server.log"; then LEAKS="$LEAKS JWT_KEYS"; fi
if grep -qE '\bLG[A-Z0-9]{10}\b' "$TMP/server.log"; then LEAKS="$LEAKS raw-UIC"; fi

# --- report ----------------------------------------------------------------
MODEL="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
cat <<EOF

## Intake benchmark ($(date -u +%Y-%m-%d))

- machine: $(nproc) cores, ${MODEL:-unknown CPU}, $(awk '/^MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo)
- server database: $BENCH_DATABASE; PostgreSQL $PG_VERSION (for pgbench$([ "$BENCH_DATABASE" = postgres ] && echo " and the server")), durability defaults ($PG_DURABILITY)
- load average (1, 5, 15 min): $LOAD_AT_START at start, $LOAD_AT_RUNS after the build, $LOAD_AT_END at the end
- $RUN_SECS s per run; outreach_visit v1 with $CONTACTS contacts, every other one referred; $PHONES phones (peer educators), worker i sending as phone i mod $PHONES

| concurrency | accepted submissions/s | p50 ms | p99 ms | errors | server peak RSS MB | pgbench single-row inserts/s | ratio |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
EOF
printf '%s\n' "${ROWS[@]}"
echo
printf -- '- %s\n' "${DETAILS[@]}"
echo "- server RSS $(mb "${RSS_BEFORE_KB:-0}") MB (anonymous $(mb "${ANON_BEFORE_KB:-0}") MB) before the first run; VmHWM $(mb "${HWM_KB:-0}") MB at the end"
echo "- $SUBMISSIONS submissions stored; database ($BENCH_DATABASE) $DB_MB MB"
echo "- server log: $WARNINGS WARN/ERROR lines; secrets or raw UICs found in it:${LEAKS:- none}"
