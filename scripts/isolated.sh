#!/usr/bin/env bash
# Run a command with ROS 2 / DDS traffic confined to this machine: a private network namespace with
# only loopback up, and a fixed ROS_DOMAIN_ID. Falls back to localhost-only discovery where
# unprivileged namespaces are unavailable (says so on stderr).
set -euo pipefail
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-42}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
if unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec "$@"' isolated "$@"
elif unshare -rn true 2>/dev/null; then
  exec unshare -rn bash -c 'ip link set lo up && exec "$@"' isolated "$@"
fi
echo "isolated.sh: no network namespace available; using ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" >&2
exec "$@"
