#!/usr/bin/env bash
# The second README command (and CI's, through .ci/run): install, add the test dependencies, lint and check
# the formatting, test.
#
# The package is reinstalled editable here so the tests exercise the working tree, not the last build.
# Arguments go to pytest (e.g. `bash scripts/test.sh -k demo -x`); the exit code is pytest's.
# With CI=true, tests needing PostgreSQL or MariaDB fail instead of skipping when the server is down.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export INTEGRATOR_VENV="${INTEGRATOR_VENV:-$REPO/.venv}"
VENV="$INTEGRATOR_VENV"
bash scripts/install.sh

printf '==> installing test dependencies (editable)\n'
"$VENV/bin/python" -m pip install -q -e '.[test]'

printf '==> ruff check . && ruff format --check .\n'
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

printf '==> pytest %s\n' "$*"
# `python -m` puts the repo root on sys.path, which the editable install does not: `tests.…` imports resolve.
exec "$VENV/bin/python" -m pytest "$@"
