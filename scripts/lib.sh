# Shared helpers for scripts/*. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/trellis}"

log() { printf '[trellis] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Run as root directly, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root (or sudo) to run: $*"; fi
}

# Parse DATABASE_URL into PGHOST_/PGPORT_/PGUSER_/PGDB_ (postgres://user[:pw]@host[:port]/db).
parse_db_url() {
  local rest="${DATABASE_URL#*://}"
  local userinfo="${rest%%@*}"; rest="${rest#*@}"
  local hostport="${rest%%/*}"; local db="${rest#*/}"; db="${db%%\?*}"
  PGUSER_="${userinfo%%:*}"
  PGHOST_="${hostport%%:*}"
  if [[ "$hostport" == *:* ]]; then PGPORT_="${hostport##*:}"; else PGPORT_=5432; fi
  PGDB_="$db"
}

psql_admin() {
  parse_db_url
  psql -h "$PGHOST_" -p "$PGPORT_" -U "$PGUSER_" -d postgres -v ON_ERROR_STOP=1 -tA "$@"
}

# Secrets of a local deployment: made once (32 random bytes each, base64) into the
# git-ignored .trellis/ folder and exported unless the environment already sets them. In
# production set TRELLIS_JWT_SECRET, TRELLIS_OPS_TOKEN and TRELLIS_MASTER_KEY yourself (README,
# docs/security.md, docs/auditing.md).
ensure_secrets() {
  mkdir -p "$ROOT/.trellis"
  local name file
  for name in TRELLIS_JWT_SECRET TRELLIS_OPS_TOKEN TRELLIS_MASTER_KEY; do
    file="$ROOT/.trellis/$(echo "$name" | tr 'A-Z_' 'a-z-')"
    if [ -z "${!name:-}" ]; then
      if [ ! -s "$file" ]; then
        (umask 077; head -c 32 /dev/urandom | base64 | tr -d '\n' > "$file")
        log "generated $name into ${file#"$ROOT"/}"
      fi
      export "$name=$(cat "$file")"
    fi
  done
}

# The S3-compatible test server (moto, installed by scripts/setup into .trellis/moto-venv):
# started in the background on 127.0.0.1:${TRELLIS_S3_PORT:-5055} unless it answers already,
# and left running (like PostgreSQL). Exports TRELLIS_S3_ENDPOINT.
ensure_s3() {
  local port="${TRELLIS_S3_PORT:-5055}"
  export TRELLIS_S3_ENDPOINT="${TRELLIS_S3_ENDPOINT:-http://127.0.0.1:$port}"
  if curl -s -o /dev/null "$TRELLIS_S3_ENDPOINT/"; then return 0; fi
  mkdir -p "$ROOT/.trellis"
  log "starting moto (S3) on $TRELLIS_S3_ENDPOINT"
  nohup setsid "$ROOT/.trellis/moto-venv/bin/moto_server" -H 127.0.0.1 -p "$port" \
    > "$ROOT/.trellis/moto.log" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do curl -s -o /dev/null "$TRELLIS_S3_ENDPOINT/" && return 0; sleep 0.2; done
  die "moto did not come up on $TRELLIS_S3_ENDPOINT (see .trellis/moto.log)"
}
