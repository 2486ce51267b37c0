#!/usr/bin/env bash
# Prints the base URL (redis://127.0.0.1:PORT) of a running Redis, starting a private one if none runs.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ensure_redis_base
