#!/usr/bin/env bash
# Installs everything latscope needs on a Debian machine (run as root) and builds it:
# Debian packages (compiler, libbpf, bpftool, Redis, MariaDB, sshd, iproute2; Chromium for the
# report's browser test; bpftrace and sockperf for reference measurements), npm packages from
# package-lock.json, the BPF programs, the addon and the TypeScript. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages, and latscope loads BPF programs)" >&2
  exit 1
fi

PKGS=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3
      redis-server mariadb-server mariadb-client openssh-server openssh-client
      iproute2 util-linux procps systemd  # systemd-analyze checks the observer unit
      openssl  # the test certificate authority (local/pki.ts) for TLS to Redis and MariaDB
      prometheus  # promtool checks the alert rules; the metrics test scrapes a manager with it
      chromium fonts-dejavu-core bpftrace tcpdump sockperf)  # the report's browser test; reference tracers, captures and sockperf (bench)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci refuses this lock (npm 11 and the optional platform packages of msgpackr-extract);
# install against the committed lock instead: same versions, and the lock stays as it is.
npm install --no-audit --no-fund --loglevel=error
bash scripts/build.sh
