"""var/stack.env: what `make run` chose (Redis URL, site URL, settings, database), written by
scripts/celery/start_all.sh once the stack is up, so that second-terminal scripts find the running stack.

`load()` puts its values into os.environ, never overriding a variable already set (so `REDIS_URL=...
python scripts/test_celery.py` still wins). Call it before django.setup().
"""

import os
from pathlib import Path

# TASKMGMT_STACK_ENV moves it (tests use it so they never touch the checkout's own var/stack.env).
STACK_ENV = Path(os.environ.get("TASKMGMT_STACK_ENV") or Path(__file__).resolve().parents[1] / "var" / "stack.env")


def read(path=STACK_ENV):
    values = {}
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    return values


def load(path=STACK_ENV, environ=None):
    """Apply var/stack.env to `environ` (os.environ). Returns the names it set."""
    environ = os.environ if environ is None else environ
    applied = []
    for name, value in read(path).items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied
