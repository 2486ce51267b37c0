#!/usr/bin/env bash
# Live view of the Celery system. Usage: monitor.sh watch|once [--interval N]
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
if [ $# -eq 0 ]; then
  cat <<USAGE
usage: $(basename "$0") COMMAND [--interval SECONDS]

commands:
  watch    refresh every few seconds: queue lengths, active and reserved tasks per worker,
           recent failures, and beat's last tick (Ctrl-C to quit)
  once     print the same report once and exit
USAGE
  exit 2
fi
resolve_redis_url
exec "$PY" scripts/celery/monitor.py "$@"
