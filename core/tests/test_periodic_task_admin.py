"""The periodic task form in a fresh web process: "Task (registered)" lists every task and the seeded rows
select theirs. A request thread of a web server has no Celery "current app" of its own (Celery keeps it per
thread), so django-celery-beat's widget read an empty fallback app there."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask

from core.registry import SPEC_TASKS
from core.schedules import SCHEDULES, seed_schedules

ROOT = Path(__file__).resolve().parents[2]

# Runs in a new interpreter (nothing imported yet), the request in a new thread, like runserver/gunicorn.
CHILD = r"""
import json, re, sys, threading
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django_celery_beat.models import PeriodicTask

out = {}
def request():
    client = Client()
    client.force_login(get_user_model().objects.get(username="root"))
    for row in PeriodicTask.objects.all():
        html = client.get(f"/admin/django_celery_beat/periodictask/{row.pk}/change/").content.decode()
        select = re.search(r'<select name="regtask".*?</select>', html, re.S).group(0)
        options = re.findall(r'<option value="([^"]*)"', select)
        selected = re.findall(r'<option value="([^"]*)"\s+selected', select)
        custom = re.search(r'<input[^>]*name="task"[^>]*>', html).group(0)
        out[row.name] = {"options": options, "selected": selected, "custom": custom}
thread = threading.Thread(target=request)
thread.start()
thread.join()
print(json.dumps(out))
"""


@pytest.mark.django_db(transaction=True)
def test_registered_task_list_is_full_and_seeded_rows_select_theirs(subprocess_env, django_user_model):
    seed_schedules()
    django_user_model.objects.create_superuser("root", "root@example.test", "pw")
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    pages = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(pages) == {s.name for s in SCHEDULES}
    for seed in SCHEDULES:
        page = pages[seed.name]
        assert set(SPEC_TASKS) <= set(page["options"]), page["options"]
        assert page["selected"] == [seed.task], (seed.name, page["selected"])
        assert 'value="' not in page["custom"] or 'value=""' in page["custom"]  # custom name left empty


def test_saving_with_the_registered_task_keeps_it(db, client, django_user_model):
    seed_schedules()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw"))
    row = PeriodicTask.objects.get(name="Precompute Analytics Cache")
    page = client.get(f"/admin/django_celery_beat/periodictask/{row.pk}/change/")
    form = page.context["adminform"].form
    assert form.initial["regtask"] == "analytics.precompute_analytics" and form.initial["task"] == ""
