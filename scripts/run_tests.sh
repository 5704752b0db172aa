#!/usr/bin/env bash
# The test suite: every test, ROS 2 ones included, inside an isolated network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/isolated.sh .venv/bin/python -m pytest -ra "$@"
