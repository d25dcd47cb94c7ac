#!/usr/bin/env bash
# Reports benchmark: the indicators report for the whole city over a year, and the
# streamed submissions export, against one release server on a PostgreSQL holding a
# year of approved field work (1,000,000 outreach visits with 8 contacts each, by
# default).
#
# Builds `donghanh` (release), starts a throwaway PostgreSQL with its durability
# defaults (fsync, synchronous_commit and full_page_writes stay on, as in
# scripts/bench-intake.sh; only the data-generation session turns synchronous_commit
# off for itself), applies the migrations, and generates the data with SQL in the
# shape intake and approval write it: one peer educator and one volunteer per district,
# approved outreach visits spread over the 30 districts and 2024, their contacts (also
# as report facts in approved_contacts, keyed by client_keys with a skewed reuse),
# commodity distributions, referrals (a few completed by an approved handoff), group
# sessions and support visits; then builds the report cells from those facts with
# `donghanh rebuild-reports` (timed), as a server does when it first meets such data.
# Then it starts the server on a free loopback port, creates an admin, times
# `GET /api/v1/reports/indicators` for the city (1 cold run after a PostgreSQL restart,
# then warm runs, JSON and CSV), checks the city figures against counts made with SQL
# straight from the facts, times an admin reopening and approving again a few visits
# (what keeping the cells costs a review at this size) and checks the figures again,
# shows EXPLAIN (ANALYZE, BUFFERS) of the cells query beside the live count it replaced,
# and streams a CSV export of about 100,000 submissions while sampling the server's
# RSS. Prints a markdown summary. Everything it started is stopped and its files removed on exit, also on
# failure.
#
#   BENCH_VISITS          approved outreach visits (default 1000000; 8 contacts each)
#   BENCH_CLIENTS         distinct client keys drawn from (default 400000)
#   BENCH_GROUP_SESSIONS  approved group sessions (default 50000)
#   BENCH_SUPPORT_VISITS  approved support visits, 1-3 actions each (default 50000)
#   BENCH_WARM_RUNS       warm runs of the report, JSON and CSV each (default 5)
#   BENCH_EXPORT_ROWS     submissions the export should match, about (default 100000)
#   BENCH_SHARED_BUFFERS  PostgreSQL shared_buffers (default 1GB; the rest is default)
#   BENCH_KEEP_LOGS       a directory to copy the logs, plans and summary into
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${DONGHANH_CACHE:-$HOME/.cache/donghanh}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VISITS="${BENCH_VISITS:-1000000}"
CLIENTS="${BENCH_CLIENTS:-400000}"
GROUPS_N="${BENCH_GROUP_SESSIONS:-50000}"
SUPPORTS="${BENCH_SUPPORT_VISITS:-50000}"
WARM_RUNS="${BENCH_WARM_RUNS:-5}"
EXPORT_ROWS="${BENCH_EXPORT_ROWS:-100000}"
SHARED_BUFFERS="${BENCH_SHARED_BUFFERS:-1GB}"
CONTACTS_PER_VISIT=8
TARGET_SECS=2
SCRIPT_START=$SECONDS
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"

log() { printf '[bench-reports] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"

for v in VISITS CLIENTS GROUPS_N SUPPORTS WARM_RUNS EXPORT_ROWS; do
  case "${!v}" in '' | *[!0-9]* | 0) die "$v: expected a positive whole number, got '${!v}'" ;; esac
done
case "$SHARED_BUFFERS" in *[!0-9A-Za-z]* | '') die "BENCH_SHARED_BUFFERS: expected e.g. 1GB, got '$SHARED_BUFFERS'" ;; esac

# --- tools -----------------------------------------------------------------
ensure_postgres
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi

# --- build -----------------------------------------------------------------
cd "$ROOT"
log "building donghanh (release) into $CARGO_TARGET_DIR"
BUILD_START=$SECONDS
cargo build --release -p server --bin donghanh
BUILD_SECS=$(( SECONDS - BUILD_START ))
DONGHANH="$CARGO_TARGET_DIR/release/donghanh"

# --- throwaway services ----------------------------------------------------
TMP="$(mktemp -d -t donghanh-bench-reports.XXXXXX)"
SERVER_PID=""
SAMPLER_PID=""

cleanup() {
  local status=$?
  set +e
  [ -n "$SAMPLER_PID" ] && stop_pid "$SAMPLER_PID"
  [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
  pg_stop 2>/dev/null
  if [ -n "${BENCH_KEEP_LOGS:-}" ]; then
    mkdir -p "$BENCH_KEEP_LOGS"
    cp "$TMP/server.log" "$BENCH_KEEP_LOGS/donghanh.log" 2>/dev/null
    cp "$PG_DATA/server.log" "$BENCH_KEEP_LOGS/postgresql.log" 2>/dev/null
    cp "$TMP/generate.log" "$BENCH_KEEP_LOGS/generate.log" 2>/dev/null
    cp "$TMP"/plan-*.txt "$BENCH_KEEP_LOGS/" 2>/dev/null
    cp "$TMP/summary.md" "$BENCH_KEEP_LOGS/summary.md" 2>/dev/null
  fi
  rm -rf "$TMP"
  exit $status
}
trap cleanup EXIT INT TERM

# Durability defaults on purpose (no fsync=off, synchronous_commit=off or
# full_page_writes=off); shared_buffers modestly raised, everything else default
# (work_mem 4MB, 2 parallel workers per gather), as a production server starts out.
init_postgres "$TMP/pg"
pg_start -c "shared_buffers=$SHARED_BUFFERS"
psql_q postgres "CREATE DATABASE bench" >/dev/null
PG_VERSION="$(psql_q postgres 'SHOW server_version')"
PG_SETTINGS="$(psql_q postgres "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem', 'effective_cache_size', 'max_parallel_workers_per_gather', 'jit')")"
log "PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT ($PG_SETTINGS)"

key32() { head -c 32 /dev/urandom | base64 | tr -d '\n'; }
free_port; SRV_PORT="$PORT"
BASE="http://127.0.0.1:$SRV_PORT"
mkdir -p "$TMP/data"
export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench"
export BIND_ADDR="127.0.0.1:$SRV_PORT"
export DATA_DIR="$TMP/data"
export BLOB_STORE=disk
export BLOB_DIR="$TMP/data/blobs"
export JWT_KEYS="bench:$(key32)"
export UIC_HMAC_KEY="$(key32)"
export PHOTO_SWEEP_INTERVAL_SECS=0
export REFERRAL_EXPIRY_INTERVAL_SECS=0
export LOG_FORMAT=text
# The report runs may take a while on a busy machine: keep the token valid.
export ACCESS_TOKEN_TTL_SECS=86400
unset RUST_LOG # the server's own default filter (info), as in production

"$DONGHANH" migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "donghanh migrate failed"; }
log "migrations applied"

# --- data --------------------------------------------------------------------
# One SQL session, rows in dependency order. Secondary indexes and foreign keys of the
# bulk-loaded tables are dropped first and recreated from their own definitions after
# the load (the schema is compared before and after), which is much faster than
# maintaining them row by row and yields the same tables. The ids are time-ordered
# (UUIDv7 layout, as Uuid::now_v7() makes them) from the time each row was received.
cat >"$TMP/generate.sql" <<'SQL'
\set ON_ERROR_STOP on
\timing on
SET synchronous_commit = off;  -- this session only: the measured part keeps the default
SET work_mem = '256MB';
SET maintenance_work_mem = '1GB';
-- Serial plans: rows then come out in the order they are generated (by time received),
-- so tables are laid out as appended in production.
SET max_parallel_workers_per_gather = 0;
SET client_min_messages = warning;

-- A UUIDv7 of a time: 48 bits of Unix milliseconds, version 7, random rest (variant 10).
CREATE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7'
          || substr(replace(gen_random_uuid()::text, '-', ''), 14))::uuid
$$;

-- The schema as the migrations made it, to compare after the load.
CREATE UNLOGGED TABLE bench_ddl AS
SELECT 'index' AS what, c.relname AS name, t.relname AS tbl, pg_get_indexdef(i.indexrelid) AS def
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
 WHERE t.relnamespace = 'public'::regnamespace AND NOT i.indisprimary AND NOT i.indisunique
   AND t.relname IN ('submissions', 'clients', 'contacts', 'approved_contacts', 'commodity_distributions',
                     'referrals', 'handoffs', 'group_sessions', 'support_actions')
UNION ALL
SELECT 'fk', c.conname, t.relname,
       format('ALTER TABLE %I ADD CONSTRAINT %I %s', t.relname, c.conname, pg_get_constraintdef(c.oid))
  FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
 WHERE c.contype = 'f' AND t.relnamespace = 'public'::regnamespace
   AND t.relname IN ('submissions', 'clients', 'contacts', 'approved_contacts', 'commodity_distributions',
                     'referrals', 'handoffs', 'group_sessions', 'support_actions');
CREATE UNLOGGED TABLE bench_schema_before AS
SELECT md5(string_agg(d, E'\n' ORDER BY d)) AS digest FROM (
  SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
   WHERE t.relnamespace = 'public'::regnamespace AND t.relname NOT LIKE 'bench\_%'
  UNION ALL
  SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
   WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'bench\_%') s;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bench_ddl WHERE what = 'fk' LOOP
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', r.tbl, r.name);
  END LOOP;
  FOR r IN SELECT * FROM bench_ddl WHERE what = 'index' LOOP
    EXECUTE format('DROP INDEX %I', r.name);
  END LOOP;
END $$;

-- Districts and their field workers: a peer educator (outreach visits, group sessions,
-- handoffs) and a volunteer (support visits: that form is for volunteers) in each.
CREATE UNLOGGED TABLE bench_district AS
SELECT (row_number() OVER (ORDER BY code) - 1)::int AS idx, id AS org_unit_id, path AS org_path, code,
       gen_random_uuid() AS peer_id, gen_random_uuid() AS volunteer_id
  FROM org_units WHERE level = 'district';
DO $$ BEGIN
  IF (SELECT count(*) FROM bench_district) <> 30 THEN RAISE EXCEPTION 'expected the 30 seeded districts'; END IF;
END $$;
INSERT INTO users (id, username, password_hash, role, org_unit_id, team_id, active, created_at, updated_at)
SELECT peer_id, 'bench.peer.' || code, 'bench-not-a-password-hash', 'peer_educator', org_unit_id, NULL::uuid, true,
       timestamptz '2023-12-01 09:00+07', timestamptz '2023-12-01 09:00+07'
  FROM bench_district
UNION ALL
SELECT volunteer_id, 'bench.volunteer.' || code, 'bench-not-a-password-hash', 'volunteer', org_unit_id, NULL::uuid, true,
       timestamptz '2023-12-01 09:00+07', timestamptz '2023-12-01 09:00+07'
  FROM bench_district;

-- Client keys: the integer per keyed UIC hash approval creates.
INSERT INTO client_keys (id, uic_hash, first_approved_on)
SELECT i, encode(sha256(convert_to('bench-client-' || i, 'UTF8')), 'hex'), NULL
  FROM generate_series(1, :clients) i;
SELECT setval(pg_get_serial_sequence('client_keys', 'id'), :clients);

-- Every submission: kind, district, a random day of 2024, and its times (filled in on a
-- phone during the day, received up to three days later, approved up to two days after).
-- seq follows the order received; the id is a UUIDv7 of that moment.
CREATE UNLOGGED TABLE bench_sub AS
WITH g AS MATERIALIZED (
  SELECT i,
         CASE WHEN i <= :visits THEN 'outreach_visit'
              WHEN i <= :visits + :group_sessions THEN 'group_session'
              ELSE 'support_visit' END AS kind,
         floor(random() * 30)::int AS d,
         date '2024-01-01' + floor(random() * 366)::int AS occurred_on,
         random() AS r1, random() AS r2, random() AS r3, random() AS r4
    FROM generate_series(1, :visits + :group_sessions + :support_visits) i
), t AS (
  SELECT g.kind, g.occurred_on, g.r4, bd.org_unit_id, bd.org_path,
         CASE WHEN g.kind = 'support_visit' THEN bd.volunteer_id ELSE bd.peer_id END AS author_id,
         ((g.occurred_on + time '07:00' + g.r1 * interval '13 hours') AT TIME ZONE 'Asia/Ho_Chi_Minh') AS started_at,
         (5 + g.r2 * 55) * interval '1 minute' AS duration,
         g.r3 * g.r3 * g.r3 * interval '72 hours' AS delay
    FROM g JOIN bench_district bd ON bd.idx = g.d
)
SELECT row_number() OVER (ORDER BY started_at + duration + delay) AS seq,
       pg_temp.uuid7(started_at + duration + delay) AS id,
       kind, occurred_on, r4, org_unit_id, org_path, author_id, started_at,
       started_at + duration AS completed_at,
       started_at + duration + delay AS received_at,
       started_at + duration + delay + (1 + r4 * 47) * interval '1 hour' AS updated_at
  FROM t;
CREATE UNIQUE INDEX ON bench_sub (seq);
ANALYZE bench_sub;
ANALYZE client_keys;

-- Contacts: 8 per visit, clients drawn with a skewed reuse (a few met very often). The
-- lateral series keeps the visits' order (so approved_contacts is laid out by time, as
-- approvals append it), and the hash is recomputed rather than joined for the same reason.
CREATE UNLOGGED TABLE bench_contact AS
WITH c AS MATERIALIZED (
  SELECT s.seq, s.id AS submission_id, p.position, s.org_path, s.occurred_on, s.received_at,
         floor(:clients * random() ^ 2)::bigint + 1 AS client_id,
         (ARRAY['under_18', '18_24', '25_34', '35_49', '50_plus'])[1 + floor(random() * 5)::int] AS age_band,
         floor(random() * 11)::int AS condoms_male,
         (random() < 0.2)::int * floor(random() * 4)::int AS condoms_female,
         floor(random() * 4)::int AS lubricant,
         (random() < 0.15)::int AS self_test_kits,
         floor(random() * 3)::int AS iec_materials,
         random() < 0.6 AS counselled,
         CASE WHEN random() < 0.10
              THEN (ARRAY['hiv_test', 'hiv_test', 'hiv_test', 'sti_exam', 'prep', 'other'])[1 + floor(random() * 6)::int]
         END AS referral
    FROM bench_sub s
   CROSS JOIN LATERAL (SELECT generate_series(0, 7) AS position WHERE s.kind = 'outreach_visit') p
)
SELECT c.*, encode(sha256(convert_to('bench-client-' || c.client_id, 'UTF8')), 'hex') AS uic_hash FROM c;
CREATE INDEX ON bench_contact (seq);
ANALYZE bench_contact;

-- Group sessions and support visits with their answers' parts.
CREATE UNLOGGED TABLE bench_group AS
SELECT s.seq,
       (ARRAY['establishment_owners', 'workers', 'community'])[1 + floor(random() * 3)::int] AS audience,
       5 + floor(random() * 26)::int AS participants,
       (ARRAY['hiv_prevention', 'condom_use', 'sti', 'drug_harm_reduction', 'legal_rights'])[1 + floor(random() * 5)::int] AS topic
  FROM bench_sub s WHERE s.kind = 'group_session';
CREATE UNIQUE INDEX ON bench_group (seq);
CREATE UNLOGGED TABLE bench_support AS
WITH p AS MATERIALIZED (
  SELECT s.seq, s.id AS submission_id, s.received_at,
         floor(:clients * random() ^ 2)::bigint + 1 AS client_id,
         floor(random() * 6)::int AS first_action, 1 + floor(random() * 3)::int AS n_actions,
         (1 + floor(random() * 30)::bigint) * 1000000 AS loan
    FROM bench_sub s WHERE s.kind = 'support_visit'
)
SELECT p.seq, p.submission_id, p.received_at, ck.uic_hash AS person_uic, a.actions,
       CASE WHEN 'loan' = ANY (a.actions) THEN p.loan END AS loan_amount_vnd
  FROM p JOIN client_keys ck ON ck.id = p.client_id
 CROSS JOIN LATERAL (
   SELECT array_agg((ARRAY['counselling', 'job_referral', 'vocational_training', 'loan', 'health_insurance',
                           'rehab_persuasion'])[1 + (p.first_action + j) % 6] ORDER BY j) AS actions
     FROM generate_series(0, p.n_actions - 1) j) a;
CREATE UNIQUE INDEX ON bench_support (seq);

-- Submissions, approved at their first revision, answers as intake stores them (UICs
-- already replaced by their keyed hash).
INSERT INTO submissions (id, form_id, form_version, kind, author_id, org_unit_id, org_path, hotspot_id, status,
                         revision, fingerprint, answers, photo_digests, occurred_on, started_at, completed_at,
                         received_at, updated_at, change_seq)
SELECT s.id, s.kind, 1, s.kind, s.author_id, s.org_unit_id, s.org_path, NULL, 'approved', 1,
       encode(sha256(convert_to(s.id::text, 'UTF8')), 'hex'),
       CASE s.kind
         WHEN 'outreach_visit' THEN jsonb_build_object(
           'visit_date', s.occurred_on,
           'place_type', (ARRAY['street', 'karaoke', 'massage', 'guesthouse', 'bar_restaurant', 'online', 'other'])[1 + floor(s.r4 * 7)::int],
           'contacts', (SELECT jsonb_agg(jsonb_build_object(
                          'uic', c.uic_hash, 'age_band', c.age_band, 'condoms_male', c.condoms_male,
                          'condoms_female', c.condoms_female, 'lubricant', c.lubricant,
                          'self_test_kits', c.self_test_kits, 'iec_materials', c.iec_materials,
                          'counselled', c.counselled,
                          'referrals', CASE WHEN c.referral IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(c.referral) END)
                        ORDER BY c.position)
                          FROM bench_contact c WHERE c.seq = s.seq))
         WHEN 'group_session' THEN (SELECT jsonb_build_object('session_date', s.occurred_on, 'audience', g.audience,
                                                              'participants', g.participants, 'topic', g.topic)
                                      FROM bench_group g WHERE g.seq = s.seq)
         ELSE (SELECT jsonb_strip_nulls(jsonb_build_object('visit_date', s.occurred_on, 'person_uic', p.person_uic,
                                                            'support', to_jsonb(p.actions), 'loan_amount_vnd', p.loan_amount_vnd))
                 FROM bench_support p WHERE p.seq = s.seq)
       END,
       '[]'::jsonb, s.occurred_on, s.started_at, s.completed_at, s.received_at, s.updated_at, s.seq
  FROM bench_sub s ORDER BY s.seq;

-- What intake extracts: first sightings of clients, contacts, commodity totals.
CREATE UNLOGGED TABLE bench_first AS
SELECT client_id, min(seq) AS seq FROM bench_contact GROUP BY client_id;
ANALYZE bench_first;
INSERT INTO clients (uic_hash, first_submission_id, first_seen_at)
SELECT ck.uic_hash, s.id, s.received_at
  FROM bench_first f JOIN bench_sub s ON s.seq = f.seq JOIN client_keys ck ON ck.id = f.client_id;
INSERT INTO contacts (id, submission_id, position, uic_hash, is_new, age_band, condoms_male, condoms_female,
                      lubricant, self_test_kits, iec_materials, counselled)
SELECT pg_temp.uuid7(c.received_at), c.submission_id, c.position, c.uic_hash, f.seq = c.seq, c.age_band,
       c.condoms_male, c.condoms_female, c.lubricant, c.self_test_kits, c.iec_materials, c.counselled
  FROM bench_contact c JOIN bench_first f ON f.client_id = c.client_id;
INSERT INTO commodity_distributions (submission_id, item, quantity)
SELECT t.submission_id, v.item, v.quantity
  FROM (SELECT submission_id, sum(condoms_male) AS m, sum(condoms_female) AS f, sum(lubricant) AS l,
               sum(self_test_kits) AS k
          FROM bench_contact GROUP BY submission_id) t
 CROSS JOIN LATERAL (VALUES ('male_condom', t.m), ('female_condom', t.f), ('lubricant', t.l),
                            ('self_test_kit', t.k)) AS v(item, quantity)
 WHERE v.quantity > 0;

-- What approval writes: the report facts, then each client's first approved day.
INSERT INTO approved_contacts (submission_id, position, client_id, org_path, occurred_on, condoms_male,
                               condoms_female, lubricant, self_test_kits)
SELECT submission_id, position, client_id, org_path, occurred_on, condoms_male, condoms_female, lubricant,
       self_test_kits
  FROM bench_contact;
UPDATE client_keys ck SET first_approved_on = m.first
  FROM (SELECT client_id, min(occurred_on) AS first FROM approved_contacts GROUP BY client_id) m
 WHERE ck.id = m.client_id;
-- Approval only creates keys for clients it sees.
DELETE FROM client_keys WHERE first_approved_on IS NULL;

-- Referrals of about 10% of contacts, under unique codes (k times an odd number modulo
-- 2^40 is a bijection, written in the referral alphabet); 5% completed by an approved
-- handoff at a facility within two weeks, the rest issued.
CREATE UNLOGGED TABLE bench_ref AS
SELECT r.*, (r.k * 742938285) % 1099511627776 AS n FROM (
  SELECT row_number() OVER () AS k, c.submission_id, c.position, c.uic_hash, c.referral AS service,
         c.occurred_on, c.received_at, s.author_id, s.org_unit_id, s.org_path, s.updated_at,
         random() < 0.05 AS completed, floor(random() * 14)::int AS wait_days, random() AS r1, random() AS r2
    FROM bench_contact c JOIN bench_sub s ON s.seq = c.seq
   WHERE c.referral IS NOT NULL) r;
CREATE UNLOGGED TABLE bench_handoff AS
SELECT h.*, pg_temp.uuid7(h.received_at) AS id FROM (
  SELECT r.k, r.author_id, r.org_unit_id, r.org_path, r.service,
         r.occurred_on + r.wait_days AS arrived_on,
         (ARRAY['service_received', 'hiv_negative', 'hiv_negative', 'hiv_positive_linked', 'not_received'])[1 + floor(r.r1 * 5)::int] AS outcome,
         'Phòng khám ngoại trú ' || (1 + floor(r.r2 * 12)::int) AS facility,
         ((r.occurred_on + r.wait_days + time '09:00' + r.r2 * interval '8 hours') AT TIME ZONE 'Asia/Ho_Chi_Minh') AS started_at,
         ((r.occurred_on + r.wait_days + time '09:00' + r.r2 * interval '8 hours') AT TIME ZONE 'Asia/Ho_Chi_Minh') + interval '2 hours' AS received_at
    FROM bench_ref r WHERE r.completed) h;
ALTER TABLE bench_ref ADD COLUMN code text;
UPDATE bench_ref SET code =
       substr(a, ((n >> 35) & 31)::int + 1, 1) || substr(a, ((n >> 30) & 31)::int + 1, 1)
    || substr(a, ((n >> 25) & 31)::int + 1, 1) || substr(a, ((n >> 20) & 31)::int + 1, 1) || '-'
    || substr(a, ((n >> 15) & 31)::int + 1, 1) || substr(a, ((n >> 10) & 31)::int + 1, 1)
    || substr(a, ((n >> 5) & 31)::int + 1, 1) || substr(a, (n & 31)::int + 1, 1)
  FROM (SELECT 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'::text AS a) alphabet;
INSERT INTO submissions (id, form_id, form_version, kind, author_id, org_unit_id, org_path, hotspot_id, status,
                         revision, fingerprint, answers, photo_digests, occurred_on, started_at, completed_at,
                         received_at, updated_at, change_seq)
SELECT h.id, 'referral_handoff', 1, 'referral_handoff', h.author_id, h.org_unit_id, h.org_path, NULL, 'approved', 1,
       encode(sha256(convert_to(h.id::text, 'UTF8')), 'hex'),
       jsonb_build_object('referral_code', r.code, 'facility', h.facility, 'arrived_on', h.arrived_on,
                          'service', h.service, 'outcome', h.outcome),
       '[]'::jsonb, h.arrived_on, h.started_at, h.started_at + interval '10 minutes', h.received_at,
       h.received_at + interval '1 day',
       (SELECT max(seq) FROM bench_sub) + row_number() OVER (ORDER BY h.received_at)
  FROM bench_handoff h JOIN bench_ref r ON r.k = h.k
 ORDER BY h.received_at;
INSERT INTO handoffs (submission_id, referral_code, facility, arrived_on, service, outcome)
SELECT h.id, r.code, h.facility, h.arrived_on, h.service, h.outcome
  FROM bench_handoff h JOIN bench_ref r ON r.k = h.k;
INSERT INTO referrals (id, code, submission_id, contact_position, uic_hash, service, status, issued_on, issued_by,
                       org_unit_id, org_path, outcome, completed_on, completed_by_submission, change_seq,
                       created_at, updated_at)
SELECT pg_temp.uuid7(r.received_at), r.code, r.submission_id, r.position, r.uic_hash, r.service,
       CASE WHEN h.id IS NULL THEN 'issued' ELSE 'completed' END, r.occurred_on, r.author_id,
       r.org_unit_id, r.org_path, h.outcome, h.arrived_on, h.id,
       (SELECT max(change_seq) FROM submissions) + r.k,
       r.received_at, COALESCE(h.received_at + interval '1 day', r.received_at)
  FROM bench_ref r LEFT JOIN bench_handoff h ON h.k = r.k
 ORDER BY r.k;

-- Group sessions and support actions.
INSERT INTO group_sessions (submission_id, audience, participants, topic)
SELECT s.id, g.audience, g.participants, g.topic FROM bench_group g JOIN bench_sub s ON s.seq = g.seq;
INSERT INTO support_actions (id, submission_id, person_uic_hash, action, loan_amount_vnd)
SELECT pg_temp.uuid7(p.received_at), p.submission_id, p.person_uic, a.action,
       CASE WHEN a.action = 'loan' THEN p.loan_amount_vnd END
  FROM bench_support p CROSS JOIN LATERAL unnest(p.actions) AS a(action);

UPDATE sync_counter SET value = GREATEST((SELECT max(change_seq) FROM submissions),
                                         (SELECT max(change_seq) FROM referrals));
-- Each phone's feed past the numbers its rows were given (migration 000011).
INSERT INTO sync_feeds (user_id, value)
SELECT u, max(seq) FROM (SELECT author_id, change_seq FROM submissions
                         UNION ALL SELECT issued_by, change_seq FROM referrals) AS x(u, seq)
 GROUP BY u
ON CONFLICT (user_id) DO UPDATE SET value = GREATEST(sync_feeds.value, EXCLUDED.value);

-- The schema back as the migrations made it.
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM bench_ddl WHERE what = 'index' LOOP EXECUTE r.def; END LOOP;
  FOR r IN SELECT * FROM bench_ddl WHERE what = 'fk' LOOP EXECUTE r.def; END LOOP;
END $$;
DO $$
DECLARE after text;
BEGIN
  SELECT md5(string_agg(d, E'\n' ORDER BY d)) INTO after FROM (
    SELECT pg_get_indexdef(indexrelid) AS d FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
     WHERE t.relnamespace = 'public'::regnamespace AND t.relname NOT LIKE 'bench\_%'
    UNION ALL
    SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
     WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'bench\_%') s;
  IF after IS DISTINCT FROM (SELECT digest FROM bench_schema_before) THEN
    RAISE EXCEPTION 'indexes or constraints differ from the migrated schema after the load';
  END IF;
END $$;

DROP TABLE bench_ddl, bench_schema_before, bench_district, bench_sub, bench_contact, bench_group, bench_support,
           bench_first, bench_ref, bench_handoff;
RESET synchronous_commit;
VACUUM (ANALYZE);
SQL

GEN_LOAD_BEFORE="$(load)"
log "generating $VISITS outreach visits x $CONTACTS_PER_VISIT contacts, $GROUPS_N group sessions, $SUPPORTS support visits over $CLIENTS clients (load $GEN_LOAD_BEFORE)"
GEN_START=$SECONDS
"$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d bench \
  -v visits="$VISITS" -v clients="$CLIENTS" -v group_sessions="$GROUPS_N" -v support_visits="$SUPPORTS" \
  -f "$TMP/generate.sql" >"$TMP/generate.log" 2>&1 \
  || { tail -n 40 "$TMP/generate.log" >&2; die "data generation failed"; }
GEN_SECS=$(( SECONDS - GEN_START ))
GEN_LOAD_AFTER="$(load)"
psql_q bench CHECKPOINT >/dev/null
DB_SIZE="$(psql_q bench "SELECT pg_size_pretty(pg_database_size('bench'))")"
COUNTS="$(psql_q bench "SELECT format('%s submissions (%s outreach visits, %s group sessions, %s support visits, %s handoffs), %s contacts, %s approved_contacts, %s client_keys, %s clients, %s referrals (%s completed), %s commodity_distributions, %s group_sessions, %s support_actions, %s users',
  (SELECT count(*) FROM submissions),
  (SELECT count(*) FROM submissions WHERE kind = 'outreach_visit'),
  (SELECT count(*) FROM submissions WHERE kind = 'group_session'),
  (SELECT count(*) FROM submissions WHERE kind = 'support_visit'),
  (SELECT count(*) FROM submissions WHERE kind = 'referral_handoff'),
  (SELECT count(*) FROM contacts), (SELECT count(*) FROM approved_contacts), (SELECT count(*) FROM client_keys),
  (SELECT count(*) FROM clients), (SELECT count(*) FROM referrals),
  (SELECT count(*) FROM referrals WHERE status = 'completed'), (SELECT count(*) FROM commodity_distributions),
  (SELECT count(*) FROM group_sessions), (SELECT count(*) FROM support_actions), (SELECT count(*) FROM users))")"
TABLE_SIZES="$(psql_q bench "SELECT string_agg(format('%s %s', relname, pg_size_pretty(total)), ', ' ORDER BY total DESC) FROM (
  SELECT relname, pg_total_relation_size(oid) AS total FROM pg_class
   WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 2 DESC LIMIT 6) t")"
# How closely the rows' physical order follows the day (1 = appended in time order, as in production).
CORRELATION="$(psql_q bench "SELECT string_agg(format('%s.%s %s', tablename, attname, round(correlation::numeric, 2)), ', ' ORDER BY tablename, attname)
  FROM pg_stats WHERE schemaname = 'public' AND (tablename, attname) IN (('approved_contacts', 'occurred_on'), ('submissions', 'occurred_on'), ('submissions', 'id'))")"
log "generated in ${GEN_SECS}s (load $GEN_LOAD_BEFORE -> $GEN_LOAD_AFTER): database $DB_SIZE; $COUNTS"

# The report cells, from the facts just generated.
REBUILD_LOAD="$(load)"
REBUILD_START=$(date +%s.%N)
"$DONGHANH" rebuild-reports >"$TMP/rebuild.log" 2>&1 || { cat "$TMP/rebuild.log" >&2; die "rebuild-reports failed"; }
REBUILD_SECS="$(awk -v a="$REBUILD_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
CELLS="$(psql_q bench "SELECT format('%s cells (%s reach day, %s reach month, %s first day, %s first month), %s',
  count(*), count(*) FILTER (WHERE kind = 'reach' AND grain = 'day'), count(*) FILTER (WHERE kind = 'reach' AND grain = 'month'),
  count(*) FILTER (WHERE kind = 'first' AND grain = 'day'), count(*) FILTER (WHERE kind = 'first' AND grain = 'month'),
  pg_size_pretty(pg_total_relation_size('report_cells'))) FROM report_cells")"
log "report cells rebuilt in ${REBUILD_SECS}s (load $REBUILD_LOAD): $CELLS"

# A restart empties shared_buffers, so the first report run below is cold for
# PostgreSQL (the kernel's page cache is left alone: other work shares this machine).
pg_stop || die "PostgreSQL did not stop"
pg_start -c "shared_buffers=$SHARED_BUFFERS"
log "PostgreSQL restarted (shared_buffers empty)"

# --- the server --------------------------------------------------------------
start_donghanh

create_admin bench-admin
TOKEN="$(login bench-admin "$ADMIN_PASSWORD")"
CITY_ID="$(api GET '/api/v1/org-units?limit=200' "$TOKEN" | jq -er '.items[] | select(.code == "01") | .id')" \
  || die "no org unit 01 (Hà Nội) in GET /api/v1/org-units"
CITY_PATH="$(psql_q bench "SELECT path FROM org_units WHERE id = '$CITY_ID'")"
DISTRICT_ID="$(api GET '/api/v1/org-units?limit=200' "$TOKEN" | jq -er '.items[] | select(.code == "006") | .id')" \
  || die "no org unit 006 (Đống Đa) in GET /api/v1/org-units"
log "admin logged in; city 01 is $CITY_ID"

# --- indicators report -------------------------------------------------------
stats() { # numbers...: "min / median / max"
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.3f / %.3f / %.3f", v[1], m, v[NR] }'
}
REPORT_PATH="/api/v1/reports/indicators?org_unit=$CITY_ID&period=2024"
report_run() { # extra-query out-file: prints "code seconds"
  curl -s -o "$2" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE$REPORT_PATH$1" \
    || die "GET $REPORT_PATH$1: curl failed"
}
check_json() { # file: people_reached of the city, or dies
  local pr
  pr="$(jq -er '.unit.indicators[] | select(.indicator == "people_reached") | .value // 0' "$1")" \
    || die "the report has no people_reached: $(head -c 500 "$1")"
  [ "$pr" -gt 0 ] || die "the report counts no people reached"
  printf '%s' "$pr"
}

JSON_TIMES=()
JSON_LOADS=()
log "indicators report (JSON): 1 cold + $WARM_RUNS warm runs"
JSON_LOADS+=("$(load)")
read -r code secs <<<"$(report_run "" "$TMP/report.json")"
[ "$code" = 200 ] || die "the report answered $code: $(head -c 500 "$TMP/report.json")"
COLD_SECS="$secs"
COLD_LOAD="${JSON_LOADS[0]}"
PEOPLE_REACHED="$(check_json "$TMP/report.json")"
log "  cold: ${secs}s (load $COLD_LOAD), people_reached $PEOPLE_REACHED"
for i in $(seq 1 "$WARM_RUNS"); do
  l="$(load)"
  read -r code secs <<<"$(report_run "" "$TMP/report.json")"
  [ "$code" = 200 ] || die "the report answered $code: $(head -c 500 "$TMP/report.json")"
  check_json "$TMP/report.json" >/dev/null
  JSON_TIMES+=("$secs"); JSON_LOADS+=("$l")
  log "  warm $i: ${secs}s (load $l)"
done
REPORT_JSON_BYTES="$(wc -c <"$TMP/report.json")"
CHILDREN="$(jq -r '.children | length' "$TMP/report.json")"
FIGURES="$(jq -r '[.unit.indicators[] | select(.indicator | IN("people_reached", "people_new", "people_returning", "contact_events", "referrals_issued.hiv_test", "referrals_completed.hiv_test", "group_sessions", "support.loan")) | "\(.indicator) \(.value // "suppressed")"] | join(", ")' "$TMP/report.json")"

CSV_TIMES=()
CSV_LOADS=()
log "indicators report (CSV): $WARM_RUNS warm runs"
for i in $(seq 1 "$WARM_RUNS"); do
  l="$(load)"
  read -r code secs <<<"$(report_run "&format=csv" "$TMP/report.csv")"
  [ "$code" = 200 ] || die "the CSV report answered $code: $(head -c 500 "$TMP/report.csv")"
  CSV_TIMES+=("$secs"); CSV_LOADS+=("$l")
  log "  csv $i: ${secs}s (load $l)"
done
# For scale: one run each over a quarter of the city and over a year of one district.
other_run() { # query: prints "seconds load"
  local l code secs
  l="$(load)"
  read -r code secs <<<"$(curl -s -o "$TMP/other.json" -w '%{http_code} %{time_total}' \
    -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/reports/indicators?$1")"
  [ "$code" = 200 ] || die "GET /api/v1/reports/indicators?$1 answered $code: $(head -c 500 "$TMP/other.json")"
  check_json "$TMP/other.json" >/dev/null
  printf '%s %s' "$secs" "${l%% *}"
}
read -r QUARTER_SECS QUARTER_LOAD <<<"$(other_run "org_unit=$CITY_ID&period=2024Q3")"
log "  city 2024Q3: ${QUARTER_SECS}s (load $QUARTER_LOAD)"
read -r DISTRICT_SECS DISTRICT_LOAD <<<"$(other_run "org_unit=$DISTRICT_ID&period=2024")"
log "  district 006 2024: ${DISTRICT_SECS}s (load $DISTRICT_LOAD)"
CSV_LINES="$(wc -l <"$TMP/report.csv")"
EXPECTED_CSV_LINES=$(( 1 + (1 + CHILDREN) * $(jq -r '.unit.indicators | length' "$TMP/report.json") ))
[ "$CSV_LINES" -eq "$EXPECTED_CSV_LINES" ] || die "the CSV report has $CSV_LINES lines, expected $EXPECTED_CSV_LINES"

# The city figures against counts made with SQL straight from the facts (every
# generated unit is under the city, and all of 2024 is the period).
SQL_FIGURES="$(psql_q bench "SELECT format('people_reached %s, people_new %s, contact_events %s, referrals_issued.hiv_test %s, referrals_completed.hiv_test %s, group_sessions %s',
  (SELECT count(DISTINCT client_id) FROM approved_contacts WHERE occurred_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'),
  (SELECT count(*) FROM client_keys ck WHERE ck.first_approved_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'
      AND EXISTS (SELECT 1 FROM approved_contacts ac WHERE ac.client_id = ck.id AND ac.occurred_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31')),
  (SELECT count(*) FROM approved_contacts WHERE occurred_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'),
  (SELECT count(*) FROM referrals r JOIN submissions s ON s.id = r.submission_id WHERE s.status = 'approved' AND r.service = 'hiv_test' AND r.issued_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'),
  (SELECT count(*) FROM referrals r JOIN submissions s ON s.id = r.submission_id WHERE s.status = 'approved' AND r.service = 'hiv_test' AND r.status = 'completed' AND r.issued_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'),
  (SELECT count(*) FROM submissions WHERE status = 'approved' AND kind = 'group_session' AND occurred_on BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'))")"
report_figures() { # json file: the same figures as the report gives them
  jq -r '.unit.indicators | map({(.indicator): (.value // "suppressed")}) | add
    | "people_reached \(.people_reached), people_new \(.people_new), contact_events \(.contact_events), referrals_issued.hiv_test \(."referrals_issued.hiv_test"), referrals_completed.hiv_test \(."referrals_completed.hiv_test"), group_sessions \(.group_sessions)"' "$1"
}
REPORT_FIGURES="$(report_figures "$TMP/report.json")"
[ "$REPORT_FIGURES" = "$SQL_FIGURES" ] || die "the report says '$REPORT_FIGURES', SQL on the facts says '$SQL_FIGURES'"
log "the report's city figures equal SQL counts on the facts: $SQL_FIGURES"

# What keeping the cells costs a review at this size: an admin reopens approved visits
# and approves them again (each recomputes a district-day cell of ~700 contacts, its
# month cell from ~30 day cells, and moves first days); then the figures must be the same.
REVIEW_IDS="$(psql_q bench "SELECT id FROM submissions WHERE kind = 'outreach_visit' AND status = 'approved' ORDER BY md5(id::text) LIMIT 20")"
REOPEN_TIMES=()
APPROVE_TIMES=()
REVIEW_LOAD="$(load)"
for id in $REVIEW_IDS; do
  read -r code secs <<<"$(curl -s -o "$TMP/review.out" -w '%{http_code} %{time_total}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"comment": "bench: reopened to measure the review path"}' "$BASE/api/v1/submissions/$id/reopen")"
  [ "$code" = 200 ] || die "reopen $id answered $code: $(head -c 300 "$TMP/review.out")"
  REOPEN_TIMES+=("$secs")
  read -r code secs <<<"$(curl -s -o "$TMP/review.out" -w '%{http_code} %{time_total}' -X POST \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary '{"decision": "approve"}' "$BASE/api/v1/submissions/$id/review")"
  [ "$code" = 200 ] || die "approve $id answered $code: $(head -c 300 "$TMP/review.out")"
  APPROVE_TIMES+=("$secs")
done
log "reopen: $(stats "${REOPEN_TIMES[@]}") s, approve again: $(stats "${APPROVE_TIMES[@]}") s (min / median / max of ${#APPROVE_TIMES[@]}, load $REVIEW_LOAD)"
read -r code secs <<<"$(report_run "" "$TMP/report-after.json")"
[ "$code" = 200 ] || die "the report answered $code after the reviews"
AFTER_FIGURES="$(report_figures "$TMP/report-after.json")"
[ "$AFTER_FIGURES" = "$SQL_FIGURES" ] || die "after reopening and approving again the report says '$AFTER_FIGURES', SQL said '$SQL_FIGURES'"
log "figures unchanged after the reviews (report ${secs}s)"

# The cells query of the report as rollup.rs builds it (the whole year: twelve month
# cells per unit), and the live count over approved_contacts the cells replaced.
explain() { # name sql
  local l
  l="$(load)"
  psql_q bench "EXPLAIN (ANALYZE, BUFFERS) $2" >"$TMP/plan-$1.txt" || die "EXPLAIN $1 failed"
  printf '%s\n' "$l" >"$TMP/plan-$1.load"
}
log "EXPLAIN (ANALYZE, BUFFERS) of the cells query and of the live count it replaced"
explain cells "SELECT org_path, clients, figures FROM report_cells WHERE kind = 'reach' AND org_path LIKE '${CITY_PATH}%' AND ((grain = 'month' AND starts_on >= DATE '2024-01-01' AND starts_on <= DATE '2024-12-01'))"
explain live "SELECT COUNT(*) AS events, COUNT(DISTINCT ac.client_id) AS people FROM approved_contacts ac WHERE ac.org_path LIKE '${CITY_PATH}%' AND ac.occurred_on >= DATE '2024-01-01' AND ac.occurred_on <= DATE '2024-12-31'"
plan_ms() { sed -n 's/^Execution Time: \([0-9.]*\) ms$/\1/p' "$TMP/plan-$1.txt"; }
# The top of a plan: its nodes down to the given depth, with actual times and rows.
plan_top() { # name lines
  grep -E '^( *->  |[A-Z])' "$TMP/plan-$1.txt" | grep -vE '^(Planning|Execution)' | head -n "$2" \
    | sed -E 's/ \(cost=[^)]*\)//'
}

# --- export ------------------------------------------------------------------
# The window of days from 2024-03-01 whose approved submissions in the city first reach
# BENCH_EXPORT_ROWS, counted the way the export filters (org path prefix, status, days).
read -r EXPORT_TO EXPORT_COUNT <<<"$(psql_q bench "SELECT d, n FROM (
    SELECT occurred_on AS d, sum(count(*)) OVER (ORDER BY occurred_on) AS n FROM submissions
     WHERE org_path LIKE '${CITY_PATH}%' AND status = 'approved' AND occurred_on >= DATE '2024-03-01'
     GROUP BY occurred_on) x
  WHERE n >= $EXPORT_ROWS ORDER BY d LIMIT 1" | tr '|' ' ')"
[ -n "${EXPORT_COUNT:-}" ] || die "fewer than $EXPORT_ROWS submissions from 2024-03-01 on"
EXPORT_QS="org_unit_id=$CITY_ID&status=approved&from=2024-03-01&to=$EXPORT_TO"
EXPORT_PATH="/api/v1/exports/submissions?$EXPORT_QS"
log "export: $EXPORT_COUNT submissions match $EXPORT_QS"
# EXPLAIN of the first batch as sea-orm sends it (later batches add id > last id).
explain export-batch "SELECT * FROM submissions WHERE org_path LIKE '${CITY_PATH}%' AND org_path LIKE '${CITY_PATH}%' AND status = 'approved' AND occurred_on >= DATE '2024-03-01' AND occurred_on <= DATE '$EXPORT_TO' ORDER BY id ASC LIMIT 1000"

rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || true; }
sample_rss() { # file: one VmRSS (kB) per line every 0.2 s until killed
  local v
  while :; do
    v="$(rss_kb "$SERVER_PID" VmRSS)"
    [ -n "$v" ] && printf '%s\n' "$v" >>"$1"
    sleep 0.2
  done
}
RSS_BEFORE_KB="$(rss_kb "$SERVER_PID" VmRSS)"
: >"$TMP/rss.samples"
sample_rss "$TMP/rss.samples" &
SAMPLER_PID=$!
EXPORT_LOAD="$(load)"
log "export: streaming to /dev/null (load $EXPORT_LOAD)"
read -r EXPORT_CODE EXPORT_SECS EXPORT_BYTES EXPORT_TTFB <<<"$(curl -sS -o /dev/null \
  -w '%{http_code} %{time_total} %{size_download} %{time_starttransfer}' \
  -H "Authorization: Bearer $TOKEN" "$BASE$EXPORT_PATH")" || die "the export broke off (curl failed)"
stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
RSS_AFTER_KB="$(rss_kb "$SERVER_PID" VmRSS)"
[ "$EXPORT_CODE" = 200 ] || die "the export answered $EXPORT_CODE"
RSS_PEAK_KB="$(sort -n "$TMP/rss.samples" | tail -n 1)"
RSS_SAMPLES="$(wc -l <"$TMP/rss.samples")"
log "export: ${EXPORT_SECS}s, $EXPORT_BYTES bytes; RSS ${RSS_BEFORE_KB} kB before, peak ${RSS_PEAK_KB} kB ($RSS_SAMPLES samples)"

# A second pass counts the rows (one line each: answers are JSON without raw newlines).
EXPORT2_LOAD="$(load)"
read -r EXPORT2_CODE EXPORT2_SECS <<<"$(curl -sS -o >(wc -l >"$TMP/export.lines") \
  -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TOKEN" "$BASE$EXPORT_PATH")" \
  || die "the export broke off (curl failed)"
for _ in $(seq 1 50); do [ -s "$TMP/export.lines" ] && break; sleep 0.1; done
[ "$EXPORT2_CODE" = 200 ] || die "the export answered $EXPORT2_CODE"
EXPORT_LINES="$(cat "$TMP/export.lines")"
EXPORT_ROWS_GOT=$(( EXPORT_LINES - 1 ))
[ "$EXPORT_ROWS_GOT" -eq "$EXPORT_COUNT" ] || die "the export has $EXPORT_ROWS_GOT rows, SQL counts $EXPORT_COUNT"
log "export (counting pass): ${EXPORT2_SECS}s, $EXPORT_ROWS_GOT rows (load $EXPORT2_LOAD)"

HWM_KB="$(rss_kb "$SERVER_PID" VmHWM)"
LOAD_AT_END="$(load)"
WARNINGS="$(grep -cE ' (WARN|ERROR) ' "$TMP/server.log" || true)"

# --- report ------------------------------------------------------------------
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
MODEL="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
WARM_STATS="$(stats "${JSON_TIMES[@]}")"
WARM_MEDIAN="$(printf '%s' "$WARM_STATS" | awk -F' / ' '{print $2}')"
VERDICT="$(awk -v m="$WARM_MEDIAN" -v t="$TARGET_SECS" 'BEGIN {
  if (m < t) printf "meets the %d s target", t; else printf "misses the %d s target by %.1f s (%.1fx)", t, m - t, m / t }')"
RUN_SECS=$(( SECONDS - SCRIPT_START ))
{
cat <<EOF

## Reports benchmark ($(date -u +%Y-%m-%d))

- machine: $(nproc) cores, ${MODEL:-unknown CPU}, $(awk '/^MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo)
- PostgreSQL $PG_VERSION ($PG_SETTINGS)
- load average (1, 5, 15 min): $LOAD_AT_START at start, $GEN_LOAD_BEFORE before generation, $GEN_LOAD_AFTER after it, $LOAD_AT_END at the end
- data: $COUNTS
- generated in ${GEN_SECS} s with SQL (build ${BUILD_SECS} s); database $DB_SIZE; largest tables: $TABLE_SIZES
- physical order (pg_stats correlation): $CORRELATION
- script ran ${RUN_SECS} s in all

### Indicators report, city 01, period 2024 (31 units: the city and $CHILDREN districts)

| request | runs | seconds min / median / max | load average at the runs (1 min) |
| --- | ---: | ---: | --- |
| JSON, cold (PostgreSQL just restarted) | 1 | $COLD_SECS | $COLD_LOAD |
| JSON, warm | $WARM_RUNS | $WARM_STATS | $(printf '%s\n' "${JSON_LOADS[@]:1}" | cut -d' ' -f1 | paste -sd' ') |
| CSV, warm | $WARM_RUNS | $(stats "${CSV_TIMES[@]}") | $(printf '%s\n' "${CSV_LOADS[@]}" | cut -d' ' -f1 | paste -sd' ') |
| JSON, city, 2024Q3 (for scale) | 1 | $QUARTER_SECS | $QUARTER_LOAD |
| JSON, district 006 (Đống Đa), 2024 (for scale) | 1 | $DISTRICT_SECS | $DISTRICT_LOAD |

- warm median $WARM_MEDIAN s: $VERDICT
- answer: 200, $REPORT_JSON_BYTES bytes of JSON, $CSV_LINES CSV lines; city figures: $FIGURES

- the city figures equal counts made with SQL on the facts: $SQL_FIGURES

### Keeping the cells

- \`donghanh rebuild-reports\` from the generated facts: ${REBUILD_SECS} s (load $REBUILD_LOAD); $CELLS
- an admin reopening an approved visit: $(stats "${REOPEN_TIMES[@]}") s; approving it again: $(stats "${APPROVE_TIMES[@]}") s (min / median / max of ${#APPROVE_TIMES[@]}, load $REVIEW_LOAD); the figures after are unchanged

### Where the time goes: EXPLAIN (ANALYZE, BUFFERS)

| query | execution ms | load average at the run |
| --- | ---: | --- |
| report cells of the city, 2024 (what the report reads) | $(plan_ms cells) | $(cat "$TMP/plan-cells.load") |
| the same people and events counted live from approved_contacts (what it no longer does) | $(plan_ms live) | $(cat "$TMP/plan-live.load") |
| export, first batch of 1000 | $(plan_ms export-batch) | $(cat "$TMP/plan-export-batch.load") |

\`\`\`
$(plan_top cells 8)
\`\`\`

### Submissions export ($EXPORT_QS)

- $EXPORT_COUNT submissions match (SQL); the export streamed $EXPORT_ROWS_GOT rows, $EXPORT_BYTES bytes ($(awk -v b="$EXPORT_BYTES" 'BEGIN { printf "%.1f MB", b / 1048576 }'))
- time: ${EXPORT_SECS} s to /dev/null (first byte after ${EXPORT_TTFB} s; load $EXPORT_LOAD); ${EXPORT2_SECS} s again while counting lines (load $EXPORT2_LOAD)
- server RSS: $(mb "${RSS_BEFORE_KB:-0}") MB before, $(mb "${RSS_PEAK_KB:-0}") MB peak during ($RSS_SAMPLES samples every 0.2 s), $(mb "${RSS_AFTER_KB:-0}") MB after; VmHWM $(mb "${HWM_KB:-0}") MB at the end
- server log: $WARNINGS WARN/ERROR lines
EOF
} | tee "$TMP/summary.md"
