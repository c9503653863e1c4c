#!/usr/bin/env bash
# The test command: installs and builds what is needed, then runs every test with node's test
# runner (unit, integration against real Redis/MariaDB/sshd, kernel tests on a testbed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
