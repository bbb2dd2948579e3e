#!/usr/bin/env bash
# The test suite: lint, types, then pytest against real local servers (moto, Azurite,
# gcp-storage-emulator). Installs what it needs on first run. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh test

azurite_version="3.35.0"
if [ ! -x .tools/node_modules/.bin/azurite-blob ] \
   || ! grep -q "\"version\": \"$azurite_version\"" .tools/node_modules/azurite/package.json; then
  if ! command -v npm >/dev/null; then
    echo "npm is needed for Azurite (the Azure Blob emulator): apt-get install -y nodejs npm" >&2
    exit 2
  fi
  echo "==> installing Azurite $azurite_version into .tools/ (once)" >&2
  mkdir -p .tools
  npm install --silent --no-audit --no-fund --prefix .tools "azurite@$azurite_version" >&2
fi

if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "==> installing PostgreSQL (initdb, pg_ctl, pg_dump) for the db tests (once)" >&2
  apt-get update >&2 && apt-get install -y postgresql >&2
fi

echo "==> ruff" >&2
ruff check src tests
echo "==> mypy" >&2
mypy src
echo "==> pytest" >&2
exec python -m pytest "$@"
