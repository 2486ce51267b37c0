#!/usr/bin/env bash
# Start Redis (if none is configured or running), the web server, a worker and beat.
# Ctrl-C stops everything this script started.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

started_redis=""
if [ -z "${REDIS_URL:-}" ] && ! redis_ping "redis://127.0.0.1:$LOCAL_REDIS_PORT/0" \
   && ! redis_ping "redis://127.0.0.1:$PRIVATE_REDIS_PORT/0"; then
  started_redis=1
fi
resolve_redis_url
echo "Redis: $REDIS_URL"

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping web, worker and beat..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$started_redis" ] && [ -f "$PRIVATE_REDIS_DIR/redis.pid" ]; then
    kill "$(cat "$PRIVATE_REDIS_DIR/redis.pid")" 2>/dev/null || true
    echo "stopped the private Redis"
  fi
}
trap cleanup INT TERM EXIT

"$PY" manage.py runserver "$HOST:$PORT" --noreload & pids+=($!)
"$PY" manage.py celery_worker --loglevel INFO & pids+=($!)
"$PY" manage.py celery_beat --loglevel INFO & pids+=($!)

cat <<MSG

taskmgmt is running:
  API          http://$HOST:$PORT/api/v1/
  API docs     http://$HOST:$PORT/api/docs/
  Admin        http://$HOST:$PORT/admin/
  Health       http://$HOST:$PORT/healthz
Create an admin user (in another terminal):  .venv/bin/python manage.py createsuperuser
Press Ctrl-C to stop.

MSG
# Exit (and clean up) as soon as any of the three stops.
wait -n "${pids[@]}"
