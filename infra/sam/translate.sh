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

# shellcheck source=infra/venv.sh
source "$here/../venv.sh"
bin="$(venv_requirements sam-translator "$requirements")"

# The translator insists on a region; it takes only the partition (aws) from
# it, for the managed policies' ARNs. The output names no region.
AWS_DEFAULT_REGION=us-east-1 exec "$bin/python" "$here/translate.py" "$@"
