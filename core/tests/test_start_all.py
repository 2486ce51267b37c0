"""scripts/celery/start_all.sh (what `make run` runs): a dead REDIS_URL fails clearly; a running stack
publishes its URLs in var/stack.env, SITE_URL follows the port, and scripts/test_celery.py finds it."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core import stackenv
from tests.support import free_port, stop_process, wait_until

ROOT = Path(__file__).resolve().parents[2]
START_ALL = ROOT / "scripts" / "celery" / "start_all.sh"


def test_a_redis_url_that_does_not_answer_fails_clearly(tmp_path):
    env = dict(os.environ, REDIS_URL=f"redis://:secret@127.0.0.1:{free_port()}/0", PY=sys.executable)
    env["TASKMGMT_STACK_ENV"] = str(tmp_path / "stack.env")
    proc = subprocess.Popen(
        [str(START_ALL)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc, group=True, timeout=30)
    assert proc.returncode != 0
    assert "does not answer" in err and "secret" not in err + out
    assert "taskmgmt is running" not in out
    assert not (tmp_path / "stack.env").exists()


@pytest.mark.worker
def test_the_running_stack_is_found_through_var_stack_env(subprocess_env, redis_clean, tmp_path):
    from core.schedules import seed_schedules

    seed_schedules()  # what `make run` does before start_all.sh
    port = free_port()
    stack_env = tmp_path / "stack.env"
    env = dict(subprocess_env, REDIS_URL=subprocess_env["TEST_REDIS_URL"], PORT=str(port), PY=sys.executable)
    env["TASKMGMT_STACK_ENV"] = str(stack_env)
    env.pop("SITE_URL", None)
    log = open(tmp_path / "start_all.log", "w")
    proc = subprocess.Popen(
        [str(START_ALL)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until(lambda: stack_env.exists() or proc.poll() is not None, "start_all.sh to write stack.env", timeout=90)
        assert proc.poll() is None, (tmp_path / "start_all.log").read_text()
        values = stackenv.read(stack_env)
        assert values["REDIS_URL"] == subprocess_env["TEST_REDIS_URL"]
        assert values["SITE_URL"] == f"http://127.0.0.1:{port}"
        assert values["DATABASE_URL"] == subprocess_env["DATABASE_URL"]
        # The web server is up on that port by the time stack.env exists.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()

        # A second terminal with none of these variables set finds the stack through the file.
        second = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "SITE_URL")}
        second.pop("DJANGO_SETTINGS_MODULE", None)
        second.update(TASKMGMT_STACK_ENV=str(stack_env), TEST_REDIS_URL=subprocess_env["TEST_REDIS_URL"])
        check = subprocess.run(
            [sys.executable, "scripts/test_celery.py", "--timeout", "30"],
            cwd=ROOT,
            env=second,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "using the running stack" in check.stdout
        log.flush()
        assert "taskmgmt is running" in (tmp_path / "start_all.log").read_text()
    finally:
        stop_process(proc, group=True, timeout=30)
        log.close()
    assert not stack_env.exists()  # removed on stop


def test_make_run_installs_only_the_runtime_requirements_and_says_so(tmp_path):
    """`make run` used to install requirements/dev.txt (Playwright, schemathesis, ...) silently."""
    plan = subprocess.run(
        ["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if " install " in line and " -r " in line]
    assert installs and all("requirements/production.txt" in line for line in installs), installs
    assert "requirements/dev.txt" not in plan.stdout
    assert "==> installing the runtime requirements" in plan.stdout
    assert " -q " not in installs[0]  # pip's own progress lines are shown
