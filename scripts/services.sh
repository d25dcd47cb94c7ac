# Shared by scripts/test.sh and the benchmark scripts: free loopback ports and a
# throwaway single-node Garage (S3). Source it after setting CACHE and defining `log`.
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
