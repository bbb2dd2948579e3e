#!/usr/bin/env bash
# Benchmarks side by side with the peer tools; results go to docs/benchmarks.md.
#   scripts/bench.sh [--quick] [--no-doc] [--cases a,b]   object storage vs rclone
#   scripts/bench.sh --db                                   PostgreSQL vs pgcopydb & co.
#                                                           (bench/db/results*.md)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh test
if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
  mkdir -p .tools && npm install --silent --no-audit --no-fund --prefix .tools azurite@3.35.0 >&2
fi
need=()
command -v rclone >/dev/null || need+=(rclone)
[ -x /usr/bin/time ] || need+=(time)
if [ "${1:-}" = "--db" ]; then
  command -v pgcopydb >/dev/null || need+=(pgcopydb)
  command -v pgbench >/dev/null || need+=(postgresql-contrib)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} (apt)" >&2
  apt-get update >&2 && apt-get install -y "${need[@]}" >&2
fi
if [ "${1:-}" = "--db" ]; then
  shift
  # pgbench as the issue defines it (one 2 M-row table), then the same rows as 8 tables.
  python bench/db/bench.py --scale 20 --rounds 5 "$@"
  exec python bench/db/bench.py --scale 20 --rounds 3 --split 8 --copy-only \
    --out bench/db/results-split8.md "$@"
fi
exec python bench/run.py "$@"
