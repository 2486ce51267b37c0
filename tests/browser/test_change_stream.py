"""The live change stream in a real browser: EventSource against uvicorn, a change made through the API arrives,
and after the server goes away and comes back the browser's own reconnect (Last-Event-ID) resumes without gaps or
duplicates."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from accounts.services import api_token_create
from tasks_app.models import EVENT_TYPES, Event
from tasks_app.services.tasks import task_update
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.browser]

PAGE_JS = """([token, types]) => {
  window.got = []; window.opened = 0;
  const es = new EventSource(`/api/v1/changes/stream/?token=${token}`);
  es.onopen = () => { window.opened += 1; };
  for (const t of types) es.addEventListener(t, (e) => window.got.push([Number(e.lastEventId), Date.now()]));
  window.es = es;
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_uvicorn(port, env, log):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "taskmgmt.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def up():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    wait_until(up, "uvicorn to answer", timeout=60)
    return proc


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_event_source_sees_changes_and_resumes_after_reconnect(browser, cast, subprocess_env, redis_clean, tmp_path):
    token = api_token_create(user=cast.member, name="stream")[1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "uvicorn.log", "w")
    server = start_uvicorn(port, subprocess_env, log)
    page = browser.new_page()
    try:
        page.goto(f"{base}/api/v1/")  # any page of the origin: EventSource then needs no CORS
        page.evaluate(PAGE_JS, [token, list(EVENT_TYPES)])
        page.wait_for_function("window.opened >= 1", timeout=20_000)
        time.sleep(0.5)  # let the stream reach its first wait for a wake-up

        sent = time.time() * 1000
        r = httpx.post(
            f"{base}/api/v1/tasks/",
            json={"project": cast.project.pk, "title": "live"},
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        page.wait_for_function("window.got.length >= 1", timeout=20_000)
        first_id, arrived = page.evaluate("window.got[0]")
        print(f"API write to EventSource message: {arrived - sent:.0f} ms")
        assert first_id == Event.objects.get(task_id=r.json()["id"], type="task.created").pk

        # The server goes away; changes happen meanwhile; it comes back on the same port.
        stop(server)
        task_id = r.json()["id"]
        from tasks_app.models import Task

        task = Task.objects.get(pk=task_id)
        for i in range(3):
            task = task_update(task=task, actor=cast.owner, data={"title": f"offline {i}"})
        server = start_uvicorn(port, subprocess_env, log)
        page.wait_for_function("window.opened >= 2", timeout=30_000)  # EventSource reconnected by itself
        httpx.patch(
            f"{base}/api/v1/tasks/{task_id}/",
            json={"title": "back online"},
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )
        expected = list(
            Event.objects.filter(project=cast.project, id__gte=first_id).order_by("id").values_list("id", flat=True)
        )
        assert len(expected) == 5
        page.wait_for_function(f"window.got.length >= {len(expected)}", timeout=20_000)
        got = [event_id for event_id, _ in page.evaluate("window.got")]
        assert got == expected  # every change once, in commit order: no gap, no duplicate
    finally:
        page.close()
        stop(server)
        log.close()
