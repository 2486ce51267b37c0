#!/usr/bin/env bash
# Start Celery beat with the database scheduler. Several may run (one per host): a database lock elects one leader.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
resolve_redis_url
exec "$PY" manage.py celery_beat "$@"
