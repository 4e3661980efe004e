#!/usr/bin/env bash
# deploy/chdb/install.sh: creates a Python virtual environment at
# $CUSTOS_RUN_DIR/venv with chDB 4.4.0 (current ClickHouse engine, in process)
# and jsonschema, for the tests and tools that check modern ClickHouse syntax
# or validate JSON against the event schema. Idempotent: when the venv already
# has the pinned versions, nothing is installed.
#
# Downloads are kept as wheels in $CUSTOS_WHEEL_CACHE (default
# ~/.cache/custos/wheels) and installed from there with --no-index, so a
# rebuilt venv (e.g. a fresh work tree) fetches nothing. pip's own HTTP cache
# is not enough: it only stores responses that carry caching headers, and a
# registry mirror may send none (the case on our dev machines).
#
# Prints the venv's python path on stdout as its LAST line; everything else
# goes to stderr. Typical use:
#   py="$(deploy/chdb/install.sh | tail -n1)"
#   "$py" -c 'import chdb; print(chdb.query("SELECT version()"))'
#
# Env:
#   CUSTOS_PYTHON   interpreter that creates the venv (default python3)
#   CUSTOS_RUN_DIR  (default <repo>/deploy/.run)
#   CUSTOS_WHEEL_CACHE  wheel cache (default ${XDG_CACHE_HOME:-~/.cache}/custos/wheels)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

take_lock venv
venv="${CUSTOS_RUN_DIR}/venv"
py="${venv}/bin/python"
pins=("chdb==4.4.0" "jsonschema>=4,<5")
base_python="${CUSTOS_PYTHON:-python3}"
wheels="${CUSTOS_WHEEL_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/custos/wheels}"

installed() {
  "$py" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("chdb") == "4.4.0"
assert md.version("jsonschema").split(".")[0] == "4"
PY
}

if [[ -x "$py" ]] && installed; then
  log "chDB 4.4.0 already installed in ${venv}"
  printf '%s\n' "$py"
  exit 0
fi

if ! command -v "$base_python" >/dev/null 2>&1; then
  apt_install python3 python3-venv
  base_python=python3
fi

# A venv whose interpreter no longer runs (e.g. the base python moved) is rebuilt.
if [[ -e "$venv" ]] && ! "$py" -c 'import sys' >/dev/null 2>&1; then
  log "removing broken venv ${venv}"
  rm -rf "$venv"
fi

if [[ ! -x "$py" ]]; then
  log "creating venv ${venv} with $(command -v "$base_python")"
  if ! "$base_python" -m venv "$venv" >&2; then
    # Debian's python3 ships venv without ensurepip unless python3-venv is installed.
    rm -rf "$venv"
    apt_install python3-venv
    "$base_python" -m venv "$venv" >&2 || die "python3 -m venv ${venv} failed"
  fi
fi

pip_install_cached() {
  "$py" -m pip install --disable-pip-version-check -q --no-index --find-links "$wheels" "${pins[@]}" >&2
}
mkdir -p "$wheels"
if pip_install_cached 2>/dev/null; then
  log "installed ${pins[*]} into ${venv} from ${wheels} (nothing fetched)"
else
  log "fetching ${pins[*]} and their dependencies into ${wheels}"
  "$py" -m pip wheel --disable-pip-version-check -q -w "$wheels" "${pins[@]}" >&2 ||
    die "pip wheel ${pins[*]} failed (is PyPI reachable? see output above)"
  log "pip install ${pins[*]} into ${venv} from ${wheels}"
  pip_install_cached || die "pip install ${pins[*]} from ${wheels} failed (see output above)"
fi
installed || die "chdb 4.4.0 / jsonschema 4 not importable from ${venv} after pip install"
"$py" -c 'import chdb' >&2 || die "import chdb fails in ${venv}"
log "chDB ready: ${py}"
printf '%s\n' "$py"
