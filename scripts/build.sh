#!/usr/bin/env bash
# Builds the BPF programs (dist/bpf, dist/test/bpf, dist/bench/bpf), the libbpf addon
# (native/build), the TypeScript (dist) and the C helpers of the benchmarks and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -C native bpf
# The libbpf addon, as the package's install step builds it (Node's own headers; never downloaded).
sh native/install.sh
# tsc leaves the output of a renamed or deleted source behind: start from none
find dist -type f \( -name '*.js' -o -name '*.d.ts' -o -name '*.js.map' \) -delete 2>/dev/null || true
npx --no-install tsc -p tsconfig.json
# What the observer bundle holds, from the observer's import graph; fails on an import it cannot ship.
node dist/scripts/bundle-manifest.js >/dev/null
# The benchmark's traffic generator.
cc -O2 -Wall -o dist/bench/tcpbench bench/tools/tcpbench.c
# The tests' raw frame sender.
mkdir -p dist/test
cc -O2 -Wall -o dist/test/sendframe test/tools/sendframe.c
# Host conditions on purpose (the host-jitter tests and bench/host-overhead).
cc -O2 -Wall -pthread -o dist/test/hostload test/tools/hostload.c
