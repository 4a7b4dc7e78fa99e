# shellcheck shell=bash
# Cached Python virtual environments for the scripts' tools; sourced, not
# run. Gives:
#   $cache                        ${XDG_CACHE_HOME:-~/.cache}/users-api-ci
#   venv NAME VERSION             prints the bin directory of a venv holding
#                                 NAME==VERSION, creating it if needed
#   venv_requirements NAME FILE   the same for the pins of requirements FILE
#                                 (installed --no-deps: FILE pins them all),
#                                 the venv named after FILE's contents, so a
#                                 changed pin means a fresh venv

cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/users-api-ci"
mkdir -p "$cache"

# ensure_venv DIR PIP-ARGUMENTS...: DIR's bin directory, after installing
# PIP-ARGUMENTS into it unless that is done. A venv counts only once its
# install finished (the marker) and its python still runs, so an
# interrupted install or a removed interpreter means a fresh venv, not a
# broken one.
ensure_venv() {
  local dir="$1"
  shift
  if [ ! -e "$dir/.installed" ] || ! "$dir/bin/python" -c '' 2>/dev/null; then
    echo "installing $* into $dir" >&2
    rm -rf "$dir"
    # Chained: in $(...) a failed step would not stop the function.
    python3 -m venv "$dir" &&
      "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 &&
      touch "$dir/.installed" || return 1
  fi
  echo "$dir/bin"
}

# The interpreter's version (py3.11), part of each venv's name.
python_tag() {
  python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])'
}

venv() {
  ensure_venv "$cache/$1-$2-$(python_tag)" "$1==$2"
}

venv_requirements() {
  ensure_venv "$cache/$1-$(sha256sum "$2" | cut -c1-12)-$(python_tag)" --no-deps -r "$2"
}
