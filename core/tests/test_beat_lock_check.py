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
