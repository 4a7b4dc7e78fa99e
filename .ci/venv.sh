# shellcheck shell=bash
# The pinned-tool cache the .ci scripts share; sourced, not run. Gives:
#   $cache              ${XDG_CACHE_HOME:-~/.cache}/users-api-ci
#   venv NAME VERSION   prints the bin directory of a venv holding
#                       NAME==VERSION, creating it if needed

cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/users-api-ci"
mkdir -p "$cache"

# A venv counts only once its install finished (the marker) and its python
# still runs, so an interrupted install or a removed interpreter means a
# fresh venv, not a broken one.
venv() {
  local python dir
  python="$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')"
  dir="$cache/$1-$2-$python"
  if [ ! -e "$dir/.installed" ] || ! "$dir/bin/python" -c '' 2>/dev/null; then
    echo "installing $1==$2 into $dir" >&2
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$1==$2" >&2
    touch "$dir/.installed"
  fi
  echo "$dir/bin"
}
