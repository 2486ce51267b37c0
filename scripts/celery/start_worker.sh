#!/usr/bin/env bash
# Start a Celery worker. Arguments go to `manage.py celery_worker` (e.g. --queues webhooks --pool threads).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
resolve_redis_url
exec "$PY" manage.py celery_worker "$@"
