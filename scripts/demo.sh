#!/usr/bin/env bash
# The demo: an S3 bucket moves to Google Cloud Storage on embedded servers, verified.
# Installs what it needs into .venv on first run. Extra arguments go to `cloudshift demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh demo
exec cloudshift demo "$@"
