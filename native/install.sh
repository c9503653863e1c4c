#!/bin/sh
# Builds the libbpf addon (native/build/Release/latscope_bpf.node): npm's install step of the
# package, and part of scripts/build.sh. Node's headers come from the node that runs it
# (Debian's nodejs ships them beside the binary): nothing is downloaded. Needs a C++ compiler,
# make, and libbpf, libelf and zlib with their headers (Debian: g++ make libbpf-dev libelf-dev
# zlib1g-dev).
set -e
cd "$(dirname "$0")"
nodedir="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "latscope: Node's headers are not in $nodedir/include/node, so the BPF addon cannot be built: install them (Debian: apt-get install libnode-dev)" >&2
  exit 1
fi
if [ ! -f /usr/include/bpf/libbpf.h ]; then
  echo "latscope: libbpf's headers are missing, so the BPF addon cannot be built: install them (Debian: apt-get install libbpf-dev libelf-dev zlib1g-dev g++ make)" >&2
  exit 1
fi
# npm puts its node-gyp on the PATH of install scripts; a checkout has its own in node_modules
if command -v node-gyp >/dev/null 2>&1; then gyp=node-gyp; else gyp="npx --no-install node-gyp"; fi
$gyp rebuild --nodedir="$nodedir" --loglevel=error >/dev/null
