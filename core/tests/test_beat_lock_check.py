"""DatabaseScheduler._still_leader: the check right before a publish is made again when it stalled.

A beat frozen while its `SELECT 1` was in flight reads, on resuming, a reply sent before its lock connection
was cut (tests/faults/test_beat_failover.py freezes a leader and cuts it). The clock and the lock are stand-ins
here; the fault test runs the real thing."""

from types import SimpleNamespace

from core import beat


def scheduler(answers, clock, monkeypatch):
    """A DatabaseScheduler with only what _still_leader reads (no app, no database)."""
    sched = beat.DatabaseScheduler.__new__(beat.DatabaseScheduler)
    sched._leader_since = 1.0
    answers, clock = iter(answers), iter(clock)
    sched._lock = SimpleNamespace(held=lambda: next(answers))
    monkeypatch.setattr(beat, "_monotonic", lambda: next(clock))
    return sched


def test_a_quick_check_that_holds_is_enough(monkeypatch):
    assert scheduler([True], [0.0, 0.01], monkeypatch)._still_leader() is True


def test_a_check_that_stalled_is_made_again_and_its_answer_counts(monkeypatch):
    # The first check took 5 s (frozen with the reply in flight): its "held" is not trusted.
    assert scheduler([True, False], [0.0, 5.0, 5.0, 5.01], monkeypatch)._still_leader() is False
    assert scheduler([True, True], [0.0, 5.0, 5.0, 5.01], monkeypatch)._still_leader() is True


def test_a_check_that_keeps_stalling_does_not_send(monkeypatch):
    assert scheduler([True] * 3, [0, 2, 2, 4, 4, 6], monkeypatch)._still_leader() is False


def test_a_standby_is_not_the_leader_whatever_the_lock_says(monkeypatch):
    sched = scheduler([True], [0.0, 0.01], monkeypatch)
    sched._leader_since = None
    assert sched._still_leader() is False


def test_the_run_reserved_is_what_the_schedule_holds_and_saves(transactional_db, celery_app):
    """django-celery-beat 2.9's reserve() leaves the previous entry in the scheduler's dict: a heap rebuilt from
    it (after any schedule change) found the run just sent due again and sent it twice (seen in the failover
    test: one leader, two sends 18-42 ms apart, while another beat started)."""
    from datetime import timedelta

    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    before = timezone.now() - timedelta(minutes=2)
    PeriodicTask.objects.create(name="due", task="core.sweep_pending", interval=every, last_run_at=before)
    sched = beat.DatabaseScheduler(app=celery_app, lazy=True)
    sched._leader_since = 1.0
    sched._lock = SimpleNamespace(held=lambda: True, release=lambda: None)
    entry = sched.schedule["due"]
    assert entry.is_due().is_due
    sched.reserve(entry)
    assert not sched.schedule["due"].is_due().is_due  # what a rebuilt heap would read
    assert PeriodicTask.objects.get(name="due").last_run_at > before  # persisted before the publish


def test_saving_a_run_keeps_an_admin_edit_committed_meanwhile(transactional_db, celery_app):
    """An admin disables a task (and changes its interval) while beat saves the run it just sent, between
    django-celery-beat's read of the row and its save of every column: the edit stays, the run is recorded."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    every, other = (IntervalSchedule.objects.create(every=n, period=IntervalSchedule.SECONDS) for n in (60, 7))
    before = timezone.now() - timedelta(minutes=2)
    task = PeriodicTask.objects.create(name="due", task="core.sweep_pending", interval=every, last_run_at=before)
    sched = beat.DatabaseScheduler(app=celery_app, lazy=True)
    sched._leader_since = 1.0
    sched._lock = SimpleNamespace(held=lambda: True, release=lambda: None)
    entry = sched.schedule["due"]
    edited = []

    def admin_edit_after_the_first_statement(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not edited:
            edited.append(sql)
            PeriodicTask.objects.filter(pk=task.pk).update(enabled=False, interval=other)
            PeriodicTasks.update_changed()
        return result

    with connection.execute_wrapper(admin_edit_after_the_first_statement):
        sched.reserve(entry)  # saves the run (persist-then-publish)
    assert edited
    row = PeriodicTask.objects.get(pk=task.pk)
    assert (row.enabled, row.interval_id) == (False, other.pk)  # the admin's edit was not written over
    assert row.last_run_at > before and row.total_run_count == 1  # and the run is recorded
