#!/usr/bin/env bash
# Start Redis (if none is configured or running), the web server, the ASGI stream server, a worker and beat.
# Ctrl-C stops everything this script started.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"

started_redis=""
if [ -n "${REDIS_URL:-}" ]; then
  # A configured Redis must answer: otherwise the worker and beat would only retry forever.
  if ! redis_ping "$REDIS_URL"; then
    echo "error: REDIS_URL=$(printf '%s' "$REDIS_URL" | sed -E 's#//[^@/]*@#//***@#') does not answer PING." >&2
    echo "Start that Redis, fix REDIS_URL, or unset it to let make run use or start a local one." >&2
    exit 1
  fi
elif ! redis_ping "redis://127.0.0.1:$LOCAL_REDIS_PORT/0" && ! redis_ping "redis://127.0.0.1:$PRIVATE_REDIS_PORT/0"; then
  started_redis=1
fi
resolve_redis_url || { echo "error: no Redis could be found or started" >&2; exit 1; }
echo "Redis: $REDIS_URL"

HOST="${HOST:-127.0.0.1}"
if [ -z "${PORT:-}" ]; then
  # 8000 if it is free, else any free port (SITE_URL and var/stack.env follow it).
  PORT="$("$PY" - "$HOST" <<'PYEOF'
import socket, sys
for port in (8000, 0):
    try:
        with socket.socket() as s:
            s.bind((sys.argv[1], port))
            print(s.getsockname()[1])
            break
    except OSError:
        continue
PYEOF
)"
fi
# The live change stream (Server-Sent Events) needs an ASGI server: uvicorn beside the web server, on
# STREAM_PORT (PORT+1 if it is free, else any free port).
if [ -z "${STREAM_PORT:-}" ]; then
  STREAM_PORT="$("$PY" - "$HOST" "$((PORT + 1))" <<'PYEOF'
import socket, sys
for port in (int(sys.argv[2]), 0):
    try:
        with socket.socket() as s:
            s.bind((sys.argv[1], port))
            print(s.getsockname()[1])
            break
    except OSError:
        continue
PYEOF
)"
fi
export SITE_URL="${SITE_URL:-http://$HOST:$PORT}"
STACK_ENV="${TASKMGMT_STACK_ENV:-$ROOT/var/stack.env}"
pids=()
cleanup() {
  trap - INT TERM EXIT
  rm -f "$STACK_ENV"
  echo; echo "stopping web, stream, worker and beat..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$started_redis" ] && [ -f "$PRIVATE_REDIS_DIR/redis.pid" ]; then
    kill "$(cat "$PRIVATE_REDIS_DIR/redis.pid")" 2>/dev/null || true
    echo "stopped the private Redis"
  fi
}
trap cleanup INT TERM EXIT

"$PY" manage.py runserver "$HOST:$PORT" --noreload & pids+=($!)
# No access log: EventSource passes the token in the query string, and secrets stay out of logs.
"$PY" -m uvicorn taskmgmt.asgi:application --host "$HOST" --port "$STREAM_PORT" --no-access-log & pids+=($!)
"$PY" manage.py celery_worker --loglevel INFO & pids+=($!)
"$PY" manage.py celery_beat --loglevel INFO & pids+=($!)

# Wait for the web server to accept connections (and every process to be still alive) before saying so.
for _ in $(seq 1 150); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "error: a process exited during startup (see above)" >&2; exit 1; }
  done
  "$PY" -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()" \
    "$HOST" "$PORT" 2>/dev/null && break
  sleep 0.2
done

# What the second-terminal scripts (make check-celery, make check-integration) read to find this stack.
# Written to a private temporary file and renamed, so a reader never sees it half-written.
mkdir -p "$(dirname "$STACK_ENV")"
(umask 077; cat > "$STACK_ENV.tmp" <<ENV
REDIS_URL=$REDIS_URL
SITE_URL=$SITE_URL
DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-taskmgmt.settings.local}
${DATABASE_URL:+DATABASE_URL=$DATABASE_URL}
ENV
)
mv -f "$STACK_ENV.tmp" "$STACK_ENV"

cat <<MSG

taskmgmt is running:
  API          http://$HOST:$PORT/api/v1/
  API docs     http://$HOST:$PORT/api/docs/
  Admin        http://$HOST:$PORT/admin/
  Health       http://$HOST:$PORT/healthz/ready   (live: /healthz/live; details for staff: /healthz/status)
  Operations   http://$HOST:$PORT/admin/operations/   (metrics for staff or OPS_TOKEN: /metrics)
  Live stream  http://$HOST:$STREAM_PORT/api/v1/changes/stream/   (ASGI: uvicorn serves the whole API there too)
Create an admin user (in another terminal):  .venv/bin/python manage.py createsuperuser
Check the stack (in another terminal):        make check-celery   and   make check-integration
Press Ctrl-C to stop.

MSG
# Exit (and clean up) as soon as any of them stops.
wait -n "${pids[@]}"
