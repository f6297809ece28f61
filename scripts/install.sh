#!/usr/bin/env bash
# Install integrator on Debian 12: the ODBC driver manager and drivers (SQLite, PostgreSQL, MariaDB), a
# virtual environment at the repository root (.venv) and the package itself (a plain, non-editable install).
#
# Idempotent: a rerun skips apt when every package is present and reuses a working .venv.
# Runs as root; as another user it uses sudo for apt. Environment:
#   INTEGRATOR_PYTHON=python3.12  the interpreter for the venv (default: python3, which must be >= 3.11)
#   INTEGRATOR_VENV=DIR           where to put the venv (default: <repo>/.venv)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${INTEGRATOR_VENV:-$REPO/.venv}"
PYTHON="${INTEGRATOR_PYTHON:-python3}"

APT_PACKAGES=(python3 python3-venv python3-pip unixodbc unixodbc-dev libsqliteodbc odbc-postgresql odbc-mariadb)

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        # dpkg -s also lists removed-but-configured packages; only "install ok installed" counts.
        # shellcheck disable=SC2016 # ${Status} is dpkg-query's field, not a shell variable
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            printf '%s\n' "$pkg"
        fi
    done
}

install_apt_packages() {
    command -v dpkg-query >/dev/null 2>&1 || die "this script supports Debian/Ubuntu (dpkg and apt) only"
    local wanted=("${APT_PACKAGES[@]}")
    # pyodbc publishes manylinux wheels for these; elsewhere pip compiles it against unixodbc-dev.
    case "$(uname -m)" in
        x86_64 | aarch64) ;;
        *) wanted+=(gcc g++ python3-dev) ;;
    esac
    local missing
    mapfile -t missing < <(missing_packages "${wanted[@]}")
    if [ "${#missing[@]}" -eq 0 ]; then
        say "apt packages already installed: ${wanted[*]}"
        return
    fi
    say "installing apt packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The driver packages register themselves in /etc/odbcinst.ini from their postinst; a minimal image (or an
# odbcinst.ini restored from elsewhere) can lack the entry, so check by name and register from the template.
register_odbc_driver() {
    local name="$1" template="$2"
    if odbcinst -q -d -n "$name" >/dev/null 2>&1; then
        return
    fi
    [ -f "$template" ] || die "ODBC driver '$name' is not registered and $template is missing"
    say "registering ODBC driver '$name' from $template"
    as_root odbcinst -i -d -f "$template" >/dev/null
    odbcinst -q -d -n "$name" >/dev/null 2>&1 || die "ODBC driver '$name' still not registered"
}

check_odbc_drivers() {
    register_odbc_driver "SQLite3" /usr/share/sqliteodbc/unixodbc.ini
    register_odbc_driver "PostgreSQL Unicode" /usr/share/psqlodbc/odbcinst.ini.template
    register_odbc_driver "MariaDB Unicode" /usr/share/odbc-mariadb/odbcinst.ini.template
    say "ODBC drivers: $(odbcinst -q -d | tr -d '[]' | paste -sd, - | sed 's/,/, /g')"
}

python_ok() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

make_venv() {
    if [ -x "$VENV/bin/python" ] && python_ok "$VENV/bin/python" && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        say "reusing $VENV ($("$VENV/bin/python" --version))"
    else
        command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
        python_ok "$PYTHON" || die "$PYTHON is $("$PYTHON" --version 2>&1); integrator needs Python >= 3.11"
        if [ -e "$VENV" ]; then
            # Only ever delete something that is recognisably a (broken) venv, never an arbitrary VENV path.
            [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists but is not a virtual environment; move it away"
            say "replacing the unusable venv at $VENV"
            rm -rf "$VENV"
        fi
        say "creating $VENV with $("$PYTHON" --version)"
        "$PYTHON" -m venv "$VENV"
    fi
    # A newer pip is welcome, not required: an index that cannot be reached must not stop a rerun here.
    "$VENV/bin/python" -m pip install -q --upgrade pip || say "could not upgrade pip; going on with the venv's own"
}

install_package() {
    say "installing integrator from $REPO into $VENV"
    # setuptools reuses build/lib between builds and would ship files since deleted from the source.
    rm -rf "$REPO/build"
    # Non-editable on purpose: proves the wheel carries everything (templates, migrations, presets).
    "$VENV/bin/python" -m pip install -q "$REPO"
    "$VENV/bin/integrator" --version
}

install_apt_packages
check_odbc_drivers
make_venv
install_package
say "done: $VENV/bin/integrator"
