#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (run as root): system packages, npm packages,
# the native build (core, BTL, addon, MPI programs) and the TypeScript build.
# When everything is already in place it only runs the incremental builds (a few seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*" >&2; }
# Each step's duration, so that a slow install or build shows in CI logs.
step_started=$SECONDS
took() { say "$1 took $((SECONDS - step_started)) s"; step_started=$SECONDS; }

if [ "$(id -u)" -ne 0 ]; then
  say "freeflow needs root (it installs packages and creates network namespaces): re-run with sudo."
  exit 1
fi

APT_PACKAGES=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev
  libucx-dev ucx-utils
  libibverbs-dev librdmacm-dev rdma-core ibverbs-utils
  iproute2 util-linux procps psmisc
  netpipe-openmpi
  runc
  clang-format
  slurmctld slurmd slurm-client slurm-wlm-basic-plugins libslurm-dev munge
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  took "installing system packages"
fi

# npm packages: reinstall only when the lock file changed since the last install.
stamp=node_modules/.freeflow-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
  took "npm ci"
fi

# Native build: configure once, then incremental builds.
if [ ! -f build/CMakeCache.txt ]; then
  say "configuring the native build"
  npx cmake-js configure --out build >/dev/null
  took "configuring"
fi
say "building native code"
cmake --build build --parallel "$(nproc)" >/dev/null
took "building native code"

say "building TypeScript"
npx tsc -p tsconfig.json
took "building TypeScript"
