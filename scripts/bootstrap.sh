# Sourced by demo.sh and test.sh: a project-local virtualenv with what the project needs.
# Usage: . scripts/bootstrap.sh EXTRA   (EXTRA: demo or test)
set -euo pipefail
extra="${1:-demo}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "cloudshift needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv" >&2
  if ! "$py" -m venv "$venv" 2>/dev/null; then
    # Debian/Ubuntu ship venv separately; fall back to virtualenv from pip.
    rm -rf "$venv"
    "$py" -m pip install --quiet --user virtualenv >&2
    "$py" -m virtualenv --quiet "$venv" >&2
  fi
fi
stamp="$venv/.cloudshift-$extra-$(cat "$root/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing cloudshift[$extra] into .venv (once)" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[$extra]" >&2
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
