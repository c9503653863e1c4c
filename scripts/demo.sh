#!/usr/bin/env bash
# The main job end to end on the local default: testbed of network namespaces, local Redis and
# MariaDB, the manager provisioning every host over SSH, traffic, rows in MariaDB, clock offsets,
# manager stop. Installs and builds what is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node dist/cli.js demo "$@"
