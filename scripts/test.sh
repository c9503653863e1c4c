#!/usr/bin/env bash
# The test command: installs and builds what is needed, then runs every test with node's test
# runner (unit, integration against real Redis/MariaDB/sshd, kernel tests on a testbed). The
# local Redis and MariaDB the tests start are stopped afterwards, pass or fail, unless they
# were running before.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
was_up="$(node dist/cli.js servers status 2>/dev/null | grep -c ' running' || true)"
status=0
npm test || status=$?
if [ "$was_up" = "0" ]; then node dist/cli.js servers down >/dev/null || true; fi
exit "$status"
