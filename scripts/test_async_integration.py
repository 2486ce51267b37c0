"""End-to-end flows through a running worker (make run, or a worker on all queues).

Usage: make check-integration, or with the project's virtualenv active: python scripts/test_async_integration.py [--timeout SECONDS] [--keep]
Flows live in each app's `itest.py` (registered with core.itest.flow). Each creates its own data
(usernames and project names prefixed 'itest-'), checks what the worker produced, and removes its data
unless --keep is given (ITEST_KEEP=1). Exits non-zero if any flow fails.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import stackenv

# The Redis, URL and settings `make run` chose (var/stack.env), unless set in the environment.
if stackenv.load():
    print(f"using the running stack from {stackenv.STACK_ENV}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskmgmt.settings.local")

import django

django.setup()

import importlib  # noqa: E402

from django.apps import apps  # noqa: E402

from core.itest import FLOWS  # noqa: E402

for config in apps.get_app_configs():
    if importlib.util.find_spec(f"{config.name}.itest") is not None:
        importlib.import_module(f"{config.name}.itest")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="keep the data the flows created")
    args = parser.parse_args()
    os.environ["ITEST_KEEP"] = "1" if args.keep else ""
    failed = 0
    for fn in FLOWS:
        started = time.monotonic()
        try:
            detail = fn(args.timeout)
            print(f"[PASS] {fn.__name__:<32} {time.monotonic() - started:5.1f}s  {detail}")
        except Exception as exc:
            failed += 1
            print(f"[FAIL] {fn.__name__:<32} {time.monotonic() - started:5.1f}s  {type(exc).__name__}: {exc}")
    print(f"\n{len(FLOWS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
