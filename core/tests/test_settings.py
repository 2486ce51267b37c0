import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, **env):
    full_env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    full_env.update(DJANGO_SETTINGS_MODULE="taskmgmt.settings.production", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secret_key():
    result = _manage("check", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_the_dev_secret_key():
    result = _manage(
        "check", ALLOWED_HOSTS="example.com", SECRET_KEY="dev-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
    )
    assert result.returncode != 0 and "development default" in result.stderr


def test_check_deploy_is_clean_with_real_values():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_worker_program_keeps_its_database_connections(settings):
    """What core.worker does when the `celery worker` program starts (celeryd_init); the end-to-end effect on a
    real worker's sessions is core/tests/test_processes.py::test_a_real_worker_keeps_its_database_connection_across_tasks.
    """
    from django.db import close_old_connections

    from core import worker
    from taskmgmt.celery import app

    fixup = next(f for f in app._fixups if hasattr(f, "worker_fixup")).worker_fixup
    database = settings.DATABASES["default"]
    before = database["CONN_MAX_AGE"]
    try:
        settings.WORKER_CONN_MAX_AGE = None  # off: nothing changes
        worker._keep_database_connections(instance=type("Program", (), {"app": app})())
        assert database["CONN_MAX_AGE"] == before and "close_database" not in vars(fixup)
        settings.WORKER_CONN_MAX_AGE = 300
        worker._keep_database_connections(instance=type("Program", (), {"app": app})())
        assert database["CONN_MAX_AGE"] == 300
        assert fixup.close_database is close_old_connections  # Django's rule, not Celery's close-always
    finally:
        database["CONN_MAX_AGE"] = before
        vars(fixup).pop("close_database", None)
