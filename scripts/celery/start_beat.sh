#!/usr/bin/env bash
# Start Celery beat with the database scheduler. Run exactly one per deployment.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
resolve_redis_url
exec "$PY" manage.py celery_beat "$@"
