#!/usr/bin/env bash
# The first README command: install everything, write the demo ERP and sync it end to end on the embedded
# default (SQLite ERP read through the SQLite3 ODBC driver, SQLite store, mail written as files).
#
# Rerunnable: the demo in ./demo is rewritten from scratch each time (`integrator demo --force`).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

export INTEGRATOR_VENV="${INTEGRATOR_VENV:-$REPO/.venv}"
VENV="$INTEGRATOR_VENV"
bash scripts/install.sh
INTEGRATOR="$VENV/bin/integrator"
# Tables go to a file below, and into a pipe or a log when the script's output does: give them the terminal's
# width when there is one, else a wide one instead of the default 80.
if [ -t 1 ]; then
    export COLUMNS="${COLUMNS:-$(tput cols 2>/dev/null || echo 120)}"
else
    export COLUMNS="${COLUMNS:-200}"
fi

printf '\n==> writing the demo ERP\n'
"$INTEGRATOR" demo demo --force

printf '\n==> integrator sync --config demo/config.toml\n'
"$INTEGRATOR" sync --config demo/config.toml

printf '\n==> integrator accounts list --config demo/config.toml (first lines)\n'
# Through a file rather than `| head`: head closing the pipe early would break the listing mid-write.
"$INTEGRATOR" accounts list --config demo/config.toml >demo/accounts.txt
head -n 15 demo/accounts.txt
printf '... %s lines in all: demo/accounts.txt\n' "$(wc -l <demo/accounts.txt)"

mails=$(find demo/mail -name '*.eml' 2>/dev/null | wc -l)
cat <<MSG

Done. The activation mails ($mails) are files in $REPO/demo/mail, one .eml per mail.
Try next:
  $INTEGRATOR sync --config demo/config.toml           # again: nothing changes, nothing is written
  $INTEGRATOR accounts list --config demo/config.toml --json
  $INTEGRATOR --help
MSG
