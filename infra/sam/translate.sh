#!/usr/bin/env bash
# Translates template.yaml into plain CloudFormation, one file per AuthMode,
# into infra/sam/translated/ (translate.py says how). With --check, fails if
# the committed files differ from a fresh translation, so a change to
# template.yaml must come with its regenerated translation.
#
# Usage: infra/sam/translate.sh [--check]
#
# Installs the pinned SAM translator (requirements.txt) into a venv under
# ${XDG_CACHE_HOME:-~/.cache}/users-api-ci/ on first use (about 25 s); later
# runs reuse it and take about a second. Needs python3 and, on first use,
# access to PyPI. No AWS account or credentials.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="$here/requirements.txt"

cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/users-api-ci"
python="$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')"
# Named after the pins, so changing requirements.txt means a fresh venv.
venv="$cache/sam-translator-$(sha256sum "$requirements" | cut -c1-12)-$python"
# A venv counts only once its install finished (the marker) and its python
# still runs, so an interrupted install or a removed interpreter means a
# fresh venv, not a broken one.
if [ ! -e "$venv/.installed" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  echo "installing the SAM translator into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2
  touch "$venv/.installed"
fi

# The translator insists on a region; it takes only the partition (aws) from
# it, for the managed policies' ARNs. The output names no region.
AWS_DEFAULT_REGION=us-east-1 exec "$venv/bin/python" "$here/translate.py" "$@"
