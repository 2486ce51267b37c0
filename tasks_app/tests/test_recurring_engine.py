"""The recurrence engine: generation, catch-up, DST, idempotency, concurrency, updates, cleanup."""

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, models
from django.utils import timezone

from core.exceptions import ApplicationError
from tasks_app import signals
from tasks_app.models import Event, RecurringTaskTemplate, Status, Task
from tasks_app.recurring.engine import (
    _array,
    recurring_cleanup_completed,
    recurring_instance_create,
    recurring_process_due,
)
from tasks_app.recurring.templates import (
    recurring_template_apply,
    recurring_template_pause,
    recurring_template_resume,
    recurring_template_update,
)
from tasks_app.services.search import search_reindex
from tasks_app.services.tasks import task_delete, task_update
from tasks_app.tests.recurring_helpers import Received, make_template

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")


def _instances(template):
    return list(Task.objects.filter(recurring_template=template).order_by("occurrence_at"))


@pytest.fixture
def received():
    receiver = Received()
    signals.recurring_instances_created.connect(receiver, dispatch_uid="test-received")
    yield receiver
    signals.recurring_instances_created.disconnect(dispatch_uid="test-received")


@pytest.fixture
def other_receivers_muted():
    """Query counts measure the engine; receivers other apps connect add their own queries."""
    saved = signals.recurring_instances_created.receivers
    signals.recurring_instances_created.receivers = []
    signals.recurring_instances_created.sender_receivers_cache.clear()
    yield
    signals.recurring_instances_created.receivers = saved
    signals.recurring_instances_created.sender_receivers_cache.clear()


class TestDaylightSaving:
    @pytest.mark.parametrize(
        "zone,days,utc_hours",
        [
            # Europe/Berlin springs forward on 29 March 2026 and falls back on 25 October 2026.
            ("Europe/Berlin", [(2026, 3, 28), (2026, 3, 29), (2026, 3, 30)], [8, 7, 7]),
            ("Europe/Berlin", [(2026, 10, 24), (2026, 10, 25), (2026, 10, 26)], [7, 8, 8]),
            # America/New_York: 8 March and 1 November 2026.
            ("America/New_York", [(2026, 3, 7), (2026, 3, 8), (2026, 3, 9)], [14, 13, 13]),
            ("America/New_York", [(2026, 10, 31), (2026, 11, 1), (2026, 11, 2)], [13, 14, 14]),
        ],
    )
    def test_daily_nine_oclock_instances_stay_nine_local(self, cast, zone, days, utc_hours):
        tz = ZoneInfo(zone)
        first = datetime(*days[0], 9, 0, tzinfo=tz)
        with time_machine.travel(first - timedelta(hours=12), tick=False):
            template = make_template(cast, rrule="FREQ=DAILY", dtstart=first - timedelta(days=5), timezone=zone)
        for day in days:
            with time_machine.travel(datetime(*day, 12, 0, tzinfo=tz), tick=False):
                recurring_process_due()
        instances = _instances(template)
        assert [t.due_at.astimezone(UTC).hour for t in instances] == utc_hours
        assert [t.due_at.astimezone(tz).hour for t in instances] == [9, 9, 9]
        assert [t.due_at.astimezone(tz).day for t in instances] == [d[2] for d in days]

    def test_spring_forward_gap_time_is_created_an_hour_later(self, cast):
        with time_machine.travel(datetime(2026, 3, 27, 12, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 3, 20, 2, 30, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 3, 30, 12, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        local = [t.due_at.astimezone(BERLIN) for t in _instances(template)]
        assert [(d.day, d.hour, d.minute) for d in local] == [(28, 2, 30), (29, 3, 30), (30, 2, 30)]

    def test_fall_back_ambiguous_time_is_created_once_at_the_first(self, cast):
        with time_machine.travel(datetime(2026, 10, 31, 12, tzinfo=NY), tick=False):
            template = make_template(
                cast, dtstart=datetime(2026, 10, 20, 1, 30, tzinfo=NY), timezone="America/New_York"
            )
        with time_machine.travel(datetime(2026, 11, 1, 1, 45, tzinfo=NY, fold=1), tick=False):
            recurring_process_due()  # 01:45 EST: after both 01:30s
            recurring_process_due()
        assert [t.due_at for t in _instances(template)] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]

    def test_three_year_old_hourly_count_ends_exactly_across_spring_forward(self, cast):
        # 1096 days * 24 + 5 local hours from 2023-03-29 00:15: the last is 04:15 on 2026-03-29, the night
        # Berlin springs forward. The expansion resumes near the due hour, COUNT reduced by the hours skipped.
        with time_machine.travel(datetime(2026, 3, 28, 23, tzinfo=BERLIN), tick=False):
            template = make_template(
                cast, rrule="FREQ=HOURLY;COUNT=26309", dtstart=datetime(2023, 3, 29, 0, 15, tzinfo=BERLIN)
            )
        with time_machine.travel(datetime(2026, 3, 29, 6, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        local = [t.due_at.astimezone(BERLIN) for t in _instances(template)]
        # 02:15 does not exist: it is 03:15 CEST, the same instant as 03:15, kept once (and counted twice).
        assert [(d.day, d.hour, d.minute) for d in local] == [
            (28, 23, 15),
            (29, 0, 15),
            (29, 1, 15),
            (29, 3, 15),
            (29, 4, 15),
        ]
        template.refresh_from_db()
        assert template.next_occurrence_at is None


class TestGeneration:
    def test_instance_is_a_normal_task_with_template_defaults(self, cast, received):
        with time_machine.travel(datetime(2026, 5, 4, 8, tzinfo=BERLIN), tick=False):
            template = make_template(
                cast,
                dtstart=datetime(2026, 5, 4, 9, tzinfo=BERLIN),
                priority=3,
                assignee=cast.member,
                description="Balcony too",
                lead_time=timedelta(hours=2),
            )
            report = recurring_process_due()
        assert report["created"] == 1
        task = Task.objects.get()
        assert (task.title, task.description, task.priority, task.assignee, task.status, task.created_by) == (
            "Water the plants",
            "Balcony too",
            3,
            cast.member,
            Status.TODO,
            cast.owner,
        )
        assert task.due_at == task.occurrence_at == datetime(2026, 5, 4, 7, tzinfo=UTC)
        template.refresh_from_db()
        assert template.instances_created == 1
        assert template.next_occurrence_at == datetime(2026, 5, 5, 7, tzinfo=UTC)
        assert template.last_generated_at is not None
        assert received.events == [(task.pk, template.pk, True)]

    def test_the_signal_builds_its_tasks_only_when_read_and_they_match_the_rows(self, cast, monkeypatch):
        from tasks_app.recurring import engine

        built = []
        factory_call = engine._InstanceFactory.__call__
        monkeypatch.setattr(
            engine._InstanceFactory, "__call__", lambda self, row: built.append(1) or factory_call(self, row)
        )
        seen = []

        def projects_only(sender, instances, project_ids, **kwargs):
            seen.append((len(instances), project_ids, len(built)))

        def reads_them(sender, instances, **kwargs):
            seen.append([(task.pk, task.recurring_template, task.project, task) for task in instances])

        start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
        for i in range(3):
            make_template(cast, title=f"T{i}", rrule="FREQ=DAILY", dtstart=start, lead_time=timedelta(days=1))
        signals.recurring_instances_created.connect(projects_only, dispatch_uid="test-projects-only")
        signals.recurring_instances_created.connect(reads_them, dispatch_uid="test-reads-them")
        try:
            recurring_process_due()
        finally:
            signals.recurring_instances_created.disconnect(dispatch_uid="test-projects-only")
            signals.recurring_instances_created.disconnect(dispatch_uid="test-reads-them")
        if connection.vendor == "postgresql":  # SQLite's bulk path reads the saved rows back as Tasks
            assert seen[0] == (3, {cast.project.pk}, 0)  # len and project_ids build nothing
        assert len(built) == 3 if connection.vendor == "postgresql" else seen[0][:2] == (3, {cast.project.pk})
        fields = [f.attname for f in Task._meta.concrete_fields if f.attname != "search_vector"]
        for pk, template, project, task in seen[1]:
            row = Task.objects.get(pk=pk)
            assert {f: getattr(task, f) for f in fields} == {f: getattr(row, f) for f in fields}
            assert (template.pk, project.pk) == (row.recurring_template_id, row.project_id)
            assert not task._state.adding

        with time_machine.travel(datetime(2026, 5, 4, 6, tzinfo=BERLIN), tick=False):
            make_template(cast, dtstart=datetime(2026, 5, 4, 9, tzinfo=BERLIN), lead_time=timedelta(hours=2))
            assert recurring_process_due()["created"] == 0
        with time_machine.travel(datetime(2026, 5, 4, 7, tzinfo=BERLIN), tick=False):
            assert recurring_process_due()["created"] == 1

    def test_running_twice_creates_no_duplicates(self, cast, received):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 4, 10, tzinfo=BERLIN), tick=False):
            first = recurring_process_due()
            second = recurring_process_due()
            # A redelivered message for the same template and occurrence is a no-op too.
            task, created = recurring_instance_create(
                template_id=template.pk, occurrence_at=datetime(2026, 5, 2, 7, tzinfo=UTC)
            )
        assert (first["created"], second["created"], created) == (4, 0, False)
        assert len(_instances(template)) == 4 == len(received.events)
        template.refresh_from_db()
        assert template.instances_created == 4

    def test_single_create_is_idempotent_and_checks_the_rule(self, cast, received):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
            at = datetime(2026, 5, 1, 7, tzinfo=UTC)
            first, created = recurring_instance_create(template_id=template.pk, occurrence_at=at)
            again, created_again = recurring_instance_create(template_id=template.pk, occurrence_at=at)
            with pytest.raises(ApplicationError) as exc:
                recurring_instance_create(template_id=template.pk, occurrence_at=at + timedelta(hours=1))
        assert created and not created_again and first.pk == again.pk
        assert "occurrence_at" in exc.value.fields
        template.refresh_from_db()
        assert template.next_occurrence_at == at + timedelta(days=1)  # the processor will not re-create it
        assert len(received.events) == 1

    @pytest.mark.parametrize("catch_up,expected", [("all", 5), ("latest", 1)])
    def test_missed_occurrences_after_downtime_follow_catch_up(self, cast, catch_up, expected):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN), catch_up=catch_up)
        with time_machine.travel(datetime(2026, 5, 5, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        instances = _instances(template)
        assert len(instances) == expected
        assert instances[-1].due_at == datetime(2026, 5, 5, 7, tzinfo=UTC)
        template.refresh_from_db()
        assert template.next_occurrence_at == datetime(2026, 5, 6, 7, tzinfo=UTC)

    def test_catch_up_all_is_capped_to_the_latest(self, cast, settings):
        settings.RECURRING_CATCH_UP_CAP = 3
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, rrule="FREQ=HOURLY", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 3, 9, 30, tzinfo=BERLIN), tick=False):
            report = recurring_process_due()
        assert report["created"] == 3 and report["skipped"] == 46
        assert [t.due_at.astimezone(BERLIN).hour for t in _instances(template)] == [7, 8, 9]

    def test_paused_time_is_not_back_filled_on_resume(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
            recurring_template_pause(template=template, actor=cast.member)
        with time_machine.travel(datetime(2026, 5, 5, 10, tzinfo=BERLIN), tick=False):
            assert recurring_process_due()["created"] == 0
            recurring_template_resume(template=template, actor=cast.member)
            assert recurring_process_due()["created"] == 0
        template.refresh_from_db()
        assert template.next_occurrence_at == datetime(2026, 5, 6, 7, tzinfo=UTC)

    def test_count_ends_the_series(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, rrule="FREQ=DAILY;COUNT=2", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 9, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        template.refresh_from_db()
        assert len(_instances(template)) == 2 and template.next_run_at is None

    def test_archived_projects_generate_nothing(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        cast.project.archived = True
        cast.project.save()
        with time_machine.travel(datetime(2026, 5, 2, 10, tzinfo=BERLIN), tick=False):
            assert recurring_process_due()["created"] == 0

    @pytest.mark.parametrize("n", [5, 50])
    def test_one_batch_makes_the_same_queries_for_5_or_50_templates(
        self, cast, n, django_assert_num_queries, other_receivers_muted
    ):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            for i in range(n):
                make_template(cast, title=f"T{i}", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 1, 10, tzinfo=BERLIN), tick=False):
            # savepoint, lock due templates, their projects (one query), the last board rank of each
            # project's todo column (one query), then
            # - PostgreSQL: one statement that inserts the instances, their task.created events (and
            #   search documents), and updates every template's generation state;
            # - SQLite: insert, re-select the inserted rows, one INSERT of their events, one UPDATE of the
            #   templates (SQLite splits an INSERT past 999 parameters, so n stays below that here);
            # release; then savepoint, a select that finds nothing due, release.
            with django_assert_num_queries(9 if connection.vendor == "postgresql" else 12):
                report = recurring_process_due(batch_size=100)
        assert report == {"templates": n, "created": n, "skipped": 0, "batches": 1}

    def test_batches_cover_every_due_template(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            for i in range(7):
                make_template(cast, title=f"T{i}", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 1, 10, tzinfo=BERLIN), tick=False):
            report = recurring_process_due(batch_size=3)
        assert (report["batches"], report["created"]) == (3, 7)


class TestBatchWrite:
    """What one batch writes (on PostgreSQL in one statement): instances, their events, the templates' state."""

    def test_existing_instance_is_skipped_and_not_counted_events_follow_the_instances(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN), description='Say "hi" \\ ')
            other = make_template(cast, title="Other", dtstart=datetime(2026, 5, 1, 9, 30, tzinfo=BERLIN))
        # An instance the batch will meet (as a concurrent single create would have left it).
        taken = Task.objects.create(
            project=cast.project,
            title="made elsewhere",
            recurring_template=template,
            occurrence_at=datetime(2026, 5, 2, 7, tzinfo=UTC),
            due_at=datetime(2026, 5, 2, 7, tzinfo=UTC),
        )
        with time_machine.travel(datetime(2026, 5, 3, 10, tzinfo=BERLIN), tick=False):
            report = recurring_process_due()
        assert report == {"templates": 2, "created": 5, "skipped": 0, "batches": 1}
        template.refresh_from_db()
        other.refresh_from_db()
        assert (template.instances_created, other.instances_created) == (2, 3)
        assert template.last_occurrence_at == datetime(2026, 5, 3, 7, tzinfo=UTC)
        assert template.next_occurrence_at == datetime(2026, 5, 4, 7, tzinfo=UTC)
        assert template.next_run_at == template.next_occurrence_at
        created = list(Task.objects.exclude(pk=taken.pk).order_by("occurrence_at", "id"))
        assert [t.description for t in created if t.recurring_template_id == template.pk] == ['Say "hi" \\ '] * 2
        events = list(Event.objects.filter(type="task.created").order_by("id"))
        # One per inserted instance (none for the skipped one), in the order they were created, as
        # record_instances_created writes them.
        assert [(e.task_id, e.project_id, e.actor_id, e.data) for e in events] == [
            (
                t.pk,
                t.project_id,
                None,
                {"title": t.title, "status": "todo", "recurring_template": t.recurring_template_id},
            )
            for t in created
        ]
        assert all(t.position for t in created) and len({t.position for t in created}) == 5

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="search documents are PostgreSQL's")
    def test_instances_search_document_is_what_search_reindex_computes(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            make_template(
                cast,
                title="Quarterly planning",
                dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN),
                description="Budgets & reviews",
            )
        with time_machine.travel(datetime(2026, 5, 2, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        ids = list(Task.objects.values_list("pk", flat=True))

        def documents():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id, search_vector::text FROM tasks_app_task WHERE id = ANY(%s) ORDER BY id", [ids]
                )
                return cursor.fetchall()

        written = documents()
        assert len(written) == 2 and all(document for _, document in written)
        search_reindex(task_ids=ids)
        assert documents() == written

    @pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL array literals")
    @pytest.mark.parametrize(
        ("values", "cast_to"),
        [
            (["plain", "NULL", "", "a,b", "{x}", 'say "hi"', "back\\slash", "ü ß 東京", " spaced ", None], "text[]"),
            ([1, None, 2**40, -3], "bigint[]"),
            ([True, False, None], "boolean[]"),
            (
                [
                    datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC),
                    None,
                    datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
                ],
                "timestamptz[]",
            ),
        ],
    )
    def test_array_literals_round_trip(self, db, values, cast_to):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT %s::{cast_to}", [_array(values)])
            assert cursor.fetchone()[0] == values


def test_array_literal_text():
    """The literal _array writes, on any database (the round trip through PostgreSQL is tested above)."""
    stamp = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert _array([1, None, True, False, 'a "b" \\c', stamp]) == (
        '{1,NULL,t,f,"a \\"b\\" \\\\c",2026-03-29T01:30:00+00:00}'
    )
    assert _array([]) == "{}"
    with pytest.raises(ValueError):
        _array([datetime(2026, 1, 1)])  # naive: no offset to write
    with pytest.raises(TypeError):
        _array([1.5])


def test_the_batch_statement_writes_every_task_column_that_needs_a_value():
    """_batch_sql's INSERT (PostgreSQL's batch write) lists every Task column that is NOT NULL without a database
    default, so a column added later fails here, on any database, rather than in a PostgreSQL tick."""
    import re

    from tasks_app.recurring.engine import _batch_sql

    sql = _batch_sql()
    listed = set(re.search(r"INSERT INTO \S+ \(([^)]*)\)", sql).group(1).replace(" ", "").split(","))
    required = {
        f.column
        for f in Task._meta.concrete_fields
        if not f.null and not f.primary_key and getattr(f, "db_default", None) is models.NOT_PROVIDED
    }
    assert required and required <= listed, required - listed
    assert "ON CONFLICT DO NOTHING" in sql and "RETURNING" in sql


def test_planned_rows_become_saved_tasks_on_any_database():
    """What _Instances builds after PostgreSQL's batch statement (_saved_instances), without a database: the
    template's values, the occurrence, the rank and the pk, saved, with template and project cached."""
    from tasks_app.models import Project
    from tasks_app.recurring.engine import _Instances, _Planned, _saved_instances

    stamp = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    project = Project(pk=7, name="P")
    template = RecurringTaskTemplate(
        pk=3, project=project, title="Water", description="d", priority=2, assignee_id=5, created_by_id=6
    )
    planned = _Planned(template, stamp)
    planned.position, planned.pk = "i", 41
    instances = _Instances(lambda: _saved_instances([planned], {3: template}, stamp), count=1, project_ids={7})
    assert (len(instances), instances.project_ids) == (1, {7})
    (task,) = list(instances)
    assert (task.pk, task.project_id, task.title, task.description, task.priority) == (41, 7, "Water", "d", 2)
    assert (task.assignee_id, task.created_by_id, task.recurring_template_id, task.position) == (5, 6, 3, "i")
    assert (task.status, task.due_at, task.occurrence_at, task.created_at, task.updated_at) == (
        Status.TODO,
        stamp,
        stamp,
        stamp,
        stamp,
    )
    assert task.recurring_template is template and task.project is project and not task._state.adding
    assert instances[0] is task  # built once


class TestAfterCompletion:
    def test_next_instance_counts_from_completion_and_only_one_is_open(self, cast, api):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(
                cast,
                rrule="FREQ=DAILY;INTERVAL=3",
                mode="after_completion",
                dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN),
            )
        with time_machine.travel(datetime(2026, 5, 2, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
            recurring_process_due()
        assert len(_instances(template)) == 1
        with time_machine.travel(datetime(2026, 5, 7, 18, tzinfo=BERLIN), tick=False):
            first = _instances(template)[0]
            r = api(cast.member).patch(f"/api/v1/tasks/{first.pk}/", {"status": "done"}, format="json")
            assert r.status_code == 200
        template.refresh_from_db()
        # Completed on 7 May: every 3 days from then, at the template's 09:00 local.
        assert template.next_occurrence_at == datetime(2026, 5, 10, 7, tzinfo=UTC)
        with time_machine.travel(datetime(2026, 5, 20, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        assert [t.due_at for t in _instances(template)] == [
            datetime(2026, 5, 1, 7, tzinfo=UTC),
            datetime(2026, 5, 10, 7, tzinfo=UTC),
        ]

    def test_deleting_the_open_instance_does_not_stall_the_series(self, cast):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, mode="after_completion", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 5, 1, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
            task_delete(task=_instances(template)[0], actor=cast.owner)
        template.refresh_from_db()
        assert template.next_occurrence_at == datetime(2026, 5, 2, 7, tzinfo=UTC)


class TestConcurrency:
    @pytest.mark.django_db(transaction=True)
    def test_two_concurrent_runs_create_each_instance_once(self, cast, received):
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            templates = [
                make_template(cast, title=f"T{i}", dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN)) for i in range(40)
            ]
        now = datetime(2026, 5, 3, 10, tzinfo=BERLIN)
        barrier = threading.Barrier(2)
        reports, errors = [], []

        def run():
            try:
                barrier.wait()
                reports.append(recurring_process_due(now=now, batch_size=5))
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert sum(r["created"] for r in reports) == 40 * 3
        assert Task.objects.filter(recurring_template__in=templates).count() == 40 * 3
        assert len(received.events) == 40 * 3 == len({e[0] for e in received.events})
        assert set(RecurringTaskTemplate.objects.values_list("instances_created", flat=True)) == {3}


class TestTemplateUpdates:
    @pytest.fixture
    def series(self, cast):
        """Daily 09:00 Berlin with a 3-day lead: on 4 May there are past, started, edited and future instances."""
        with time_machine.travel(datetime(2026, 5, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(
                cast, dtstart=datetime(2026, 5, 1, 9, tzinfo=BERLIN), lead_time=timedelta(days=3), assignee=cast.member
            )
        with time_machine.travel(datetime(2026, 5, 1, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        return template

    def _update(self, cast, template, data, now):
        with time_machine.travel(now, tick=False):
            recurring_template_update(template=template, actor=cast.owner, data=data)
            return recurring_template_apply(template_id=template.pk)

    def test_changes_reach_only_future_unstarted_unedited_fields(self, cast, series):
        now = datetime(2026, 5, 1, 12, tzinfo=BERLIN)
        past, started, edited, future = _instances(series)  # 1, 2, 3, 4 May
        with time_machine.travel(now, tick=False):
            task_update(task=started, actor=cast.member, data={"status": Status.IN_PROGRESS})
            task_update(task=edited, actor=cast.member, data={"title": "My own title"})
        report = self._update(cast, series, {"title": "Water everything", "priority": 4, "assignee": cast.admin}, now)
        past, started, edited, future = _instances(series)
        assert report["updated"] == 2
        assert (past.title, past.priority) == ("Water the plants", 2)  # due before now
        assert (started.title, started.priority) == ("Water the plants", 2)
        assert (edited.title, edited.priority, edited.assignee) == ("My own title", 4, cast.admin)
        assert (future.title, future.priority, future.assignee, future.version) == (
            "Water everything",
            4,
            cast.admin,
            2,
        )
        with time_machine.travel(datetime(2026, 5, 2, 12, tzinfo=BERLIN), tick=False):
            recurring_process_due()
        assert _instances(series)[-1].title == "Water everything"

    def test_rule_change_retimes_future_instances_keeping_edited_due_times(self, cast, series):
        now = datetime(2026, 5, 1, 12, tzinfo=BERLIN)
        edited_due = datetime(2026, 5, 3, 18, tzinfo=UTC)
        with time_machine.travel(now, tick=False):
            task_update(task=_instances(series)[2], actor=cast.member, data={"due_at": edited_due})
        report = self._update(cast, series, {"rrule": "FREQ=DAILY;BYHOUR=18"}, now)
        assert report == {"template": series.pk, "updated": 3, "deleted": 0}
        due = [t.due_at.astimezone(BERLIN) for t in _instances(series)]
        assert [(d.day, d.hour) for d in due[:2]] == [(1, 9), (1, 18)]  # past one kept; 2 May -> 1 May 18:00
        assert _instances(series)[2].due_at == edited_due
        assert [(d.day, d.hour) for d in due[3:]] == [(3, 18)]
        series.refresh_from_db()
        assert series.next_occurrence_at.astimezone(BERLIN) == datetime(2026, 5, 4, 18, tzinfo=BERLIN)
        assert not series.apply_pending and not series.reschedule_pending
        assert self._update(cast, series, {}, now)["updated"] == 0  # nothing pending: a no-op

    def test_shorter_rule_deletes_surplus_unedited_instances(self, cast, series):
        now = datetime(2026, 5, 1, 12, tzinfo=BERLIN)
        report = self._update(cast, series, {"rrule": "FREQ=DAILY;COUNT=3"}, now)
        assert report["deleted"] == 1
        assert len(_instances(series)) == 3

    def test_invalid_update_writes_nothing(self, cast, series):
        with pytest.raises(ApplicationError) as exc:
            recurring_template_update(
                template=series, actor=cast.owner, data={"title": "x", "until": datetime(2020, 1, 1, tzinfo=UTC)}
            )
        assert "until" in exc.value.fields
        series.refresh_from_db()
        assert series.title == "Water the plants" and not series.apply_pending


class TestCleanup:
    def test_old_completed_instances_are_deleted_in_batches_keeping_the_history_count(self, cast, api):
        with time_machine.travel(datetime(2026, 1, 1, 8, tzinfo=BERLIN), tick=False):
            template = make_template(cast, dtstart=datetime(2026, 1, 1, 9, tzinfo=BERLIN))
        with time_machine.travel(datetime(2026, 1, 6, 10, tzinfo=BERLIN), tick=False):
            recurring_process_due()
            for task in _instances(template)[:4]:
                task_update(task=task, actor=cast.owner, data={"status": Status.DONE})
        other = Task.objects.create(
            project=cast.project,
            title="not recurring",
            status=Status.DONE,
            completed_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        report = recurring_cleanup_completed(
            now=datetime(2026, 2, 1, tzinfo=UTC), older_than=timedelta(days=7), batch_size=3
        )
        assert report == {"deleted": 4}
        assert len(_instances(template)) == 2 and Task.objects.filter(pk=other.pk).exists()
        body = api(cast.viewer).get(f"/api/v1/recurring-tasks/{template.pk}/").json()
        assert (body["instances_cleaned"], body["completed_instances"], body["instances_created"]) == (4, 4, 6)
        task_update(task=_instances(template)[0], actor=cast.owner, data={"status": Status.DONE})
        assert api(cast.viewer).get(f"/api/v1/recurring-tasks/{template.pk}/").json()["completed_instances"] == 5
        assert recurring_cleanup_completed(now=datetime(2026, 2, 1, tzinfo=UTC))["deleted"] == 0


def test_recurrence_service_queues_the_periodic_task_on_commit(db, django_capture_on_commit_callbacks):
    from tasks_app.recurring.service import RecurrenceService

    with django_capture_on_commit_callbacks() as callbacks:
        RecurrenceService.process_recurring_tasks()
    assert len(callbacks) == 1
    assert callbacks[0].args[0] == "recurring.process_recurring_tasks"
    assert RecurrenceService.process_due is recurring_process_due
    assert timezone.now()  # the service's checks are plain functions callable here


def test_pending_template_changes_are_swept_if_their_message_was_lost(cast, redis_clean):
    import json

    from core import outbox

    template = make_template(cast, dtstart=datetime(2030, 1, 1, 8, tzinfo=UTC))
    RecurringTaskTemplate.objects.filter(pk=template.pk).update(
        apply_pending=True, enqueued_at=timezone.now() - timedelta(minutes=10)
    )
    report = outbox.sweep()
    assert report["tasks_app.recurring_template_apply"] == 1
    messages = [json.loads(m) for m in redis_clean.lrange("recurring", 0, -1)]
    assert [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages] == [
        ("recurring.update_recurring_task_template", f"[{template.pk}]")
    ]
    assert outbox.sweep()["tasks_app.recurring_template_apply"] == 0  # re-stamped: not again at once


def test_admin_edits_follow_the_same_rules(cast, client, django_capture_on_commit_callbacks):
    from tasks_app.tests.factories import UserFactory

    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    template = make_template(cast, dtstart=datetime(2030, 1, 1, 8, tzinfo=UTC))
    url = f"/admin/tasks_app/recurringtasktemplate/{template.pk}/change/"
    form = {
        "project": cast.project.pk,
        "title": "Edited in admin",
        "description": "",
        "priority": 2,
        "rrule": "FREQ=WEEKLY",
        "dtstart_0": "2030-01-01",
        "dtstart_1": "08:00:00",
        "timezone": "Europe/Berlin",
        "mode": "schedule",
        "lead_time": "00:00:00",
        "catch_up": "all",
        "enabled": "on",
    }
    assert client.post(url, {**form, "rrule": "FREQ=NEVER"}).status_code == 200  # form error, not saved
    template.refresh_from_db()
    assert template.rrule == "FREQ=DAILY" and not template.apply_pending
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post(url, form).status_code == 302
    template.refresh_from_db()
    assert template.apply_pending and template.reschedule_pending and template.next_run_at is None
    assert [c.args[0] for c in callbacks] == ["recurring.update_recurring_task_template"]
    recurring_template_apply(template_id=template.pk, now=datetime(2029, 12, 1, tzinfo=UTC))
    template.refresh_from_db()
    assert template.next_occurrence_at == datetime(2030, 1, 1, 8, tzinfo=UTC)  # admin times are UTC here
